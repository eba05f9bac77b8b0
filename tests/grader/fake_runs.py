"""Fake ``GradeRun`` objects for the gradebook, report, class-grading and export tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from grader import catalog
from grader.results import CheckResult, GradeRun, ItemResult, LoadError, Status

HOSTILE = "<script>alert('x')</script>"
HIDDEN_ID = "7.4"
SECRET = "SECRET-HIDDEN-DETAIL"


def fake_run(seed: int = 0, started_at: str = "2025-01-01T10:00:00+00:00", submission: str = "sub",
             digest: str = "hash0", statuses: dict[str, str] | None = None,
             **extra: Any) -> GradeRun:
    """A run over every catalog item: item i passes unless ``(i + seed) % 4`` picks another status.

    ``statuses`` overrides the status of given item ids. Failed items carry a message, a diagnosis
    and one failed check; ``ch03.CausalAttention`` (when failed) carries a hostile message.
    Item ``HIDDEN_ID`` is hidden and, when failed, its message holds ``SECRET``.
    """
    cycle = ("passed", "failed", "not_started", "passed")
    items = []
    for i, item in enumerate(catalog.ITEMS):
        status = cast(Status, (statuses or {}).get(item.id, cycle[(i + seed) % 4]))
        points = float(item.points) if status == "passed" else 0.0
        checks: list[CheckResult] = []
        message, diagnosis = "", None
        if status == "failed":
            points = float(item.points) / 2
            diagnosis = "mask_not_applied" if item.module == "ch03" else "wrong_shape"
            message = (f"{item.id}: {HOSTILE} expected shape (2, 3), got (3, 2)"
                       if item.id == "ch03.CausalAttention" else f"{item.id}: values differ")
            if item.id == HIDDEN_ID:
                message = f"{SECRET} {message}"
            checks = [CheckResult("test_forward", "failed", message=message, diagnosis=diagnosis,
                                  details={"max_abs_diff": 0.5}),
                      CheckResult("test_shape", "passed")]
        items.append(ItemResult(item.id, item.module, item.title, item.kind, points,
                                float(item.points), status, hidden=item.hidden or item.id == HIDDEN_ID, message=message,
                                diagnosis=diagnosis, checks=checks, duration_s=0.01))
    fields: dict[str, Any] = dict(
        tool_version="0.1.0", torch_version="2.13.0", python_version="3.11.7", device="cpu",
        submission=submission, submission_hash=digest, started_at=started_at, duration_s=12.5,
        items=items)
    fields.update(extra)
    return GradeRun(**fields)


def with_load_error(run: GradeRun, file: str = "ch02.py") -> GradeRun:
    run.load_errors.append(LoadError("ch02", "syntax_error", file, f"invalid syntax {HOSTILE}",
                                     line=3, source_line="def f(:"))
    return run


def write_submission(folder: Path, text: str = "x = 1\n") -> Path:
    """A minimal submission folder (one module file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ch02.py").write_text(text, encoding="utf-8")
    return folder
