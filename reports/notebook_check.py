"""The HTML that ``%llmgrade ITEM`` shows in a notebook's cell output: one checked item, in full."""

from __future__ import annotations

from grader.results import GradeRun
from reports.render import _ENV, chapters


def render_check(run: GradeRun, source: str, left_out: str) -> str:
    """An HTML fragment (autoescaped): each item with its status, points, diagnosis, messages and
    checks, where the code came from, and what was left out of grading."""
    student = run.student_view()
    items = [item for chapter in chapters(student) for item in chapter.items]
    checks = {item.id: item.checks for item in student.items}
    return _ENV.get_template("notebook_check.html.j2").render(
        run=student, items=items, checks=checks, source=source, left_out=left_out)
