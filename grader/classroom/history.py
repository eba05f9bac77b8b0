"""After ``llmgrade grade``: record the run in the workspace's gradebook, with the workspace's history.

Recording is all this module does; the CLI then hands the :class:`RecordedRun` to ``reports`` for
the student's HTML page (``grader`` never imports ``reports``: see ``docs/architecture.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.authoring.workspace import workspace_of
from grader.classroom.gradebook import Gradebook, default_path
from grader.results import GradeRun

REPORT_NAME = "report.html"
SELF = "me"  # the student id of a personal workspace's own runs


def report_path(run: GradeRun, db: Path | None = None, report: Path | None = None) -> Path:
    """Where the student's report for ``run`` goes: ``report``, else beside the gradebook."""
    return report or (db or default_path(workspace_of(Path(run.submission)))).parent / REPORT_NAME


@dataclass(frozen=True)
class RecordedRun:
    """A run as recorded: the run, every run of the workspace so far (oldest first, this one last),
    whose they are, and where the report goes."""

    run: GradeRun
    runs: list[GradeRun]
    student: str
    report: Path


def record(run: GradeRun, db: Path | None = None, report: Path | None = None) -> RecordedRun:
    """Record ``run`` (one transaction) in ``db`` (default: the workspace's own gradebook)."""
    workspace = workspace_of(Path(run.submission))
    db_path = db or default_path(workspace)
    with Gradebook(db_path) as gradebook:
        gradebook.record(SELF, run)
        runs = gradebook.runs(SELF)
    return RecordedRun(run=run, runs=runs, student=workspace.name,
                       report=report_path(run, db_path, report))
