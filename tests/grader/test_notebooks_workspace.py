"""``llmgrade init --notebooks DIR``: chapter notebooks holding the stubs and the exercise texts."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import nbformat
import pytest

from grader.authoring.workspace import find_submission
from grader.catalog import MODULES
from grader.errors import SetupError
from grader.notebooks.staging import read_notebook
from grader.notebooks.workspace import NotebookImporter, init_notebook_workspace, install_notebook_importer

ROOT = Path(__file__).resolve().parents[2]


def top_level_names(code: str) -> set[str]:
    names = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_notebook_workspace_holds_every_stub_with_its_text(tmp_path: Path) -> None:
    init_notebook_workspace(tmp_path)
    assert sorted(p.stem for p in tmp_path.glob("*.ipynb")) == sorted(MODULES)
    readme = (tmp_path / "README.md").read_text("utf-8")
    assert "%load_ext llmgrade" in readme and "%llmgrade ch02." in readme and "jupyter lab" in readme
    assert "pip install jupyterlab" in readme  # jupyter is not a dependency: say how to get it
    assert find_submission(cwd=tmp_path) == tmp_path
    for module in MODULES:
        stub = (ROOT / "exercises" / f"{module}.py").read_text("utf-8")
        notebook = nbformat.read(str(tmp_path / f"{module}.ipynb"), as_version=4)
        markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        assert "Book section:" in markdown  # the exercise texts
        converted = read_notebook(tmp_path / f"{module}.ipynb")
        assert top_level_names(converted.code) == top_level_names(stub)
        assert converted.left_out == []  # %load_ext llmgrade and %llmgrade: the checker's own, not listed
        assert ("from .ch03 import MultiHeadAttention" in converted.code) == (module == "ch04")
    with pytest.raises(SetupError):
        init_notebook_workspace(tmp_path)


def test_from_ch03_import_loads_the_notebook_in_a_kernel(tmp_path: Path) -> None:
    init_notebook_workspace(tmp_path)
    finder = install_notebook_importer(tmp_path)
    try:
        assert install_notebook_importer(tmp_path) is finder  # installed once
        ch04 = importlib.import_module("ch04")
        assert ch04.__file__ == str(tmp_path / "ch04.ipynb")
        assert ch04.MultiHeadAttention is sys.modules["ch03"].MultiHeadAttention
        with pytest.raises(NotImplementedError):
            ch04.LayerNorm(4)
    finally:
        sys.meta_path.remove(finder)
        for name in MODULES:
            sys.modules.pop(name, None)
    assert NotebookImporter(tmp_path).find_spec("json") is None


def test_the_cell_output_html_is_escaped_and_keeps_hidden_items_hidden() -> None:
    from reports.notebook_check import render_check
    from tests.grader.fake_runs import HIDDEN_ID, HOSTILE, SECRET, fake_run, with_load_error

    run = with_load_error(fake_run(seed=1))
    html = render_check(run, f"source {HOSTILE}", f"left out {HOSTILE}")
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert SECRET not in html
    assert f'id="llmgrade-{HIDDEN_ID}"' in html
    statuses = {item.id: item.status for item in run.items}
    for item_id, status in statuses.items():
        assert f'id="llmgrade-{item_id}" data-status="{status}"' in html


def test_checking_the_saved_file_as_asked_does_not_blame_the_kernel(tmp_path: Path) -> None:
    """Issue 22, finding 11: ``%llmgrade X --file`` said the kernel's history was not available."""
    from grader.messages import set_lang
    from grader.notebooks.kernel import find_code

    set_lang("en")
    init_notebook_workspace(tmp_path)
    notebook = tmp_path / "ch03.ipynb"
    _, asked = find_code("ch03", source="file", notebook=notebook)
    assert "as asked" in asked and "history" not in asked
    _, fallback = find_code("ch03", source="auto", notebook=notebook)  # no kernel here: the file, and why
    assert "history was not available" in fallback
