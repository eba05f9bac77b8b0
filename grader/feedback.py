"""What to tell a student about a failed item, shared by the terminal, the report and the exports.

A failed item often fails several checks for one reason (every forward pass of an attention class
without the scaling). :func:`failure_groups` merges the checks that fail the same way (the same
message, or the same named mistake), so the diagnosis is said once, with how many checks it covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.messages import t
from grader.results import CheckResult, ItemResult


@dataclass
class FailureGroup:
    """Checks of one item that fail the same way; ``message`` is the first one's full message."""

    message: str
    names: list[str] = field(default_factory=list)
    location: str = ""
    output_tail: str = ""

    def sentence(self) -> str:
        """The message, prefixed with the check's name, or the number and names of the checks."""
        if len(self.names) == 1:
            return t("feedback.one_check", name=self.names[0], message=self.message)
        if not self.names:
            return self.message
        return t("feedback.merged_checks", count=len(self.names), names=", ".join(self.names),
                 message=self.message)


def _key(check: CheckResult) -> tuple[str, ...]:
    if check.blamed_on:
        return ("blamed", check.blamed_on)
    if check.diagnosis:
        return ("diagnosis", check.message_id, check.diagnosis)
    return ("message", check.message)


def check_location(check: CheckResult) -> str:
    """``file:line`` in the student's code where the check stopped, or ``""`` when not known
    (``ch03.ipynb, cell 14, line 3`` for a notebook: the worker error's ``where``)."""
    where = check.details.get("where")
    if isinstance(where, str) and where and where != "?":
        return where
    file, line = check.details.get("file"), check.details.get("line")
    if not file or line is None:
        return ""
    return f"{Path(str(file)).name}:{line}"


def failure_groups(item: ItemResult) -> list[FailureGroup]:
    """The item's non-passing checks merged by cause, in the order they first appear.

    An item without check details (a hidden item, or one whose module did not load) gives its own
    message as one group.
    """
    groups: dict[tuple[str, ...], FailureGroup] = {}
    by_message: dict[str, FailureGroup] = {}  # a check saying exactly a group's message joins it
    for check in item.checks:
        if check.status == "passed" or not check.message:
            continue
        tail = str(check.details.get("output_tail") or "").strip()
        group = by_message.get(check.message) or groups.setdefault(
            _key(check), FailureGroup(check.message, location=check_location(check), output_tail=tail))
        by_message.setdefault(check.message, group)
        group.names.append(check.name)
    if not groups and item.message and item.status != "passed":
        return [FailureGroup(item.message)]
    return list(groups.values())


def item_location(item: ItemResult) -> str:
    """The first ``file:line`` any of the item's failed checks points at, or ``""``."""
    return next((g.location for g in failure_groups(item) if g.location), "")
