"""A student's progress across runs: the latest result of every item, whatever each run graded.

``llmgrade grade ch03`` after a full run updates the ch03 items and leaves every other item as it
was: the picture never shrinks to the chapters of the last run. Items never graded score as not
started (so every score here is out of the whole catalog and the points of the history chart are
comparable), but say "not graded yet" (``graded=False``): nothing is known about them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from grader import catalog
from grader.classroom.gradebook import History
from grader.messages import item_title
from grader.results import GradeRun, ItemResult, LoadError


def _never_graded(item: catalog.Item) -> ItemResult:
    return ItemResult(item.id, item.module, item_title(item.id, item.title), item.kind, 0.0,
                      float(item.points), "not_started", hidden=item.hidden, graded=False)


def combined(runs: Sequence[GradeRun]) -> GradeRun:
    """The last run, with every catalog item's latest result across ``runs`` (oldest first).

    Load errors are those of the latest run that graded each module.
    """
    if not runs:
        raise ValueError("combined() needs at least one run")
    latest: dict[str, ItemResult] = {}
    load_errors: dict[str, list[LoadError]] = {}
    for run in runs:
        modules = {item.module for item in run.items}
        for module in modules:
            load_errors[module] = [e for e in run.load_errors if e.module == module]
        for item in run.items:
            latest[item.id] = item
    items = [latest.get(item.id) or _never_graded(item) for item in catalog.ITEMS]
    errors = [e for module in catalog.MODULES for e in load_errors.get(module, [])]
    return dataclasses.replace(runs[-1], items=items, load_errors=errors)


def progress_history(runs: Sequence[GradeRun]) -> History:
    """``(started_at, score, max_score)`` after each run, every one out of the whole catalog."""
    rows: History = []
    for n, run in enumerate(runs, 1):
        picture = combined(runs[:n])
        rows.append((run.started_at, picture.score, picture.max_score))
    return rows


@dataclass
class Changes:
    """What the last run changed: items that pass now and did not, and items that fail now and did not."""

    newly_passing: list[str] = field(default_factory=list)
    newly_failing: list[str] = field(default_factory=list)
    first_run: bool = False


_BAD = ("failed", "error", "answer_key")


def changes(runs: Sequence[GradeRun]) -> Changes:
    if len(runs) < 2:
        return Changes(first_run=True)
    before = {item.id: item.status for item in combined(runs[:-1]).items}
    now = combined(runs)
    graded = {item.id for item in runs[-1].items}
    result = Changes()
    for item in now.items:
        if item.id not in graded:
            continue
        was = before.get(item.id, "not_started")
        if item.status == "passed" and was != "passed":
            result.newly_passing.append(item.id)
        elif item.status in _BAD and was not in _BAD:
            result.newly_failing.append(item.id)
    return result
