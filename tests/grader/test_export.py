"""CSV and Gradescope exports of the gradebook, and the grade-class / report / export commands."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.cli import main
from grader.classroom.export import export, export_csv, export_gradescope, gradescope_results
from grader.classroom.gradebook import Gradebook

from .fake_runs import HIDDEN_ID, SECRET, fake_run, write_submission


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Gradebook]:
    gradebook = Gradebook(tmp_path / "gb.sqlite")
    gradebook.record("alice", fake_run(seed=0))
    gradebook.record("alice", fake_run(seed=1, statuses={HIDDEN_ID: "failed"}))
    gradebook.record("=cmd|' /C calc'!A0", fake_run(seed=2))
    yield gradebook
    gradebook.close()


def test_csv_one_row_per_student(book: Gradebook, tmp_path: Path) -> None:
    path = tmp_path / "out" / "grades.csv"
    assert export_csv(book, path) == 2
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    ids = [item.id for item in catalog.ITEMS]
    assert rows[0] == ["student", *ids, "total", "max_score", "status", "answer_key", "not_graded"]
    by_student = {row[0]: row for row in rows[1:]}
    assert set(by_student) == {"alice", "'=cmd|' /C calc'!A0"}  # no formula injection
    latest = fake_run(seed=1, statuses={HIDDEN_ID: "failed"})
    alice = by_student["alice"]
    assert float(alice[-5]) == latest.score and float(alice[-4]) == latest.max_score and alice[-2] == ""
    assert alice[-1] == ""  # graded: no reason for not grading
    for item in latest.items:
        assert float(alice[1 + ids.index(item.id)]) == item.points


def test_gradescope_results_format(book: Gradebook, tmp_path: Path) -> None:
    assert export_gradescope(book, tmp_path / "gs") == 2
    files = sorted((tmp_path / "gs").glob("*/results.json"))
    assert len(files) == 2 and all(".." not in f.parent.name for f in files)
    data = json.loads((tmp_path / "gs" / "alice" / "results.json").read_text("utf-8"))
    latest = fake_run(seed=1, statuses={HIDDEN_ID: "failed"})
    assert data["score"] == latest.score
    assert len(data["tests"]) == len(latest.items)
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
    hidden = next(t for t in data["tests"] if t["number"] == HIDDEN_ID)
    assert hidden["visibility"] == "after_published" and SECRET not in hidden["output"]
    assert hidden["output"] == "Hidden item: failed."
    failed = next(t for t in data["tests"]
                  if t["number"] != HIDDEN_ID and t["status"] == "failed" and t["score"] > 0)
    assert failed["visibility"] == "visible" and "values differ" in failed["output"]


def test_gradescope_run_error_output() -> None:
    data = gradescope_results(fake_run(status="setup_error", error="bad zip"))
    assert data["output"] == "This submission could not be graded: bad zip"


def test_export_function_defaults_and_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            book: Gradebook) -> None:
    monkeypatch.chdir(tmp_path)
    assert "2 students" in export("csv", book.path)
    assert (tmp_path / "gradebook.csv").is_file()
    assert "2 Gradescope" in export("gradescope", book.path)
    assert (tmp_path / "gradescope" / "alice" / "results.json").is_file()
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--format", "csv", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no graded submissions" in result.output


def test_cli_grade_class_report_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.classroom import grade_class as classroom

    def fake_grade(root: Path, items: object = (), time_limit_s: float | None = None) -> object:
        return fake_run(seed=len(root.name), submission=str(root))

    monkeypatch.setattr(classroom, "_default_grade_fn", lambda threads, limits=None: fake_grade)
    monkeypatch.chdir(tmp_path)
    write_submission(tmp_path / "subs" / "ann")
    write_submission(tmp_path / "subs" / "benjamin")
    runner = CliRunner()
    result = runner.invoke(main, ["grade-class", "subs", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "Graded 2, skipped 0 unchanged, 0 could not be graded" in result.output
    assert (tmp_path / ".llmgrade" / "gradebook.sqlite").is_file()
    result = runner.invoke(main, ["grade-class", "subs"])
    assert result.exit_code == 0 and "Graded 0, skipped 2" in result.output
    (tmp_path / "subs" / "broken.zip").write_bytes(b"not a zip")
    result = runner.invoke(main, ["grade-class", "subs"])
    assert result.exit_code == 1 and "could not be graded: broken" in result.output
    result = runner.invoke(main, ["report", "--out", "site"])
    assert result.exit_code == 0 and "3 student pages" in result.output
    assert (tmp_path / "site" / "index.html").is_file()
    result = runner.invoke(main, ["export", "--format", "gradescope", "--out", "gs"])
    assert result.exit_code == 0 and len(list((tmp_path / "gs").glob("*/results.json"))) == 3
    result = runner.invoke(main, ["grade-class", "missing"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(main, ["export", "--format", "xml"])
    assert result.exit_code == 2
