"""Through the real CLI, with real notebooks written by nbformat.

The model answers split over cells with markdown, magics, a training cell and a plot cell get full
marks and run none of those cells; a syntax error in cell 14 is reported at cell 14 (terminal, JSON,
report); an exception is reported at its cell and line; the stubs in notebooks get 0.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.catalog import ITEMS, MODULES
from tests.grader.notebook_factory import notebook_with_cells, write_notebooks
from tests.grader.test_full_grade import ROOT, grade_json, llmgrade

SOLUTION_CH03 = (ROOT / "solutions" / "ch03.py").read_text("utf-8")


@pytest.mark.slow
def test_reader_notebooks_of_the_model_answers_get_full_marks(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    write_notebooks(ROOT / "solutions", tmp_path / "notebooks", sentinel)
    code, data = grade_json(tmp_path / "notebooks", tmp_path / "out.json", "--time-scale", "4")
    failing = {i["id"]: i["message"] for i in data["items"] if i["status"] != "passed"}
    assert failing == {}
    assert (code, data["status"], data["error"][-500:]) == (0, "complete", "")
    assert data["score"] == data["max_score"] == sum(item.points for item in ITEMS)
    assert sorted(note["module"] for note in data["notebooks"] if note["used"]) == sorted(MODULES)
    left_out = [entry for note in data["notebooks"] for entry in note["left_out"]]
    assert {"cell", "line", "first_line", "reason"} <= set(left_out[0])
    assert any(entry["first_line"].startswith("plt.plot") for entry in left_out)
    # Neither the training cell, nor the plot cell, nor the %%time cell ran in the worker.
    assert list(tmp_path.glob("sentinel*")) == []


@pytest.mark.slow
def test_stubs_in_a_notebook_workspace_get_nothing(tmp_path: Path) -> None:
    created = llmgrade("init", "--notebooks", str(tmp_path / "notebooks"))
    assert created.returncode == 0, created.stderr
    code, data = grade_json(tmp_path / "notebooks", tmp_path / "out.json")
    assert code == 1
    assert [i["id"] for i in data["items"] if i["points"] > 0 or i["status"] == "passed"] == []
    assert {i["status"] for i in data["items"]} == {"not_started"}
    assert data["score"] == 0


def _ch03_notebook(broken_cell: str) -> nbformat.NotebookNode:
    """The model answer of ch03 in one cell, with ``broken_cell`` as cell 14 (markdown before it)."""
    cells = ["#md Chapter 3", SOLUTION_CH03.replace("from __future__ import annotations\n", "")]
    cells += [f"#md note {n}" for n in range(3, 14)] + [broken_cell]
    return notebook_with_cells(*cells)


def test_a_syntax_error_in_cell_14_is_reported_at_cell_14(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    nbformat.write(_ch03_notebook("import torch\n\ndef forward(self x):\n    return x"), str(folder / "ch03.ipynb"))
    shutil.copyfile(ROOT / "solutions" / "ch02.py", folder / "ch02.py")
    report = tmp_path / "report.html"
    result = llmgrade("grade", "ch03", "ch02.SimpleTokenizerV1", "--submission", str(folder),
                      "--json", str(tmp_path / "out.json"), "--db", str(tmp_path / "book.sqlite"),
                      "--report", str(report))
    data = json.loads((tmp_path / "out.json").read_text("utf-8"))
    (error,) = data["load_errors"]
    assert (error["module"], error["kind"], error["file"], error["cell"], error["line"]) == \
        ("ch03", "syntax_error", "ch03.ipynb", 14, 3)
    assert "ch03.ipynb, cell 14, line 3" in error["message"]
    assert "ch03.ipynb, cell 14, line 3" in " ".join(result.stdout.split())  # wrapped to the terminal
    assert "ch03.ipynb, cell 14, line 3" in report.read_text("utf-8")
    assert "ch03.ipynb was graded" in report.read_text("utf-8")  # the notebook notes, in the report
    statuses = {i["id"]: i["status"] for i in data["items"]}
    assert statuses.pop("ch02.SimpleTokenizerV1") == "passed"  # the .py beside it is graded as usual
    assert set(statuses.values()) == {"error"}


def test_an_exception_is_reported_at_its_cell_and_line_and_a_py_file_wins(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    broken = SOLUTION_CH03.replace("        return self.out_proj(context_vec)",
                                   "        raise ValueError('shapes are off')")
    assert broken != SOLUTION_CH03
    nbformat.write(notebook_with_cells("#md Chapter 3", "print('hello')", broken), str(folder / "ch03.ipynb"))
    nbformat.write(notebook_with_cells("raise SystemExit('never graded')"), str(folder / "ch02.ipynb"))
    shutil.copyfile(ROOT / "solutions" / "ch02.py", folder / "ch02.py")
    result = llmgrade("check", "ch03.MultiHeadAttention", "--submission", str(folder))
    line = broken.splitlines().index("        raise ValueError('shapes are off')") + 1
    assert result.returncode == 1
    stdout = " ".join(result.stdout.split())  # wrapped to the terminal
    assert f"ch03.ipynb, cell 3, line {line}" in stdout
    assert "ValueError" in stdout
    assert "ch02.ipynb was not graded" in stdout
    assert "cell 2, line 1 `print('hello')`" in stdout


@pytest.mark.slow
def test_class_grading_takes_notebooks_and_zips_of_notebooks(tmp_path: Path) -> None:
    from grader.classroom.grade_class import grade_class
    from grader.classroom.gradebook import Gradebook

    subs = tmp_path / "subs"
    write_notebooks(ROOT / "solutions", subs / "folder", tmp_path / "sentinel")
    write_notebooks(ROOT / "solutions", tmp_path / "zipped", tmp_path / "sentinel")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as archive:
        for path in sorted((tmp_path / "zipped").glob("*.ipynb")):
            archive.write(path, f"wrapper/{path.name}")  # inside a wrapper folder, as zips often are
    db = tmp_path / "gb.sqlite"
    item = "ch03.MultiHeadAttention"
    summary = grade_class(subs, db, jobs=1, items=[item], time_limit_s=300, progress=None)
    assert sorted(summary.graded) == ["folder", "zipped"] and summary.broken == []
    with Gradebook(db) as book:
        runs = book.latest_all()
    assert {sid: [i.status for i in run.items] for sid, run in runs.items()} == \
        {"folder": ["passed"], "zipped": ["passed"]}
    assert runs["folder"].submission_hash == runs["zipped"].submission_hash  # the same code is graded
    assert {note.module for note in runs["zipped"].notebooks} == set(MODULES)
    again = grade_class(subs, db, jobs=1, items=[item], time_limit_s=300, progress=None)
    assert sorted(again.skipped) == ["folder", "zipped"]  # unchanged: not graded again
    assert list(tmp_path.glob("sentinel*")) == []


def test_a_watch_standby_converts_the_notebook_as_saved(tmp_path: Path) -> None:
    """``llmgrade watch`` starts grading before the save: the notebook is converted after it."""
    from grader.runner.watch import Standby, snapshot

    folder = tmp_path / "work"
    folder.mkdir()
    stub = (ROOT / "exercises" / "ch03.py").read_text("utf-8")
    nbformat.write(notebook_with_cells(stub), str(folder / "ch03.ipynb"))
    assert list(snapshot(folder)) == ["ch03.ipynb"]  # a save of the notebook is seen
    standby = Standby(folder, ["ch03.MultiHeadAttention"], None, 1.0)
    assert standby.wait_ready(300)
    nbformat.write(notebook_with_cells("print('saved')", SOLUTION_CH03), str(folder / "ch03.ipynb"))
    run = standby.go()
    assert [(i.id, i.status) for i in run.items] == [("ch03.MultiHeadAttention", "passed")]
    assert run.notebooks[0].left_out[0]["first_line"] == "print('saved')"
