"""grade-class survives one student whose run cannot be recorded: the others are recorded."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from grader.classroom import gradebook as gb_module
from grader.classroom.grade_class import grade_class
from grader.classroom.gradebook import Gradebook
from grader.results import GradeRun
from tests.grader.fake_runs import fake_run, write_submission


def test_a_run_that_cannot_be_recorded_stops_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class_dir = tmp_path / "class"
    for student in ("ann", "bob", "cid"):
        write_submission(class_dir / student, f"x = '{student}'\n")
    real_record = Gradebook.record

    def record(self: Gradebook, student_id: str, run: GradeRun, **kwargs: Any) -> int:
        if student_id == "bob":
            raise sqlite3.OperationalError("database or disk is full")
        return real_record(self, student_id, run, **kwargs)

    monkeypatch.setattr(gb_module.Gradebook, "record", record)

    def fake_grade(folder: Path, **_: Any) -> GradeRun:
        return fake_run(submission=str(folder))

    db = tmp_path / "gradebook.sqlite"
    summary = grade_class(class_dir, db, jobs=2, grade_fn=fake_grade, progress=None)
    assert sorted(summary.graded) == ["ann", "cid"]
    assert summary.broken == ["bob"]
    bob = next(o for o in summary.outcomes if o.student == "bob")
    assert "could not be recorded" in bob.message and "database or disk is full" in bob.message
    monkeypatch.undo()
    with Gradebook(db) as book:
        assert book.students() == ["ann", "cid"]
