"""After ``llmgrade grade``: record the run in the workspace's gradebook and write the student report."""

from __future__ import annotations

from pathlib import Path

from grader.classroom.gradebook import Gradebook, default_path
from grader.results import GradeRun

REPORT_NAME = "report.html"
SELF = "me"  # the student id of a personal workspace's own runs


def report_path(run: GradeRun, db: Path | None = None, report: Path | None = None) -> Path:
    """Where :func:`record_and_report` writes the report for ``run``."""
    return report or (db or default_path(Path(run.submission))).parent / REPORT_NAME


def record_and_report(run: GradeRun, db: Path | None = None, report: Path | None = None) -> Path:
    """Record ``run`` (one transaction) and write the HTML progress report; returns its path."""
    from reports.render import write_progress_report

    workspace = Path(run.submission)
    db_path = db or default_path(workspace)
    with Gradebook(db_path) as gradebook:
        gradebook.record(SELF, run)
        runs = gradebook.runs(SELF)
    target = report_path(run, db_path, report)
    return write_progress_report(runs, target, student=workspace.name)
