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
from grader.authoring.workspace import hashed_files
from grader.errors import SetupError
from grader.messages import t
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

    def cleanup(self) -> None:
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)


def stage(submission: Path) -> Staged:
    """The folder the worker grades for ``submission`` (a folder or one chapter notebook)."""
    if is_notebook_file(submission):
        if submission.stem not in catalog.MODULES:
            raise SetupError("notebooks.unknown_chapter", file=str(submission),
                             expected=", ".join(f"{m}{SUFFIX}" for m in catalog.MODULES))
        notebooks = {submission.stem: submission}
        python_files: list[Path] = []
    else:
        notebooks = chapter_notebooks(submission)
        if not notebooks:
            return Staged(submission)
        python_files = [path for _, path in hashed_files(submission)]
    temporary = Path(tempfile.mkdtemp(prefix="llmgrade-stage-"))
    folder = temporary / "submission"
    folder.mkdir()
    root = submission.parent if is_notebook_file(submission) else submission
    for path in python_files:
        target = folder / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    notes = []
    for module, path in notebooks.items():
        if (folder / f"{module}.py").exists():
            notes.append(NotebookNote(module=module, file=str(path), used=False, left_out=[],
                                      message=t("notebooks.py_wins", py=f"{module}.py", notebook=path.name)))
            continue
        converted = read_notebook(path)
        (folder / f"{module}.py").write_text(converted.code, encoding="utf-8")
        notes.append(NotebookNote(module=module, file=str(path), used=True,
                                  left_out=converted.left_out_dicts(), message=summary(converted)))
    if not (folder / "__init__.py").exists():
        (folder / "__init__.py").write_text("", encoding="utf-8")
    return Staged(folder, notes, temporary)


def summary(converted: Converted) -> str:
    """One sentence: which notebook was graded and what was left out (cell number and first line)."""
    if not converted.left_out:
        return t("notebooks.graded_all", notebook=converted.source_name)
    shown = "; ".join(t("notebooks.left_out_entry", cell=entry.cell, line=entry.line,
                        first_line=_short(entry.first_line)) for entry in converted.left_out)
    return t("notebooks.graded_left_out", notebook=converted.source_name,
             count=len(converted.left_out), entries=shown)


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
