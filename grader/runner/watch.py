"""``llmgrade watch``: check again on every save, with the grading processes already warm.

A *standby* is a normal grading run (trusted pytest + sandboxed worker) started ahead of time and
held at a gate (``RunSpec.gate_fds`` in :mod:`grader.runner.contract`): pytest has started,
collected the suites and imported the reference, the worker has started and imported torch, but
nobody has imported the student's code. On a save the watch opens the gate, so the code graded is
the code as saved; the standby is then used up, and the next one starts as soon as the result is
printed. No process ever grades code imported before the latest save.
"""

from __future__ import annotations

import datetime as _dt
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from grader.authoring.workspace import find_submission
from grader.catalog import items_for
from grader.errors import unknown_item
from grader.results import GradeRun
from grader.runner.run import grade_submission

WATCH_TIME_LIMIT_S = 7 * 24 * 3600.0  # a standby may wait for a save for long; each call keeps its own limit
READY_WAIT_S = 60.0
Snapshot = dict[str, tuple[int, int]]


def snapshot(folder: Path) -> Snapshot:
    """(modification time, size) of every Python file and notebook the student can edit in ``folder``."""
    found: Snapshot = {}
    for path in [*folder.rglob("*.py"), *folder.glob("*.ipynb")]:
        if ".llmgrade" in path.parts or "__pycache__" in path.parts:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        found[str(path.relative_to(folder))] = (stat.st_mtime_ns, stat.st_size)
    return found


class Standby:
    """One grading run, started now, that imports the student's code only when :meth:`go` is called."""

    def __init__(self, folder: Path, items: Sequence[str], device: str | None, time_scale: float) -> None:
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        self._ready, self._go = ready_r, go_w
        self.result: GradeRun | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = grade_submission(folder, items, device=device, time_scale=time_scale,
                                               time_limit_s=WATCH_TIME_LIMIT_S, gate=(ready_w, go_r))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of result()
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """True once both processes are warm (False after ``timeout_s``, or if the run ended)."""
        ready, _, _ = select.select([self._ready], [], [], timeout_s)
        return bool(ready) and os.read(self._ready, 1) == b"1"

    def go(self) -> GradeRun:
        """Import the student's code as it is now, grade it, and return the result."""
        started, started_at = time.time(), _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        os.write(self._go, b"1")
        self._close()
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        # the run's time is the check's, from the save: not the time the standby waited for it
        return replace(self.result, started_at=started_at, duration_s=round(time.time() - started, 3))

    def cancel(self) -> None:
        self._close()  # the gate's reader sees end-of-file and the run ends without grading
        self._thread.join(timeout=30)

    def _close(self) -> None:
        for name in ("_ready", "_go"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def watch(submission: Path | None, items: Sequence[str], show: Callable[[GradeRun], None], *,
          device: str | None = None, time_scale: float = 1.0, poll_s: float = 0.2,
          checks: int | None = None, on_wait: Callable[[], None] | None = None) -> int:
    """Grade ``items`` now and after every save, until interrupted (or after ``checks`` checks).

    Returns how many checks ran.
    """
    folder = find_submission(submission).resolve()
    try:
        ids = [item.id for item in items_for(list(items))]
    except KeyError as exc:
        raise unknown_item(exc.args[0]) from exc
    standby = Standby(folder, ids, device, time_scale)
    done = 0
    try:
        while checks is None or done < checks:
            seen = snapshot(folder)
            show(standby.go())
            done += 1
            if checks is not None and done >= checks:
                return done
            standby = Standby(folder, ids, device, time_scale)
            standby.wait_ready(READY_WAIT_S)  # warm before saying "waiting"; a save meanwhile still counts
            if on_wait is not None:
                on_wait()
            while snapshot(folder) == seen:
                time.sleep(poll_s)
            time.sleep(poll_s)  # let an editor finish writing the file
    finally:
        standby.cancel()
    return done
