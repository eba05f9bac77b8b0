"""Terminal output of a grading run: "Fix next" first, then a compact table per chapter, the total.

Long sentences are wrapped to the terminal's width, never cut: a diagnosis ends with its most useful
part ("Likely mistake: ..."). Checks that fail the same way are said once (``grader.feedback``).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from grader.catalog import CHAPTER_TITLES
from grader.feedback import failure_groups, item_location
from grader.messages import t, translated
from grader.textwidth import char_width as _columns
from grader.textwidth import ljust, wrap_columns
from grader.results import GradeRun, ItemResult

_STATUS_COLOURS = {"passed": "green", "failed": "red", "not_started": "yellow", "error": "magenta",
                   "answer_key": "red"}
MIN_WIDTH = 40


def _style(text: str, status: str, colour: bool) -> str:
    if not colour:
        return text
    import click

    return click.style(text, fg=_STATUS_COLOURS.get(status))


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` when set; 80 when not a terminal)."""
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def wrap(text: str, width: int, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` wrapped to ``width`` columns, every word kept whole (never cut mid-sentence)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        start = indent if lines or first is None else first
        if any(_columns(ch) == 2 for ch in paragraph):
            lines.extend(wrap_columns(paragraph, width, start, indent, hang=False))
            continue
        lines.extend(textwrap.wrap(paragraph, width=width, initial_indent=start, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False) or [start.rstrip()])
    return lines


def _points(item: ItemResult) -> str:
    return f"{item.points:g}/{item.max_points:g}"


def needs_fixing(run: GradeRun) -> list[ItemResult]:
    return [item for item in run.items if item.status in ("failed", "error", "answer_key")]


def _fix_next_items(run: GradeRun) -> list[ItemResult]:
    """Failed items, and items whose own checks caught the answer key (a module that uses it is
    said once, among the load errors)."""
    return [item for item in needs_fixing(run) if item.status == "failed"
            or item.status == "answer_key" and item.checks]


def format_fix_next(run: GradeRun, width: int, colour: bool = False, report: Path | None = None) -> list[str]:
    """The "Fix next" block: load errors once, then every failed item with its full diagnosis."""
    todo = _fix_next_items(run)
    if not todo and not run.load_errors:
        return []
    lines = [_style(t("feedback.fix_next.title", count=len(todo) + len(run.load_errors)), "failed", colour)]
    for error in run.load_errors:
        lines.extend(wrap(t("summary.load_error", message=error.message), width, "     ", "  -  "))
    for number, item in enumerate(todo, 1):
        where = item_location(item)
        head = t("feedback.fix_next.item", number=number, id=item.id, points=_points(item),
                 where=t("feedback.fix_next.where", location=where) if where else "")
        lines.append(_style(f"  {head}", item.status, colour))
        for group in failure_groups(item):
            lines.extend(wrap(group.sentence(), width, "       ", "     - "))
        if report is not None:
            lines.extend(wrap(t("feedback.fix_next.report", path=f"{report}#detail-{item.id}"), width, "       ",
                              "     "))
    lines.append("")
    return lines


def format_table(run: GradeRun, colour: bool = False, width: int | None = None,
                 report: Path | None = None) -> str:
    """"Fix next", then one table per chapter (not-started items on one line), then the total."""
    width = width or terminal_width()
    lines = format_fix_next(run, width, colour, report)
    fix_numbers = {item.id: n for n, item in enumerate(_fix_next_items(run), 1)}
    chapters: dict[str, list[ItemResult]] = {}
    for item in run.items:
        chapters.setdefault(item.module, []).append(item)
    for module, items in chapters.items():
        waiting = [item for item in items if item.status == "not_started"]
        started = [item for item in items if item.status != "not_started"]
        if started:
            lines.append(t("cli.list.header", chapter=module,
                           title=translated(f"chapter.{module}", CHAPTER_TITLES.get(module, ""))))
        for item in started:
            status = _style(ljust(t("status." + item.status), 12), item.status, colour)  # 未通过 is 6 columns
            reason = ""
            if item.id in fix_numbers:
                reason = t("feedback.row.see_fix_next", number=fix_numbers[item.id])
            elif item.status == "error":
                reason = t("feedback.row.load_error")
            elif item.status == "answer_key":
                reason = t("feedback.row.answer_key")
            lines.append(t("summary.row", id=item.id, points=_points(item), status=status,
                           reason=reason).rstrip())
        if waiting:
            line = t("feedback.not_started_line", module=module, count=len(waiting),
                     points=f"{sum(i.max_points for i in waiting):g}")
            lines.append(_style(("  " if started else "") + line, "not_started", colour))
        if started:
            lines.append("")
    if lines and lines[-1] != "":
        lines.append("")
    counts = run.counts()
    lines.extend(wrap(t("summary.total", score=f"{run.score:g}", max_score=f"{run.max_score:g}",
                        passed=counts["passed"], failed=counts["failed"],
                        not_started=counts["not_started"], error=counts["error"]), width))
    if counts["answer_key"]:
        lines.extend(wrap(t("summary.answer_key_total", count=counts["answer_key"]), width))
    if run.status != "complete":
        lines.extend(wrap(t("grade.interrupted" if run.status == "interrupted" else "grade.setup_failed",
                            error=" ".join(run.error.split())), width))
    return "\n".join(lines)


def format_details(run: GradeRun, colour: bool = False, width: int | None = None) -> str:
    """Every check of every item by name; then what to fix, checks that fail the same way merged
    (``llmgrade check``)."""
    width = width or terminal_width()
    lines: list[str] = []
    for error in run.load_errors:
        lines.extend(wrap(t("summary.load_error", message=error.message), width, "  "))
    said = {error.message for error in run.load_errors}  # said above: not again under each item
    for item in run.items:
        header = t("summary.item_header", id=item.id, title=item.title,
                   points=_points(item), status=t("status." + item.status))
        lines.extend(_style(line, item.status, colour) for line in wrap(header, width, "  ", ""))
        notes: set[str] = set()
        for check in item.checks:
            lines.append(_style(f"  [{t('status.' + check.status)}] {check.name}", check.status, colour))
            if check.status == "passed" and check.message_id == "check.convention_used" \
                    or check.status != "passed" and item.status == "passed" and check.message:
                # a convention recognised, or a failure the item is not charged for (a dependency's,
                # an extension's): its message says why, as ``grade``'s report does (once an item)
                if check.message not in notes:
                    lines.extend(wrap(check.message, width, "      "))
                notes.add(check.message)
        groups = [group for group in failure_groups(item) if group.message not in said] \
            if item.status != "passed" else []
        if groups:
            lines.append("  " + t("feedback.what_to_fix"))
        for group in groups:
            lines.extend(wrap(group.sentence(), width, "      ", "    - "))
            if group.output_tail:
                lines.append("      " + t("summary.output_tail"))
                lines.extend("        " + ln for ln in group.output_tail.splitlines()[-10:])
    if run.status != "complete":
        lines.extend(wrap(t("grade.interrupted" if run.status == "interrupted" else "grade.setup_failed",
                            error=run.error), width))
    return "\n".join(lines)
