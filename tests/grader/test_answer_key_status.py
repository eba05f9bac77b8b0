"""Using the answer key is an item status of its own (results schema version 2): 0 points, never
charged to another item, never shown as "not started", and it reaches the terminal, the student and
class reports, the exports and the gradebook, where older records still read."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from grader.catalog import BY_ID
from grader.classroom.export import export_csv, gradescope_results
from grader.classroom.gradebook import Gradebook
from grader.results import GradeRun, LoadError
from grader.runner.scoring import item_results
from grader.runner.summary import format_table
from reports.render import render_student_report
from tests.grader.fake_runs import fake_run

KEY_MESSAGE = "ch04.py line 3 imports reference.ch04"


def check(item: str, name: str, status: str, message_id: str = "", **extra: Any) -> dict[str, Any]:
    return {"item": item, "name": name, "status": status, "message": f"{name} {status}", "message_id": message_id,
            "student_swaps": [[]], **extra}


def test_a_check_that_caught_the_key_costs_the_whole_item_and_nothing_else() -> None:
    block, ff = BY_ID["ch04.TransformerBlock"], BY_ID["ch04.FeedForward"]
    raw = [check(ff.id, "ff", "failed"),
           check(block.id, "one", "not_started"),
           check(block.id, "two", "failed", "check.uses_answer_key", integration=True),
           check(block.id, "three", "passed")]
    results = {r.id: r for r in item_results([ff, block], raw, [])}
    item = results[block.id]
    assert item.status == "answer_key" and item.points == 0  # not "not started", not partly passed
    key = next(c for c in item.checks if c.name == "two")
    assert key.blamed_on is None and item.message == key.message  # not charged to the failed FeedForward
    assert results[ff.id].status == "failed"


def test_a_module_that_uses_the_key_gives_its_items_the_status() -> None:
    gelu, mha = BY_ID["ch04.GELU"], BY_ID["ch03.MultiHeadAttention"]
    error = LoadError(module="ch04", kind="answer_key", file="/w/ch04.py", line=3, message=KEY_MESSAGE)
    results = {r.id: r for r in item_results([gelu, mha], [check(mha.id, "a", "passed")], [error])}
    assert (results[gelu.id].status, results[gelu.id].points, results[gelu.id].message) == ("answer_key", 0, KEY_MESSAGE)
    assert results[mha.id].status == "passed"


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
