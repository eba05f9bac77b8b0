"""llmgrade inside Jupyter: ``%load_ext llmgrade``, then ``%llmgrade ch03.MultiHeadAttention``.

Or, without the magic: ``import llmgrade; llmgrade.check("ch03.MultiHeadAttention")``. The check
grades the code of this notebook (the cells run so far, or the saved file with ``--file`` /
``source="file"``) in the same sandboxed worker as ``llmgrade check``, never in this kernel, and
shows the result as HTML in the cell output. The command line is ``llmgrade`` (``grader.cli``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grader.notebooks import kernel

__all__ = ["check", "load_ipython_extension", "unload_ipython_extension", "CheckReport"]


class CheckReport(kernel.CheckReport):
    """A finished check; Jupyter shows it as HTML (``reports/templates/notebook_check.html.j2``)."""

    def _repr_html_(self) -> str:
        from reports.notebook_check import render_check

        return render_check(self.run, self.source, self.left_out)


def check(item: str, *, source: kernel.Source = "auto", notebook: str | Path | None = None,
          device: str | None = None, time_scale: float = 1.0) -> CheckReport:
    """Grade ``item`` (an id such as ``ch03.MultiHeadAttention``, or a chapter) on this notebook's
    code, in the sandboxed worker; ``source``: ``auto`` (the kernel's cells, else the saved file),
    ``kernel`` or ``file`` (the saved ``.ipynb``: ``notebook``, else the one this kernel runs)."""
    found = kernel.check(item, source=source, notebook=notebook, device=device, time_scale=time_scale)
    return CheckReport(found.run, found.source, found.left_out)


def _magic(line: str) -> CheckReport | None:
    from grader.errors import SetupError
    from grader.messages import t

    words = line.split()
    items = [word for word in words if not word.startswith("--")]
    if len(items) != 1 or any(word not in ("--file", "--kernel") for word in words if word.startswith("--")):
        print(t("notebooks.magic_usage"))
        return None
    source: Any = "file" if "--file" in words else "kernel" if "--kernel" in words else "auto"
    try:
        return check(items[0], source=source)
    except SetupError as exc:  # a clear sentence in the cell, not a traceback
        print(str(exc))
        return None


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmgrade``: registers the line magic ``%llmgrade ITEM [--file]``, and lets
    ``from ch03 import X`` load the definitions of ``ch03.ipynb`` in the notebook's folder."""
    from grader.authoring.workspace import use_workspace_lang
    from grader.notebooks.workspace import install_notebook_importer

    use_workspace_lang(Path.cwd())  # the workspace's language, unless LLMGRADE_LANG chooses one
    ipython.register_magic_function(_magic, magic_kind="line", magic_name="llmgrade")
    install_notebook_importer(Path.cwd())


def unload_ipython_extension(ipython: Any) -> None:
    ipython.magics_manager.magics["line"].pop("llmgrade", None)
