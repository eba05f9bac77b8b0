"""The trusted pytest process does not outlive the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_watchdog_ends_its_group_when_the_parent_dies(tmp_path: Path) -> None:
    """A parent starts a child in its own session (as run.py starts pytest); the child starts a
    grandchild (as pytest starts the worker). Killing the parent ends both."""
    pids = tmp_path / "pids"
    child = ("import os, subprocess, sys, time\n"
             "from grader.checking.orphan import exit_with_parent\n"
             "exit_with_parent(0.1)\n"
             "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
             f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}')\n"
             "time.sleep(60)\n")
    parent = ("import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, '-c', {child!r}], start_new_session=True)\n"
              "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        child_pid, grandchild_pid = map(int, pids.read_text().split())
        assert _alive(child_pid) and _alive(grandchild_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while (_alive(child_pid) or _alive(grandchild_pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child_pid) and not _alive(grandchild_pid)
    finally:
        proc.kill()
