"""Submissions that hold notebooks: ``ch03.ipynb``, a folder of ``chNN.ipynb``, or ``.py`` and ``.ipynb`` mixed.

:func:`stage` writes the folder the worker is given: the student's ``.py`` files as they are, plus one
generated module per chapter notebook (``ch03.ipynb`` -> ``ch03.py``) unless a ``ch03.py`` is there
too (the ``.py`` wins, and the run says so). A submission without notebooks is graded in place.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import catalog
from grader.authoring.workspace import MARKER, hashed_files
from grader.errors import SetupError
from grader.messages import message_fields, phrase, t
from grader.notebooks.convert import Converted, cells_from_notebook, convert_cells
from grader.results import NotebookNote

SUFFIX = ".ipynb"


def read_notebook(path: Path) -> Converted:
    """Read ``path`` with nbformat and convert it; a file that is not a notebook is a ``SetupError``."""
    import nbformat

    read: Callable[..., Any] = nbformat.read  # untyped library
    try:
        notebook = read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and reader errors of many kinds
        raise SetupError("notebooks.unreadable", file=str(path), error=f"{type(exc).__name__}: {exc}") from exc
    return convert_cells(cells_from_notebook(notebook), path.name, catalog.MODULES)


def chapter_notebooks(folder: Path) -> dict[str, Path]:
    """``{module: path}`` of the chapter notebooks (``ch03.ipynb``) directly in ``folder``."""
    return {module: folder / f"{module}{SUFFIX}" for module in catalog.MODULES
            if (folder / f"{module}{SUFFIX}").is_file()}


def is_notebook_file(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX and path.is_file()


@dataclass
class Staged:
    """The folder to grade, the notes for the results, and a temporary folder to remove after."""

    folder: Path
    notes: list[NotebookNote] = field(default_factory=list)
    temporary: Path | None = None
    source: Path | None = None  # the submission it was staged from (None: not a copy)

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
        self.notes = stage(self.source, into=self.folder).notes


def stage(submission: Path, into: Path | None = None) -> Staged:
    """The folder the worker grades for ``submission`` (a folder or one chapter notebook);
    ``into``: an empty folder to stage into instead of a new temporary one."""
    if is_notebook_file(submission):
        if submission.stem not in catalog.MODULES:
            raise SetupError("notebooks.unknown_chapter", file=str(submission),
                             expected=", ".join(f"{m}{SUFFIX}" for m in catalog.MODULES))
        staged = _build(*_beside(submission), into=into)
    elif not chapter_notebooks(submission):
        return Staged(submission)
    else:
        staged = _build(hashed_files(submission), chapter_notebooks(submission), submission, into=into)
    staged.source = submission
    return staged


def _beside(notebook: Path) -> tuple[list[tuple[str, Path]], dict[str, Path], Path]:
    """What to stage for one chapter notebook: the notebook, and, in a workspace, the other chapters
    beside it (which its ``from ch03 import ...`` lines import); the notebook wins over its ``.py``."""
    folder = notebook.parent
    if not (folder / MARKER).is_file():
        return [], {notebook.stem: notebook}, folder
    python_files = [(rel, path) for rel, path in hashed_files(folder) if rel != f"{notebook.stem}.py"]
    return python_files, {**chapter_notebooks(folder), notebook.stem: notebook}, folder


def stage_module(folder: Path | None, module: str, converted: Converted) -> Staged:
    """A staged copy of ``folder`` (the other chapters; may be ``None``) in which ``module`` is
    ``converted`` (the code of a running notebook), whatever ``folder`` holds for that chapter."""
    python_files: list[tuple[str, Path]] = []
    notebooks: dict[str, Path] = {}
    if folder is not None:
        python_files = [(rel, path) for rel, path in hashed_files(folder) if rel != f"{module}.py"]
        notebooks = {name: path for name, path in chapter_notebooks(folder).items() if name != module}
    return _build(python_files, notebooks, folder or Path("."), {module: converted})


def _build(python_files: list[tuple[str, Path]], notebooks: dict[str, Path], root: Path,
           given: dict[str, Converted] | None = None, into: Path | None = None) -> Staged:
    temporary = into.parent if into is not None else Path(tempfile.mkdtemp(prefix="llmgrade-stage-"))
    folder = into if into is not None else temporary / "submission"
    folder.mkdir(exist_ok=True)
    for rel, path in python_files:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    staged = Staged(folder, [], temporary)
    for module, converted in (given or {}).items():
        (folder / f"{module}.py").write_text(converted.code, encoding="utf-8")
    for module, path in notebooks.items():
        if (folder / f"{module}.py").exists():
            staged.notes.append(NotebookNote(module=module, file=str(path), used=False, left_out=[],
                                             **message_fields("notebooks.py_wins", py=f"{module}.py", notebook=path.name)))
            continue
        converted = read_notebook(path)
        (folder / f"{module}.py").write_text(converted.code, encoding="utf-8")
        staged.notes.append(NotebookNote(module=module, file=str(path), used=True,
                                         left_out=converted.left_out_dicts(), **_summary_fields(converted)))
    if not (folder / "__init__.py").exists():
        (folder / "__init__.py").write_text("", encoding="utf-8")
    return staged


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


def graded_notebook_sources(submission: Path) -> list[tuple[str, bytes]]:
    """``(notebook file name, generated module)`` of each notebook that is graded (for the hash)."""
    if is_notebook_file(submission):
        notebooks = {submission.stem: submission}
    elif submission.is_dir():
        notebooks = {module: path for module, path in chapter_notebooks(submission).items()
                     if not (submission / f"{module}.py").is_file()}
    else:
        return []
    sources = []
    for path in notebooks.values():
        try:
            sources.append((path.name, read_notebook(path).code.encode("utf-8")))
        except SetupError:  # not a notebook: its bytes (grading it reports the problem)
            sources.append((path.name, path.read_bytes()))
    return sources
