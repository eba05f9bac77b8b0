"""Parent side: where the student's code was when a time limit stopped it.

Just before killing a worker that ran out of time, the parent sends it ``SIGUSR1``; the worker's
``faulthandler`` (registered before any student code runs) writes the Python stack to a file of its
own, from a C signal handler, so it works in a tight Python loop and inside a long torch call alike.
This module reads that text as untrusted plain data: only frames whose file lies in the student's
folder count, the source line is read from the student's file here, and the item that owns the
line is found by parsing (never running) that file. The student's code could write a misleading
dump, but it only changes the hint in its own feedback, never a grade.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from grader.catalog import MODULES, item_for_symbol

MAX_DUMP_BYTES = 64 * 1024
_FRAME = re.compile(r'^\s*File "(?P<file>[^"\n]+)", line (?P<line>\d+) in (?P<function>[\w<>.]+)', re.M)


@dataclass(frozen=True)
class StuckAt:
    file: str
    line: int
    function: str
    source_line: str
    item: str  # the catalog item whose code holds the line, or ""


def request_dump(pid: int, dump: Path, wait_s: float = 1.0) -> str:
    """Ask process ``pid`` for its stack (SIGUSR1) and return what it wrote to ``dump``."""
    start = dump.stat().st_size if dump.exists() else 0
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return ""
    deadline = time.monotonic() + wait_s
    size = start
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = dump.stat().st_size if dump.exists() else 0
        if now > start and now == size:  # written, and no longer growing
            break
        size = now
    try:
        with open(dump, "rb") as fh:
            fh.seek(start)
            return fh.read(MAX_DUMP_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def owner_item(path: Path, line: int) -> str:
    """The id of the catalog item whose top-level definition in ``path`` spans ``line``, or ``""``."""
    module = path.stem
    if module not in MODULES:
        return ""
    try:
        tree = ast.parse(path.read_text("utf-8"))
    except (OSError, SyntaxError, ValueError):
        return ""
    for node in tree.body:
        end = getattr(node, "end_lineno", None) or node.lineno
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.lineno <= line <= end:
            item = item_for_symbol(module, node.name)
            return item.id if item is not None else ""
    return ""


def stuck_at(dump: str, submission: Path) -> StuckAt | None:
    """The innermost frame of ``dump`` that lies in the student's folder ``submission``."""
    root = submission.resolve()
    for match in _FRAME.finditer(dump):  # faulthandler lists the most recent call first
        try:
            path = Path(match["file"]).resolve()
        except (OSError, RuntimeError):
            continue
        if not path.is_relative_to(root) or not path.is_file():
            continue
        line = int(match["line"])
        try:
            lines = path.read_text("utf-8", "replace").splitlines()
        except OSError:
            continue
        if not 1 <= line <= len(lines):
            continue
        return StuckAt(str(path), line, match["function"], lines[line - 1].strip(), owner_item(path, line))
    return None
