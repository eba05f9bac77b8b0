"""The grading choices ``llmgrade grade`` and ``llmgrade grade-class`` share (issue 22)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import SetupError


@dataclass(frozen=True)
class GradeOptions:
    """What ``grade`` and ``grade-class`` both let an instructor choose: the device, extra hidden
    suites and the time-limit scale. Plain data, so it travels to Dask workers too."""

    device: str | None = None
    suites: tuple[str, ...] = ()
    time_scale: float = 1.0

    def kwargs(self) -> dict[str, Any]:
        """The :func:`grade_submission` keyword arguments that differ from its defaults."""
        chosen: dict[str, Any] = {}
        if self.device is not None:
            chosen["device"] = self.device
        if self.suites:
            chosen["suites"] = [Path(path) for path in self.suites]
        if self.time_scale != 1.0:
            chosen["time_scale"] = self.time_scale
        return chosen

    def check(self) -> None:
        """A missing suites folder is a setup error before anything is graded."""
        for extra in self.suites:
            if not Path(extra).is_dir():
                raise SetupError("grade.no_suites_dir", path=str(extra))
