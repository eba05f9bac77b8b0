"""llmgrade inside Jupyter: ``%load_ext llmgrade``, then ``%llmgrade ch03.MultiHeadAttention``.

Or, without the magic: ``import llmgrade; llmgrade.check("ch03.MultiHeadAttention")``. The check
grades the code of this notebook (the cells run so far, or the saved file with ``--file`` /
``source="file"``) in the same sandboxed worker as ``llmgrade check``, never in this kernel, and
shows the result as HTML in the cell output. The command line is ``llmgrade`` (``grader.cli``).
"""

from __future__ import annotations

from typing import Any

from grader.notebooks.kernel import CheckReport, check

__all__ = ["check", "load_ipython_extension", "unload_ipython_extension", "CheckReport"]


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
    from pathlib import Path

    from grader.notebooks.workspace import install_notebook_importer

    ipython.register_magic_function(_magic, magic_kind="line", magic_name="llmgrade")
    install_notebook_importer(Path.cwd())


def unload_ipython_extension(ipython: Any) -> None:
    ipython.magics_manager.magics["line"].pop("llmgrade", None)
