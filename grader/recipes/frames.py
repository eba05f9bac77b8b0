"""Where in the student's files an exception was raised: used by the worker for every error it reports
(``grader/sandbox/child.py``) and by recipes that return an exception as a value (``ch06.call_or_error``).
Light on purpose (no torch): the worker imports it before anything else."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any


def student_frame(exc: BaseException, root: Path) -> dict[str, Any]:
    """The innermost traceback frame that lies in the student's folder."""
    found: dict[str, Any] = {}
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            inside = Path(frame.filename).resolve().is_relative_to(root)
        except (OSError, ValueError):
            inside = False
        if inside:
            found = {"file": frame.filename, "line": frame.lineno,
                     "source_line": (frame.line or "").strip(), "function": frame.name}
    if not found and isinstance(exc, SyntaxError) and exc.filename:
        found = {"file": exc.filename, "line": exc.lineno, "source_line": (exc.text or "").strip()}
    return found
