"""No false failures on a busy machine: the model answers score full marks while busy loops keep
every core busy, in every run, alone and under ``grade-class --jobs 2`` (issue 10).

Per-call limits follow the reference's own time and the machine's load (grader/checking/pace.py),
so nothing here raises ``--time-scale``. Slow (several full grades): ``LLMGRADE_LOAD_RUNS`` sets how
many single runs (default 5).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.catalog import ITEMS
from grader.classroom.grade_class import grade_class
from grader.classroom.gradebook import Gradebook
from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
FULL_MARKS = sum(item.points for item in ITEMS)
RUNS = int(os.environ.get("LLMGRADE_LOAD_RUNS", "5"))


@pytest.fixture
def busy_cores() -> Iterator[int]:
    """One busy loop per core for the duration of the test."""
    cores = os.cpu_count() or 2
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield cores
    finally:
        for proc in loops:
            proc.kill()
            proc.wait()


def solutions_copy(folder: Path) -> Path:
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.mark.slow
@pytest.mark.load_sensitive
def test_solutions_score_full_marks_on_busy_cores(busy_cores: int, tmp_path: Path) -> None:
    submission = solutions_copy(tmp_path / "solutions")
    for attempt in range(RUNS):
        run = grade_submission(submission)
        failing = {item.id: item.message for item in run.items if item.status != "passed"}
        assert (run.status, failing) == ("complete", {}), f"run {attempt + 1} of {RUNS}: {run.error}"
        assert run.score == run.max_score == FULL_MARKS


@pytest.mark.slow
@pytest.mark.load_sensitive
def test_grade_class_with_two_jobs_on_busy_cores(busy_cores: int, tmp_path: Path) -> None:
    subs = tmp_path / "class"
    for student in ("ada", "bob"):
        solutions_copy(subs / student)
    db = tmp_path / "gradebook.sqlite"
    summary = grade_class(subs, db, jobs=2, progress=None)
    assert sorted(summary.graded) == ["ada", "bob"] and not summary.broken
    with Gradebook(db) as book:
        for student in ("ada", "bob"):
            run = book.latest(student)
            assert run is not None
            failing = {item.id: item.message for item in run.items if item.status != "passed"}
            assert failing == {} and run.score == FULL_MARKS, student
