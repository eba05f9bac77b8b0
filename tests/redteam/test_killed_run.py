"""A run stopped by the whole-submission time limit leaves nothing behind: no temporary folder, no
cgroup, no process (the worker's pid namespace dies with the killed trusted process)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader.runner.run import grade_submission
from grader.sandbox import cgroup

ROOT = Path(__file__).resolve().parents[2]


def _marked_processes(marker: str) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(name)
            except OSError:
                pass
    return found


def test_a_killed_run_leaves_no_folder_group_or_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"llmgrade-redteam-{uuid.uuid4().hex[:8]}"
    submission = tmp_path / "work"
    submission.mkdir()
    shutil.copy(ROOT / "solutions" / "ch03.py", submission / "ch03.py")
    # The sleeper is started through libc, as a hostile student would: subprocess from graded code is
    # refused by the answer-key tripwire, and what this test is about is what the kill leaves behind.
    (submission / "ch04.py").write_text(
        "import ctypes, os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    argv = (ctypes.c_char_p * 3)({marker!r}.encode(), b'600', None)\n"
        "    ctypes.CDLL(None).execv(b'/bin/sleep', argv)\n"
        "    os._exit(127)\n"
        "time.sleep(600)  # hangs while the worker loads the modules\n", "utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    prefixes: list[str] = []
    left_by_the_kill: list[Path] = []
    real_remove = cgroup.remove_leftovers
    parents = cgroup._parents()

    def remove_leftovers(prefix: str) -> None:
        prefixes.append(prefix)
        if parents is not None:
            left_by_the_kill.extend(p for parent in set(parents.values()) for p in parent.glob(f"{prefix}-*"))
        real_remove(prefix)

    monkeypatch.setattr(cgroup, "remove_leftovers", remove_leftovers)
    # Shorter than the per-module import limit (15 s), so the whole run is killed mid-import.
    seen: list[str] = []
    done = threading.Event()

    def look() -> None:  # the sleeper did start: what follows is about cleaning it up
        while not done.is_set() and not seen:
            seen.extend(_marked_processes(marker))
            time.sleep(0.2)

    watcher = threading.Thread(target=look, daemon=True)
    watcher.start()
    run = grade_submission(submission, ["ch04.GELU"], time_limit_s=10)
    done.set()
    watcher.join()
    assert run.status == "interrupted"
    assert seen, "the submission's sleeper never started"
    time.sleep(1)
    assert list(temp.iterdir()) == []
    assert _marked_processes(marker) == []
    assert len(prefixes) == 1
    if parents is not None:  # the killed trusted process left its worker's groups; run.py removed them
        assert left_by_the_kill
        assert [p for parent in set(parents.values()) for p in parent.glob(f"{prefixes[0]}-*")] == []
