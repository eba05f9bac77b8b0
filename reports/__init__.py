"""HTML reports: a pure consumer of grading results and the gradebook.

``grader`` never imports this package (``tests/grader/test_layout.py``); the CLI, the composition
root, grades and records first and then calls the one entry point, :func:`write_report`, which
renders either a student's page from a recorded run or the class reports from a gradebook.
"""

from __future__ import annotations

from pathlib import Path

from grader.classroom.history import RecordedRun
from grader.messages import t
from reports.render import build_class_reports, write_progress_report


def write_report(source: RecordedRun | Path | None, out: Path | None = None) -> str:
    """Render ``source`` and return the sentence that says where the pages are.

    - a :class:`RecordedRun` (``llmgrade grade``): the student's page, at ``out`` or where the
      run's record says (``report.html`` beside the gradebook unless ``--report`` chose);
    - a gradebook path, or ``None`` for the default one (``llmgrade report``): ``index.html`` (the
      class overview) and a page per student in the folder ``out`` (default ``llmgrade-report``).
    """
    if isinstance(source, RecordedRun):
        target = out if out is not None else source.report
        page = write_progress_report(source.runs, target, student=source.student)
        return t("grade.report_written", path=str(page))
    return build_class_reports(source, out)
