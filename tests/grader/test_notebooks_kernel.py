"""A real Jupyter kernel (nbclient + ipykernel) runs ``%load_ext llmgrade`` and checks items.

The result is HTML in the cell's output; the grading ran outside the kernel (the kernel never
imports the reference or the graded package); an exception in a kernel cell is located as
``In [n], line m``; the saved notebook can be checked instead of the kernel's history.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from tests.grader.notebook_factory import notebook_with_cells

nbclient = pytest.importorskip("nbclient")  # the test extra installs it (pyproject.toml)

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_CH03 = (ROOT / "solutions" / "ch03.py").read_text("utf-8")
BUGGY_FORWARD = "        raise ValueError('heads do not line up')"


def html_of(cell: nbformat.NotebookNode) -> str:
    return "".join(str(out.get("data", {}).get("text/html", "")) for out in cell.outputs)


@pytest.mark.slow
def test_load_ext_llmgrade_checks_an_item_in_a_real_kernel(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    buggy = SOLUTION_CH03.replace("        return self.out_proj(context_vec)", BUGGY_FORWARD)
    assert buggy != SOLUTION_CH03
    notebook = notebook_with_cells(
        "#md Chapter 3 in a notebook",
        SOLUTION_CH03,                                                           # In [1]
        "mha = MultiHeadAttention(4, 4, 8, 0.0, 2)\nprint(mha)",                  # In [2], a demo
        "%load_ext llmgrade",                                                    # In [3]
        "%llmgrade ch03.MultiHeadAttention",                                     # In [4]
        "import sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('reference', 'submission')))",
        buggy,                                                                   # In [6]
        "import llmgrade\nllmgrade.check('ch03.MultiHeadAttention')",             # In [7]
        f"llmgrade.check('ch03.MultiHeadAttention', source='file', notebook={str(tmp_path / 'ch03.ipynb')!r})",
    )
    nbformat.write(notebook, str(tmp_path / "ch03.ipynb"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    cells = notebook.cells

    passed = html_of(cells[4])
    assert 'id="llmgrade-ch03.MultiHeadAttention" data-status="passed"' in passed
    assert "5/5 points" in passed  # whole numbers without ".0"
    assert "In [1] to In [4]" in passed  # the kernel's cells, and it says so
    assert "In [2], line 1 `mha = MultiHeadAttention(4, 4, 8, 0.0, 2)`" in passed  # left out, listed
    assert "[]" in "".join(out.get("text", "") for out in cells[5].outputs)  # graded outside the kernel

    failed = html_of(cells[7])
    assert 'data-status="failed"' in failed
    line = buggy.splitlines().index(BUGGY_FORWARD) + 1
    assert f"In [6], line {line}" in failed
    assert "ValueError" in failed

    from_file = html_of(cells[8])
    assert "Checked the saved notebook" in from_file and "ch03.ipynb" in from_file
    # The saved file holds the correct and the buggy class; the later one (cell 7) wins, as in the kernel.
    assert 'data-status="failed"' in from_file and f"ch03.ipynb, cell 7, line {line}" in from_file
