"""The folder the worker is given: a private copy of what :mod:`grader.submission_tree` read.

:func:`stage` writes the student's ``.py`` files as they were read (a link that stays inside the
submission becomes the file it names; a link out of it, a special file, a name that is not UTF-8 is
left out and named in the run), plus one generated module per chapter notebook (``ch03.ipynb`` ->
``ch03.py``) unless a ``ch03.py`` is there too (the ``.py`` wins, and the run says so). The worker
never sees the submission's own folder: nothing in it can point the worker (or this process) at a
file outside it. The copy is removed when the run ends, however it ends (:meth:`Staged.cleanup`).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import catalog
from grader.errors import SetupError
from grader.messages import message_fields, phrase, t
from grader.notebooks.convert import Converted, cells_from_notebook, convert_cells
from grader.results import NotebookNote, RefusedEntry
from grader.submission_tree import Limits, Tree, TreeFile, read_tree, shown

SUFFIX = ".ipynb"


def read_notebook(path: Path) -> Converted:
    """Read ``path`` (a notebook the user named: a running kernel's file) and convert it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SetupError("notebooks.unreadable", file=shown(path), error=f"{type(exc).__name__}: {exc}") from exc
    return notebook_from_bytes(data, path.name, shown(path))


def notebook_from_bytes(data: bytes, name: str, shown_as: str) -> Converted:
    """Convert a notebook's bytes (as the tree reader read them); not a notebook: ``SetupError``."""
    import nbformat

    reads: Callable[..., Any] = nbformat.reads  # untyped library
    try:
        with warnings.catch_warnings():
            # Cells without ids (notebooks from nbformat < 4.5): nbformat warns and adds them, which
            # only matters when writing; it read as a line of noise in every class run.
            warnings.simplefilter("ignore")
            notebook = reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and reader errors of many kinds
        raise SetupError("notebooks.unreadable", file=shown_as, error=f"{type(exc).__name__}: {exc}") from exc
    return convert_cells(cells_from_notebook(notebook), name, catalog.MODULES)


def chapter_notebooks_in(tree: Tree) -> dict[str, TreeFile]:
    """``{module: file}`` of the chapter notebooks (``ch03.ipynb``) at the top of ``tree``."""
    return {module: found for module, found in tree.notebooks().items() if module in catalog.MODULES}


def is_notebook_file(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX and path.is_file()


def refused_entries(tree: Tree) -> list[RefusedEntry]:
    """The tree's refusals as they are recorded in a run."""
    return [RefusedEntry(file=r.name, reason=r.reason, **r.message_fields()) for r in tree.refused]


@dataclass
class Staged:
    """The folder to grade, the notes for the results, and a temporary folder to remove after."""

    folder: Path
    notes: list[NotebookNote] = field(default_factory=list)
    temporary: Path | None = None
    source: Path | None = None  # the submission it was staged from
    refused: list[RefusedEntry] = field(default_factory=list)
    digest: str = ""  # the content hash of what was staged (grader.authoring.workspace.content_hash)
    limits: Limits | None = None

    def cleanup(self) -> None:
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)

    def refresh(self) -> None:
        """Stage the submission again into the same folder (``llmgrade watch``: after a save, before
        the worker imports it; the folder itself stays, as the sandbox has it mounted)."""
        if self.source is None or self.temporary is None:
            return
        for child in self.folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        again = stage(self.source, into=self.folder, limits=self.limits)
        self.notes, self.refused, self.digest = again.notes, again.refused, again.digest


def read_submission(submission: Path, limits: Limits | None = None) -> Tree:
    """The submission read by the tree reader; a submission over a cap, or missing, is a ``SetupError``."""
    tree = read_tree(submission, limits)
    if tree.problem is not None:
        raise SetupError(tree.problem[0], **tree.problem[1])
    return tree


def stage(submission: Path, into: Path | None = None, limits: Limits | None = None) -> Staged:
    """The folder the worker grades for ``submission`` (a folder or one chapter notebook), always a
    private copy of what the tree reader read; ``into``: an empty folder to stage into instead of a
    new temporary one."""
    from grader.authoring.workspace import content_hash_of

    tree = read_submission(submission, limits)
    if tree.single:
        if submission.stem not in catalog.MODULES:
            raise SetupError("notebooks.unknown_chapter", file=shown(submission),
                             expected=", ".join(f"{m}{SUFFIX}" for m in catalog.MODULES))
        staged = _build(*_beside(submission, tree, limits), into=into)
    else:
        staged = _build(tree.python_files(), chapter_notebooks_in(tree), submission, into=into)
    staged.source, staged.limits = submission, limits
    staged.refused, staged.digest = refused_entries(tree), content_hash_of(tree)
    return staged


def _beside(notebook: Path, tree: Tree, limits: Limits | None) -> tuple[list[TreeFile], dict[str, TreeFile], Path]:
    """What to stage for one chapter notebook (``tree``: the notebook as read): the notebook, and, in a
    workspace, the other chapters beside it, read by the tree reader (its ``from ch03 import ...``
    lines import them); the notebook wins over its ``.py``."""
    from grader.authoring.workspace import MARKER

    folder = notebook.parent
    own = {notebook.stem: tree.files[0]}
    if not (folder / MARKER).is_file():
        return [], own, folder
    workspace = read_submission(folder, limits)
    python_files = [f for f in workspace.python_files() if f.rel != f"{notebook.stem}.py"]
    return python_files, {**chapter_notebooks_in(workspace), **own}, folder


def stage_module(folder: Path | None, module: str, converted: Converted) -> Staged:
    """A staged copy of ``folder`` (the other chapters; may be ``None``) in which ``module`` is
    ``converted`` (the code of a running notebook), whatever ``folder`` holds for that chapter."""
    python_files: list[TreeFile] = []
    notebooks: dict[str, TreeFile] = {}
    refused: list[RefusedEntry] = []
    if folder is not None:
        tree = read_submission(folder)
        python_files = [f for f in tree.python_files() if f.rel != f"{module}.py"]
        notebooks = {name: found for name, found in chapter_notebooks_in(tree).items() if name != module}
        refused = refused_entries(tree)
    staged = _build(python_files, notebooks, folder or Path("."), {module: converted})
    staged.refused = refused
    return staged


def _build(python_files: list[TreeFile], notebooks: dict[str, TreeFile], root: Path,
           given: dict[str, Converted] | None = None, into: Path | None = None) -> Staged:
    temporary = into.parent if into is not None else Path(tempfile.mkdtemp(prefix="llmgrade-stage-"))
    staged = Staged(into if into is not None else temporary / "submission", [], temporary)
    try:
        _write(staged, python_files, notebooks, root, given or {})
    except BaseException:  # a bad notebook (or anything else): no copy is left behind
        if into is None:
            staged.cleanup()
        raise
    return staged


def _write(staged: Staged, python_files: list[TreeFile], notebooks: dict[str, TreeFile], root: Path,
           given: dict[str, Converted]) -> None:
    folder = staged.folder
    folder.mkdir(mode=0o700, exist_ok=True)
    for found in python_files:
        target = folder.joinpath(*found.rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(found.data)
    for module, converted in given.items():
        (folder / f"{module}.py").write_text(converted.code, encoding="utf-8")
    for module, found in notebooks.items():
        where = shown(root / found.rel)  # the notebook in the submission, as the run names it
        if (folder / f"{module}.py").exists():
            staged.notes.append(NotebookNote(module=module, file=where, used=False, left_out=[],
                                             **message_fields("notebooks.py_wins", py=f"{module}.py", notebook=found.rel)))
            continue
        converted = notebook_from_bytes(found.data, found.rel, where)
        (folder / f"{module}.py").write_text(converted.code, encoding="utf-8")
        staged.notes.append(NotebookNote(module=module, file=where, used=True,
                                         left_out=converted.left_out_dicts(), **_summary_fields(converted)))
    if not (folder / "__init__.py").exists():
        (folder / "__init__.py").write_text("", encoding="utf-8")


def summary(converted: Converted) -> str:
    """One sentence: which notebook was graded and what was left out (cell number and first line)."""
    key, params = summary_message(converted)
    return t(key, **params)


def _summary_fields(converted: Converted) -> dict[str, Any]:
    key, params = summary_message(converted)
    return message_fields(key, **params)


def summary_message(converted: Converted) -> tuple[str, dict[str, Any]]:
    """:func:`summary` as a message id and its parameters (the entries are phrases)."""
    kernel = converted.label == "In"
    name = phrase("notebooks.kernel_name") if kernel else converted.source_name
    if not converted.left_out:
        return "notebooks.graded_all", {"notebook": name}
    entry_id = "notebooks.left_out_entry_kernel" if kernel else "notebooks.left_out_entry"
    entries = [phrase(entry_id, cell=entry.cell, line=entry.line, first_line=_short(entry.first_line))
               for entry in converted.left_out]
    return "notebooks.graded_left_out", {"notebook": name, "count": len(converted.left_out), "entries": entries}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def graded_notebook_sources(tree: Tree) -> list[tuple[bytes, bytes]]:
    """``(notebook file name, generated module)`` of each notebook that is graded (for the hash)."""
    if tree.single:
        notebooks = list(tree.files)
    else:
        python = {f.rel for f in tree.python_files()}
        notebooks = [found for module, found in chapter_notebooks_in(tree).items() if f"{module}.py" not in python]
    sources = []
    for found in notebooks:
        try:
            sources.append((found.name_bytes, notebook_from_bytes(found.data, found.rel, found.rel).code.encode("utf-8")))
        except SetupError:  # not a notebook: its bytes (grading it reports the problem)
            sources.append((found.name_bytes, found.data))
    return sources
