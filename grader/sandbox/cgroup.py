"""Caps on the worker's whole process tree: a memory and a pids cgroup (v2, else v1).

Each worker gets its own child of the grader's current cgroup (so several graders and jobs never
share one). The sandbox enters it before ``bwrap`` starts (a tiny ``sh`` prefix writes its pid to
``cgroup.procs`` and ``exec``s ``bwrap``), so every process the student's code starts, detached or
not, is counted. When the worker is stopped its pid namespace dies, the group empties and is removed.

Where no cgroup can be made (not root, no delegation), :func:`available` is false and the worker's
own ``RLIMIT_AS`` is the memory cap; a process count cannot be capped then (``RLIMIT_NPROC`` does
not apply to root, and counts a user's other processes otherwise). ``docs/security.md`` says so.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PIDS_MAX = 512  # threads count too: torch's thread pools, DDP ranks, gloo
PREFIX_ENV = "LLMGRADE_CGROUP_PREFIX"  # set by grader.runner.run: one prefix per grading run
_counter = itertools.count()


def _own_path(controller: str) -> Path | None:
    """This process's cgroup folder for ``controller`` (v1), or the unified one (``""``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller and controller in controllers.split(","):
            return ROOT / controller / path.lstrip("/")
        if not controller and controllers == "":
            return ROOT / path.lstrip("/")
    return None


def _parents() -> dict[str, Path] | None:
    """``{"memory": folder, "pids": folder}`` to create groups in, or ``None``."""
    unified = _own_path("")
    if unified is not None and (unified / "cgroup.subtree_control").exists():
        enabled = (unified / "cgroup.subtree_control").read_text().split()
        if {"memory", "pids"} <= set(enabled) and os.access(unified, os.W_OK):
            return {"memory": unified, "pids": unified}
    memory, pids = _own_path("memory"), _own_path("pids")
    if memory is None or pids is None or not memory.is_dir() or not pids.is_dir():
        return None
    if not (os.access(memory, os.W_OK) and os.access(pids, os.W_OK)):
        return None
    return {"memory": memory, "pids": pids}


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Can this process make and use a capped cgroup? (Tried once: create, limit, remove.)"""
    try:
        group = TreeGroup.create(memory_bytes=1 << 30)
    except OSError:
        return False
    if group is None:
        return False
    group.remove()
    return True


class TreeGroup:
    """One worker's cgroup(s): memory and process-count caps for everything it starts."""

    def __init__(self, folders: list[Path], memory_file: Path) -> None:
        self.folders = folders
        self.memory_file = memory_file

    @classmethod
    def create(cls, memory_bytes: int, pids_max: int = PIDS_MAX) -> TreeGroup | None:
        parents = _parents()
        if parents is None:
            return None
        sweep_stale(tuple(sorted(set(parents.values()))))
        prefix = os.environ.get(PREFIX_ENV) or "llmgrade"
        name = f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        if parents["memory"] == parents["pids"]:  # cgroup v2: one folder, both controllers
            folder = parents["memory"] / name
            folder.mkdir()
            group = cls([folder], folder / "memory.max")
            try:
                (folder / "memory.max").write_text(str(memory_bytes))
                if (folder / "memory.swap.max").exists():
                    (folder / "memory.swap.max").write_text("0")
                (folder / "pids.max").write_text(str(pids_max))
            except OSError:
                group.remove()
                raise
            return group
        memory, pids = parents["memory"] / name, parents["pids"] / name
        memory.mkdir()
        group = cls([memory], memory / "memory.limit_in_bytes")
        try:
            pids.mkdir()
            group.folders.append(pids)
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            (pids / "pids.max").write_text(str(pids_max))
        except OSError:
            group.remove()
            raise
        return group

    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started inside this group: ``sh`` joins it, then ``exec``s the command."""
        files = self.procs_files()
        script = " && ".join(f'echo $$ > "${{{i}}}"' for i in range(1, len(files) + 1))
        return ["/bin/sh", "-c", f'{script} && shift {len(files)} && exec "$@"', "llmgrade-enter",
                *files, *command]

    def hit_memory_limit(self) -> bool:
        """Did the tree reach its memory cap (so a killed worker ran out of memory)?"""
        return self.memory_failures() > 0

    def memory_failures(self) -> int:
        """How many times the tree hit its memory cap so far (compare before and after a call)."""
        folder = self.memory_file.parent
        try:
            if (folder / "memory.failcnt").exists():
                return int((folder / "memory.failcnt").read_text())
            events = (folder / "memory.events").read_text().split()
            counts = dict(zip(events[::2], events[1::2]))
            return int(counts.get("oom_kill", "0")) + int(counts.get("max", "0"))
        except (OSError, ValueError):
            return 0

    def kill_all(self) -> None:
        for folder in self.folders:
            try:
                pids = (folder / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError, PermissionError):
                    pass

    def remove(self) -> None:
        """Kill anything left and remove the group (a group empties a moment after its last kill)."""
        for attempt in range(50):
            self.kill_all()
            left = []
            for folder in self.folders:
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(folder)
            self.folders = left
            if not left:
                return
            time.sleep(0.02 if attempt < 10 else 0.1)


@functools.lru_cache(maxsize=None)
def sweep_stale(parents: tuple[Path, ...]) -> None:
    """Remove empty groups whose creating process is gone (its trusted process was killed from
    outside, so neither it nor its run could clean up). Once per process; names hold the pid."""
    for parent in parents:
        for folder in parent.glob("llmgrade-*"):
            parts = folder.name.split("-")
            try:
                creator = int(parts[-3])
                empty = not (folder / "cgroup.procs").read_text().strip()
            except (ValueError, IndexError, OSError):
                continue
            if empty and creator != os.getpid() and not Path(f"/proc/{creator}").exists():
                try:
                    folder.rmdir()
                except OSError:
                    pass


def remove_leftovers(prefix: str) -> None:
    """Remove the groups of a run whose trusted process was killed before it could (a timeout)."""
    parents = _parents()
    if parents is None:
        return
    folders = sorted({p for parent in set(parents.values()) for p in parent.glob(f"{prefix}-*") if p.is_dir()})
    if folders:
        TreeGroup(folders, folders[0] / "memory.max").remove()
