"""Exceptions that hidden checks raise; the pytest plugin turns them into check results."""

from __future__ import annotations

from typing import Any

from grader.messages import t


class GradeFailure(AssertionError):
    """A check failed: the student's result differs, and the message says how and why."""

    def __init__(self, message_id: str, *, diagnosis: str | None = None,
                 details: dict[str, Any] | None = None, **params: Any) -> None:
        self.message_id = message_id
        self.diagnosis = diagnosis
        self.details = dict(details or {})
        self.params = params
        text = t(message_id, **params)
        if diagnosis is not None:
            text = t("check.with_diagnosis", message=text, diagnosis=t("diagnosis." + diagnosis))
        super().__init__(text)


class NotStarted(Exception):
    """The student's code reached an exercise stub (``NotImplementedError``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message_id = "check.not_started"
