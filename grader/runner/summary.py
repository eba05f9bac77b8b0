"""Terminal output of a grading run: a table per chapter, the total, and full check details."""

from __future__ import annotations

from grader.catalog import CHAPTER_TITLES
from grader.messages import t
from grader.results import GradeRun, ItemResult

_STATUS_COLOURS = {"passed": "green", "failed": "red", "not_started": "yellow", "error": "magenta"}


def _style(text: str, status: str, colour: bool) -> str:
    if not colour:
        return text
    import click

    return click.style(text, fg=_STATUS_COLOURS.get(status))


def one_line(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def format_table(run: GradeRun, colour: bool = False) -> str:
    """One table per chapter: item, points, status, one-line reason; then totals."""
    lines: list[str] = []
    for error in run.load_errors:
        lines.append(_style(t("summary.load_error", message=error.message), "error", colour))
    if run.load_errors:
        lines.append("")
    chapters: dict[str, list[ItemResult]] = {}
    for item in run.items:
        chapters.setdefault(item.module, []).append(item)
    for module, items in chapters.items():
        lines.append(t("cli.list.header", chapter=module, title=CHAPTER_TITLES.get(module, "")))
        for item in items:
            status = _style(f"{t('status.' + item.status):<12}", item.status, colour)
            reason = "" if item.status == "passed" else one_line(item.message)
            lines.append(t("summary.row", id=item.id, points=f"{item.points:g}/{item.max_points:g}",
                           status=status, reason=reason).rstrip())
        lines.append("")
    counts = run.counts()
    lines.append(t("summary.total", score=f"{run.score:g}", max_score=f"{run.max_score:g}",
                   passed=counts["passed"], failed=counts["failed"],
                   not_started=counts["not_started"], error=counts["error"]))
    if run.status != "complete":
        lines.append(t("grade.interrupted" if run.status == "interrupted" else "grade.setup_failed",
                       error=one_line(run.error, 2000)))
    return "\n".join(lines)


def format_details(run: GradeRun, colour: bool = False) -> str:
    """Every check of every item, with its full message (``llmgrade check``)."""
    lines: list[str] = []
    for error in run.load_errors:
        lines.append(_style(t("summary.load_error", message=error.message), "error", colour))
    for item in run.items:
        header = t("summary.item_header", id=item.id, title=item.title,
                   points=f"{item.points:g}/{item.max_points:g}", status=t("status." + item.status))
        lines.append(_style(header, item.status, colour))
        if item.status == "error":
            lines.append("  " + item.message)
        for check in item.checks:
            mark = t("status." + check.status)
            lines.append(_style(f"  [{mark}] {check.name}", check.status, colour))
            if check.status == "passed" and check.message_id == "check.convention_used":
                lines.append("      " + check.message)
            if check.status != "passed" and check.message:
                lines.append("      " + check.message.replace("\n", "\n      "))
                tail = str(check.details.get("output_tail") or "").strip()
                if tail:
                    lines.append("      " + t("summary.output_tail"))
                    lines.extend("        " + ln for ln in tail.splitlines()[-10:])
    if run.status != "complete":
        lines.append(t("grade.interrupted" if run.status == "interrupted" else "grade.setup_failed",
                       error=run.error))
    return "\n".join(lines)
