"""A notebook becomes a module: definitions kept, experiments and magics left out and listed, lines mapped."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from grader.catalog import MODULES
from grader.errors import SetupError
from grader.notebooks.convert import Cell, convert_cells
from grader.notebooks.locations import describe, notebook_location
from grader.notebooks.staging import read_notebook, stage
from grader.authoring.workspace import content_hash, find_submission
from tests.grader.notebook_factory import notebook_with_cells, reader_notebook

ROOT = Path(__file__).resolve().parents[2]


def convert(*sources: str, tags: dict[int, tuple[str, ...]] | None = None):  # type: ignore[no-untyped-def]
    cells = [Cell(n, text, (tags or {}).get(n, ())) for n, text in enumerate(sources, start=1)]
    return convert_cells(cells, "ch03.ipynb", MODULES)


def test_definitions_are_kept_and_experiments_left_out_with_cell_and_line() -> None:
    result = convert(
        "import torch\nfrom ch02 import create_dataloader_v1\nCONFIG = {'emb_dim': 8, 'drop': 0.1}\n"
        "DTYPE = torch.float32\nscale = lambda x: x.sum()",
        "class Head(torch.nn.Module):\n    def forward(self, x):\n        return x\n\nhead = Head()\nprint(head)",
        "%matplotlib inline\n!pip install torch\nfor epoch in range(10):\n    train(epoch)",
        "model.eval()\nplt.plot([1, 2])\nvocab = {c: i for i, c in enumerate('ab')}\nmodel.layer = 3",
        "if __name__ == '__main__':\n    main()",
    )
    module = ast.parse(result.code)
    kept = [ast.unparse(node).splitlines()[0] for node in module.body]
    assert kept == ["import torch", "from .ch02 import create_dataloader_v1",
                    "CONFIG = {'emb_dim': 8, 'drop': 0.1}", "DTYPE = torch.float32",
                    "scale = lambda x: x.sum()", "class Head(torch.nn.Module):"]
    left = [(e.cell, e.line, e.first_line, e.reason) for e in result.left_out]
    assert left == [
        (2, 5, "head = Head()", "statement"), (2, 6, "print(head)", "statement"),
        (3, 1, "%matplotlib inline", "magic"), (3, 2, "!pip install torch", "magic"),
        (3, 3, "for epoch in range(10):", "statement"),
        (4, 1, "model.eval()", "statement"), (4, 2, "plt.plot([1, 2])", "statement"),
        (4, 3, "vocab = {c: i for i, c in enumerate('ab')}", "statement"),
        (4, 4, "model.layer = 3", "statement"),
        (5, 1, "if __name__ == '__main__':", "statement"),
    ]


def test_every_kept_line_maps_back_to_its_cell_and_line(tmp_path: Path) -> None:
    sources = ["import torch", "#md ignored", "x = run()\n\nclass A:\n    y = 1\n    z = 2", "def f():\n    return 1"]
    cells = [Cell(n, s) for n, s in enumerate(sources, start=1) if not s.startswith("#md")]
    result = convert_cells(cells, "ch03.ipynb", MODULES)
    path = tmp_path / "ch03.py"
    path.write_text(result.code, encoding="utf-8")
    module_lines = result.code.splitlines()
    for number, text in enumerate(module_lines, start=1):
        found = notebook_location(str(path), number)
        if number <= 2:
            assert found is None  # the two header lines
            continue
        assert found is not None
        cell_source = sources[found.cell - 1].splitlines()
        assert cell_source[found.line - 1] == text
    assert describe(str(path), module_lines.index("    z = 2") + 1) == "ch03.ipynb, cell 3, line 5"
    # A path the sandboxed worker reports (its own mount of the folder) is found in the graded folder.
    inside = "/llmgrade/pkg/submission/ch03.py"
    assert describe(inside, module_lines.index("    z = 2") + 1, tmp_path) == "ch03.ipynb, cell 3, line 5"
    assert describe(inside, 4) == "ch03.py:4"
    assert describe(str(path), None) == "ch03.py"
    assert describe(None, 3) == "?"
    assert describe(str(tmp_path / "missing.py"), 3) == "missing.py:3"


def test_a_broken_map_only_falls_back_to_the_module_line(tmp_path: Path) -> None:
    path = tmp_path / "ch03.py"
    for second in ["# llmgrade-map: {not json", '# llmgrade-map: {"source": "x", "label": "cell", '
                   '"segments": [["1", 2, 3, 4]]}', '# llmgrade-map: {"segments": 5}', "import torch"]:
        path.write_text("# header\n" + second + "\nx = 1\n", encoding="utf-8")
        assert describe(str(path), 1) == "ch03.py:1"


def test_keep_and_skip_tags_and_comments() -> None:
    result = convert("torch.manual_seed(1)\nTOKENIZER = make()", "# llmgrade: keep\nlookup = build()",
                     "def f(:\n  pass", "# llmgrade: skip\ndef g(:", tags={1: ("llmgrade:keep",), 3: ("llmgrade:skip",)})
    body = ast.parse(result.code).body
    assert [ast.unparse(node) for node in body] == ["torch.manual_seed(1)", "TOKENIZER = make()",
                                                   "lookup = build()"]
    assert [(e.cell, e.reason) for e in result.left_out] == [(3, "cell"), (4, "cell")]


def test_a_cell_that_is_not_python_is_kept_whole_so_the_error_points_at_it(tmp_path: Path) -> None:
    result = convert("import torch", "x = compute()\ndef forward(self x):\n    return x")
    assert result.syntax_error_cells == [2]
    path = tmp_path / "ch03.py"
    path.write_text(result.code, encoding="utf-8")
    with pytest.raises(SyntaxError) as exc:
        compile(result.code, str(path), "exec")
    assert describe(str(path), exc.value.lineno) == "ch03.ipynb, cell 2, line 2"


def test_future_imports_move_to_the_top_and_the_module_compiles() -> None:
    result = convert('"""Notes."""', "x = 1\nfrom __future__ import annotations\ndef f() -> Later: ...")
    compile(result.code, "ch03.py", "exec")
    body = ast.parse(result.code).body
    assert isinstance(body[0], ast.ImportFrom) and body[0].module == "__future__"


def test_a_percent_line_inside_a_string_is_not_a_magic() -> None:
    result = convert('TEMPLATE = """\n%d items\n!important\n"""')
    assert "%d items\n!important" in result.code
    assert result.left_out == []


def test_reader_notebook_round_trip_and_hash_ignores_outputs(tmp_path: Path) -> None:
    source = (ROOT / "solutions" / "ch03.py").read_text("utf-8")
    path = tmp_path / "ch03.ipynb"
    notebook = reader_notebook(source, tmp_path / "sentinel")
    nbformat.write(notebook, str(path))
    converted = read_notebook(path)
    compile(converted.code, "ch03.py", "exec")
    reasons = {e.reason for e in converted.left_out}
    assert reasons == {"magic", "statement"}
    before = content_hash(path)
    notebook.cells[-2].outputs = [nbformat.v4.new_output("stream", text="epoch 1")]
    notebook.cells[-2].execution_count = 7
    nbformat.write(notebook, str(path))
    assert content_hash(path) == before  # outputs are not graded
    notebook.cells[4].source += "\n\nEXTRA = 1"
    nbformat.write(notebook, str(path))
    assert content_hash(path) != before  # a kept definition is


def test_staging_a_mixed_folder_py_wins_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    nbformat.write(notebook_with_cells("import torch\nX = 1"), str(folder / "ch03.ipynb"))
    nbformat.write(notebook_with_cells("import torch\nY = 2\nprint(Y)"), str(folder / "ch04.ipynb"))
    (folder / "ch03.py").write_text("X = 2\n", encoding="utf-8")
    (folder / "helpers.py").write_text("H = 1\n", encoding="utf-8")
    assert find_submission(folder) == folder
    staged = stage(folder)
    try:
        assert (staged.folder / "ch03.py").read_text("utf-8") == "X = 2\n"
        assert (staged.folder / "helpers.py").is_file() and (staged.folder / "__init__.py").is_file()
        assert "Y = 2" in (staged.folder / "ch04.py").read_text("utf-8")
        notes = {note.module: note for note in staged.notes}
        assert notes["ch03"].used is False and "ch03.py" in notes["ch03"].message
        assert notes["ch04"].used is True
        assert notes["ch04"].left_out == [{"cell": 1, "line": 3, "first_line": "print(Y)", "reason": "statement"}]
        assert "cell 1, line 3 `print(Y)`" in notes["ch04"].message
    finally:
        staged.cleanup()
    assert not staged.folder.exists()


def test_bad_notebook_input_is_a_clear_error(tmp_path: Path) -> None:
    wrong_name = tmp_path / "notes.ipynb"
    nbformat.write(notebook_with_cells("x = 1"), str(wrong_name))
    with pytest.raises(SetupError) as exc:
        stage(wrong_name)
    assert "notes.ipynb" in str(exc.value) and "ch03.ipynb" in str(exc.value)
    broken = tmp_path / "ch03.ipynb"
    broken.write_text("{not a notebook", encoding="utf-8")
    with pytest.raises(SetupError) as exc:
        stage(broken)
    assert "ch03.ipynb" in str(exc.value) and "Jupyter" in str(exc.value)
    assert len(content_hash(broken)) == 64  # class grading can still fingerprint it


def test_folder_without_notebooks_is_graded_from_a_private_copy(tmp_path: Path) -> None:
    # The worker never sees the submission's own folder (issue 20: a link in it could lead out).
    (tmp_path / "ch03.py").write_text("X = 1\n", encoding="utf-8")
    staged = stage(tmp_path)
    try:
        assert staged.folder != tmp_path and staged.notes == [] and staged.temporary is not None
        assert (staged.folder / "ch03.py").read_text("utf-8") == "X = 1\n"
        data = json.dumps([n.message for n in staged.notes])
        assert data == "[]"
    finally:
        staged.cleanup()
    assert not staged.temporary.exists()


def test_a_cluster_archive_carries_the_chapter_notebooks(tmp_path: Path) -> None:
    import io
    import zipfile

    from grader.classroom.cluster import pack

    nbformat.write(notebook_with_cells("import torch\nX = 1"), str(tmp_path / "ch03.ipynb"))
    nbformat.write(notebook_with_cells("x = 1"), str(tmp_path / "scratch.ipynb"))
    (tmp_path / "ch02.py").write_text("Y = 1\n", encoding="utf-8")
    names = zipfile.ZipFile(io.BytesIO(pack(tmp_path).data)).namelist()
    assert names == ["ch02.py", "ch03.ipynb"]


def test_the_checker_itself_is_never_graded_code() -> None:
    result = convert("import torch\nimport llmgrade\nfrom llmgrade import check", "# llmgrade: keep\nimport llmgrade")
    assert [ast.unparse(node) for node in ast.parse(result.code).body] == ["import torch"]
    assert result.left_out == []  # nor listed as left out: it never was the student's code


def test_the_checkers_own_magics_are_dropped_without_a_notice() -> None:
    """The workspace template's ``%load_ext llmgrade`` and ``%llmgrade`` cells are not listed
    (issue 22: they drowned the result); other magics still are."""
    result = convert("%load_ext llmgrade", "%reload_ext llmgrade\n%llmgrade ch03.SelfAttention_v1 --file",
                     "%matplotlib inline\nX = 1")
    assert [(e.cell, e.first_line) for e in result.left_out] == [(3, "%matplotlib inline")]


def test_a_notebook_without_cell_ids_is_read_without_a_warning() -> None:
    """Issue 22, finding 11: nbformat's MissingIDFieldWarning leaked into every grade-class run."""
    import json
    import warnings

    from grader.notebooks.staging import notebook_from_bytes

    old = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [  # 4.5 has ids; these lack them
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = notebook_from_bytes(json.dumps(old).encode(), "ch03.ipynb", "ch03.ipynb")
    assert "x = 1" in converted.code
    assert [str(w.message) for w in caught] == []
