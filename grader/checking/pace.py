"""Time limits that scale with the machine: derived from the reference's own time, never absolute.

A correct submission must never fail because the machine is slow or busy (a student's old laptop,
an instructor grading with ``--jobs``). So every per-call limit is

    floor x slowdown + MULTIPLE x (the reference's time for the same recipe, measured in this run)

where ``floor`` is the suite's nominal limit (overheads the reference does not pay: the pipe, lazy
imports in the worker) and ``slowdown`` is how much slower than an idle grading machine this one runs
just now: the larger of a short fixed probe in this process and the number of processes competing
for each core (:func:`contention`). Both terms grow together when the machine is busy.
The reference time is the longest one of the same recipe in the current check, else the most recent
one in this run; a recipe the reference never ran in this run is covered by the scaled floor alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

MULTIPLE = 10.0  # a student's correct code may be ten times slower than the reference
PROBE_LOOPS = 50_000
PROBE_IDLE_S = 0.010  # the probe on an idle 2-core grading machine (ENVIRONMENT.md's machines)
PROBE_EVERY_S = 2.0
MAX_SLOWDOWN = 50.0


def probe_seconds(loops: int = PROBE_LOOPS) -> float:
    """Wall time of a fixed piece of pure-Python work: grows with the share of a core we get."""
    start = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i % 7
    return time.perf_counter() - start


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def contention() -> float:
    """Processes wanting a core per usable core, now (Linux: runnable tasks in /proc/loadavg) or
    over the last minute (the load average), whichever is higher; 0 where neither is known.

    The probe alone underestimates a busy machine: a process that has just been waiting (for the
    worker) gets the scheduler's sleeper credit and runs its short probe at nearly full speed."""
    load = 0.0
    try:
        fields = Path("/proc/loadavg").read_text("ascii").split()
        load = max(float(fields[0]), float(int(fields[3].split("/")[0]) - 1))  # minus this reader
    except (OSError, ValueError, IndexError):
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0
    return load / usable_cpus()


class Pace:
    def __init__(self, multiple: float = MULTIPLE, probe_idle_s: float = PROBE_IDLE_S) -> None:
        self.multiple = multiple
        self.probe_idle_s = probe_idle_s
        self._check: dict[str, float] = {}
        self._run: dict[str, float] = {}
        self._slowdown = 1.0
        self._probed_at = float("-inf")
        self.max_slowdown_seen = 1.0

    def new_check(self) -> None:
        self._check.clear()

    def record(self, recipe: str, seconds: float) -> None:
        """The reference just ran ``recipe`` in ``seconds`` (wall time, this process)."""
        self._check[recipe] = max(seconds, self._check.get(recipe, 0.0))
        self._run[recipe] = seconds

    def reference_seconds(self, recipe: str) -> float | None:
        if recipe in self._check:
            return self._check[recipe]
        return self._run.get(recipe)

    def slowdown(self) -> float:
        """How many times slower than idle this machine runs now (at least 1, re-measured every 2 s)."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_EVERY_S:
            measured = max(probe_seconds() / self.probe_idle_s, contention())
            self._slowdown = min(max(1.0, measured), MAX_SLOWDOWN)
            self._probed_at = time.monotonic()
            self.max_slowdown_seen = max(self.max_slowdown_seen, self._slowdown)
        return self._slowdown

    def limit(self, recipe: str, floor_s: float) -> float:
        """The time limit for the student's call of ``recipe`` whose nominal limit is ``floor_s``."""
        reference = self.reference_seconds(recipe) or 0.0
        return floor_s * self.slowdown() + self.multiple * reference
