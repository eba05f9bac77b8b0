"""Runs recorded with the ``answer_key`` status (results schema version 2, before the worker held
only its item's reference view) still read and show as they were: the terminal, the student report,
the exports and the gradebook. Grading no longer gives the status (tests/redteam/test_answer_key.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from grader.classroom.export import export_csv, gradescope_results
from grader.classroom.gradebook import Gradebook
from grader.results import GradeRun, LoadError
from grader.runner.summary import format_table
from reports.render import render_student_report
from tests.grader.fake_runs import fake_run

KEY_MESSAGE = "ch04.py line 3 imports reference.ch04"


def key_run() -> GradeRun:
    run = fake_run(seed=0, statuses={"ch04.GELU": "passed", "ch03.MultiHeadAttention": "passed"})
    for item in run.items:
        if item.id == "ch04.GELU":
            item.status, item.points, item.message = "answer_key", 0.0, KEY_MESSAGE
    run.load_errors.append(LoadError(module="ch04", kind="answer_key", file="/w/ch04.py", line=3, message=KEY_MESSAGE))
    return run


def test_the_status_shows_in_the_terminal_and_the_report() -> None:
    run = key_run()
    table = format_table(run, width=120)
    assert "answer key" in table and "uses the answer key; see above" in table
    assert "1 used the answer key and score 0." in table
    html = render_student_report(run, [])
    assert 'class="status answer_key"' in html and KEY_MESSAGE in html


def test_exports_and_the_gradebook_keep_it_and_read_older_records(tmp_path: Path) -> None:
    run = key_run()
    gelu = next(t for t in gradescope_results(run)["tests"] if t["number"] == "ch04.GELU")
    assert gelu["status"] == "failed" and gelu["score"] == 0 and KEY_MESSAGE in gelu["output"]
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("mallory", run)
        book.record("ann", fake_run(seed=1))
        again = book.latest_all()["mallory"]
        export_csv(book, tmp_path / "grades.csv")
    assert next(i for i in again.items if i.id == "ch04.GELU").status == "answer_key"
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "grades.csv").open(encoding="utf-8"))}
    assert rows["mallory"]["answer_key"] == "ch04.GELU" and rows["ann"]["answer_key"] == ""
    old = json.loads(fake_run(seed=2).to_json())
    old["schema_version"] = 1  # written before the status existed
    assert GradeRun.from_dict(old).counts()["answer_key"] == 0
