"""Check an item from inside a running notebook: ``%llmgrade ch03.MultiHeadAttention``.

The code comes from the kernel (the cells executed so far, in order, from IPython's input history)
or from the saved ``.ipynb``; it is converted like a submitted notebook (definitions only) and
graded by :func:`grader.runner.run.grade_submission`, the CLI's engine: a pytest process with the
hidden suites and the sandboxed worker. Nothing is graded in the kernel, and the kernel's objects
are never used: only the text of its cells. The other chapters come from the notebook's folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grader import catalog
from grader.errors import SetupError
from grader.messages import t
from grader.notebooks.convert import Cell, Converted, convert_cells
from grader.notebooks.staging import read_notebook, stage_module, summary
from grader.results import GradeRun

Source = Literal["auto", "kernel", "file"]
KERNEL_SOURCE = "kernel"


@dataclass
class CheckReport:
    """A finished check, as text (the ``llmgrade`` package shows it as HTML in a notebook)."""

    run: GradeRun
    source: str  # the sentence that says where the code came from
    left_out: str

    def __repr__(self) -> str:
        from grader.runner.summary import format_details

        return "\n".join([self.source, format_details(self.run.student_view(), colour=False), self.left_out])


def kernel_cells(history: Sequence[str]) -> list[Cell]:
    """IPython's raw input history (``In``; index 0 is empty) as cells numbered by execution count."""
    return [Cell(number, source) for number, source in enumerate(history) if number > 0 and source.strip()]


def saved_notebook(module: str, explicit: str | Path | None = None) -> Path:
    """The notebook file to read: ``explicit``, else the one Jupyter says this kernel runs
    (``JPY_SESSION_NAME``, VS Code's ``__vsc_ipynb_file__``), else ``<module>.ipynb`` here."""
    candidates = [explicit, os.environ.get("JPY_SESSION_NAME"), _user_ns().get("__vsc_ipynb_file__"),
                  Path.cwd() / f"{module}.ipynb"]
    for candidate in candidates:
        if candidate and Path(str(candidate)).suffix == ".ipynb" and Path(str(candidate)).is_file():
            return Path(str(candidate))
    raise SetupError("notebooks.no_saved_notebook", module=module, cwd=str(Path.cwd()))


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _user_ns() -> dict[str, Any]:
    shell = _shell()
    return dict(shell.user_ns) if shell is not None else {}


def _history() -> list[str]:
    shell = _shell()
    if shell is None:
        return []
    return [str(entry) for entry in shell.history_manager.input_hist_raw]


def find_code(module: str, source: Source = "auto", notebook: str | Path | None = None) -> tuple[Converted, str]:
    """The notebook's code for ``module`` and a sentence that says where it came from."""
    cells = kernel_cells(_history()) if source != "file" else []
    if source == "kernel" and not cells:
        raise SetupError("notebooks.no_kernel_history")
    if cells:
        converted = convert_cells(cells, KERNEL_SOURCE, catalog.MODULES, label="In")
        return converted, t("notebooks.source_kernel", first=cells[0].number, last=cells[-1].number,
                            module=module)
    path = saved_notebook(module, notebook)
    said = "notebooks.source_file_asked" if source == "file" else "notebooks.source_file"
    return read_notebook(path), t(said, notebook=str(path), module=module)


def check(item: str, *, source: Source = "auto", notebook: str | Path | None = None,
          device: str | None = None, time_scale: float = 1.0) -> CheckReport:
    """Grade ``item`` (an id such as ``ch03.MultiHeadAttention``, or a chapter) on this notebook's code."""
    from grader.runner.run import grade_submission
    from grader.authoring.workspace import has_exercise_files, use_workspace_lang

    here = Path.cwd()
    use_workspace_lang(here)  # a Chinese workspace's notebooks get Chinese checks
    try:
        chosen = catalog.items_for([item])
    except KeyError as exc:
        raise SetupError("cli.unknown_item", selector=exc.args[0]) from exc
    module = chosen[0].module
    converted, where = find_code(module, source, notebook)
    staged = stage_module(here if has_exercise_files(here) else None, module, converted)
    try:
        run = grade_submission(staged.folder, [i.id for i in chosen], device=device, time_scale=time_scale)
    finally:
        staged.cleanup()
    run.notebooks = [note for note in staged.notes if note.module == module] + run.notebooks
    return CheckReport(run, where, summary(converted))
