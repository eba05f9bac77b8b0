"""Items graded side by side: after collection the trusted process forks runners (trusted side).

pytest runs one check after another; grading one item is mostly waiting for its worker. So, once
the suites are collected, the reference imported and the submission loaded, this plugin forks
``runners`` copies of the trusted pytest process (one per usable core, at most
:data:`MAX_RUNNERS`; one for a run of a single item, or when the run is one of several at once,
``grade-class``). The process that forked them only hands out items and collects what they found:

- a runner asks for an item, runs all its checks (``pytest_runtest_protocol``, the item's worker
  forked for its first check and stopped after its last, ``grader/checking/fixtures.py``) and sends
  back the item's check records, then asks again;
- an item is handed out once every item it depends on is finished (``depends``, transitively), so
  a dependency whose code hung, crashed or exited is known by then and the dependent's calls swap
  it for the reference's instead of waiting on the same hang (``Student.broken``);
- among the items ready, the one that took longest last time goes first (``durations``, kept in
  the reference cache's folder), so the slow ones do not end the run alone;
- the forking process writes the one signed results file, as a single process would.

Runners are forked before any check ran, with torch's threads at one per runner (a forked OpenMP
pool would hang), and die with the process that forked them. Nothing of the student's runs in them:
they are the trusted side, like the process they come from.
"""

from __future__ import annotations

import json
import os
import select
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.catalog import BY_ID
from grader.checking.plugin import collector_of, item_id_of

MAX_RUNNERS = 8
_HEADER = struct.Struct("!I")
RUNNERS = pytest.StashKey[int]()


def runners_for(requested: int, items: int, cpus: int) -> int:
    """How many runners a run of ``items`` items gets: ``requested`` (0: one per usable core)."""
    wanted = requested if requested > 0 else min(cpus, MAX_RUNNERS)
    return max(1, min(wanted, items))


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int) -> dict[str, Any] | None:
    header = _read(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    data = _read(fd, size)
    if data is None:
        return None
    message = json.loads(data)
    return message if isinstance(message, dict) else None


def _read(fd: int, size: int) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


@dataclass
class _Runner:
    pid: int
    to_runner: int
    from_runner: int
    item: str | None = None  # being graded
    following: str | None = None  # handed out while its last item was still being graded
    waiting: bool = False  # asked for an item, none could be given yet
    ahead: bool = False  # asked before the last check of its item (may not be kept waiting)
    done: bool = False


@dataclass
class Plan:
    """Which items are left, which are being graded and which are done (in the forking process)."""

    order: list[str]
    durations: dict[str, float] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    retried: set[str] = field(default_factory=set)

    def next(self) -> str | None:
        """The ready item expected to take longest (ties in book order), or None."""
        graded = set(self.order) | self.running | self.finished
        ready = [item for item in self.order
                 if all(dep in self.finished or dep not in graded for dep in _depends(item))]
        if not ready:
            return None
        chosen = max(ready, key=lambda item: (self.durations.get(item, 0.0), -self.order.index(item)))
        self.order.remove(chosen)
        self.running.add(chosen)
        return chosen

    @property
    def empty(self) -> bool:
        return not self.order


def _depends(item_id: str) -> Iterator[str]:
    """Every item ``item_id`` depends on, transitively (not what it only ``uses``: that is the
    reference's code, never the student's)."""
    seen: set[str] = set()
    stack = list(BY_ID[item_id].depends) if item_id in BY_ID else []
    while stack:
        dep = stack.pop()
        if dep in seen or dep not in BY_ID:
            continue
        seen.add(dep)
        yield dep
        stack.extend(BY_ID[dep].depends)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    count = session.config.stash.get(RUNNERS, 1)
    groups = _groups(session.items)
    collector = collector_of(session.config)
    if count <= 1 or len(groups) <= 1 or collector is None or session.config.option.collectonly:
        return None  # pytest's own loop
    from grader.checking import fixtures

    grading = session.config.stash.get(fixtures.GRADING, None)
    if grading is None:
        return None
    durations = _load_durations()
    plan = Plan(order=list(groups), durations=durations)
    runners = [_fork_runner(session, groups, grading) for _ in range(min(count, len(groups)))]
    broken: dict[str, str] = {}
    measured: dict[str, float] = {}
    try:
        _coordinate(runners, plan, broken, measured, collector, session)
    finally:
        for runner in runners:
            for fd in (runner.to_runner, runner.from_runner):
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.waitpid(runner.pid, 0)
            except ChildProcessError:
                pass
    grading.broken.update(broken)
    _save_durations({**durations, **measured})
    return True


def _coordinate(runners: list[_Runner], plan: Plan, broken: dict[str, str], measured: dict[str, float],
                collector: Any, session: pytest.Session) -> None:
    while not all(r.done for r in runners):
        live = {r.from_runner: r for r in runners if not r.done}
        ready, _, _ = select.select(list(live), [], [])
        for fd in ready:
            runner = live[fd]
            message = _receive(fd)
            if message is None:  # the runner died: its item is graded again once, elsewhere
                runner.done = True
                for lost in (runner.item, runner.following):
                    if lost is None:
                        continue
                    plan.running.discard(lost)
                    if lost not in plan.retried:
                        plan.retried.add(lost)
                        plan.order.insert(0, lost)
                    else:
                        plan.finished.add(lost)
                runner.item = runner.following = None
                continue
            if message.get("op") == "done":
                item = str(message["item"])
                plan.running.discard(item)
                plan.finished.add(item)
                runner.item, runner.following = runner.following, None
                collector.checks.extend(message.get("checks", []))
                session.testsfailed += sum(1 for c in message.get("checks", []) if c.get("status") == "failed")
                broken.update({str(k): str(v) for k, v in dict(message.get("broken", {})).items()})
                measured[item] = float(message.get("seconds", 0.0))
            elif message.get("op") == "next":
                runner.waiting = True
                runner.ahead = bool(message.get("ahead"))
        for runner in runners:
            if runner.done or not runner.waiting:
                continue
            chosen = plan.next()
            if chosen is not None:
                runner.waiting = False
                if runner.item is None:
                    runner.item = chosen
                else:
                    runner.following = chosen
                _send(runner.to_runner, {"op": "item", "item": chosen, "broken": broken})
            elif plan.empty and not (runner.ahead and plan.running):
                runner.waiting = False
                _send(runner.to_runner, {"op": "stop"})
            elif runner.ahead:  # asked before its item's last check: it must not wait for another item
                runner.waiting = False
                _send(runner.to_runner, {"op": "later"})


def _groups(items: list[pytest.Item]) -> dict[str, list[pytest.Item]]:
    groups: dict[str, list[pytest.Item]] = {}
    for node in items:
        groups.setdefault(item_id_of(node) or "", []).append(node)
    return groups


def _fork_runner(session: pytest.Session, groups: dict[str, list[pytest.Item]], grading: Any) -> _Runner:
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(down_w)
            os.close(up_r)
            from grader.sandbox.nest import set_parent_death_signal

            set_parent_death_signal()
            _run(session, groups, grading, down_r, up_w)
        except BaseException:  # noqa: BLE001 - the forking process sees the pipe close
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    os.close(down_r)
    os.close(up_w)
    return _Runner(pid, down_w, up_r)


def _run(session: pytest.Session, groups: dict[str, list[pytest.Item]], grading: Any, down: int, up: int) -> None:
    """A runner's loop: ask for an item, grade it, send its checks; the next item is asked for
    before the last check of the current one, so that pytest can keep the fixtures they share."""
    import time

    collector = collector_of(session.config)
    assert collector is not None
    hook = session.config.hook
    current = _ask(down, up, grading, ahead=False)
    while current is not None:
        nodes = groups[current]
        start, started = len(collector.checks), time.monotonic()
        following: str | None = None
        for index, node in enumerate(nodes):
            if index + 1 < len(nodes):
                nextitem: pytest.Item | None = nodes[index + 1]
            else:
                following = _ask(down, up, grading, ahead=True)
                nextitem = groups[following][0] if following is not None else None
            hook.pytest_runtest_protocol(item=node, nextitem=nextitem)
        _send(up, {"op": "done", "item": current, "checks": collector.checks[start:],
                   "broken": {k: v for k, v in grading.broken.items() if k == current},
                   "seconds": round(time.monotonic() - started, 3)})
        current = following if following is not None else _ask(down, up, grading, ahead=False)
    return



def _ask(down: int, up: int, grading: Any, ahead: bool) -> str | None:
    """The next item to grade; None when there is none now (``ahead``) or none left at all."""
    _send(up, {"op": "next", "ahead": ahead})
    answer = _receive(down)
    if answer is None or answer.get("op") != "item":
        return None
    grading.broken.update({str(k): str(v) for k, v in dict(answer.get("broken", {})).items()})
    return str(answer["item"])


def _durations_file() -> Path | None:
    from grader.checking.reference_cache import cache_root

    root = cache_root()
    return root / "durations.json" if root is not None else None


def _load_durations() -> dict[str, float]:
    path = _durations_file()
    try:
        data = json.loads(path.read_text("utf-8")) if path is not None else {}
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def _save_durations(durations: dict[str, float]) -> None:
    path = _durations_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: round(v, 3) for k, v in sorted(durations.items()) if k in BY_ID}), "utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
