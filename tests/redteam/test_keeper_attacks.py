"""A student's code cannot reach the keeper of ``llmgrade check`` (grader/runner/keep_warm.py).

The attacker knows exactly where the keeper's lease (with its token), socket and folder are, and
runs while that keeper grades it. From the sandboxed worker it must find none of them: no token to
read, no socket to connect to (to stop the keeper, or to ask it for a check of its own), no folder
to list. The same probe run outside the sandbox finds all three, so the test can fail.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any


from grader.runner.commands import check_run_kept_warm
from grader.runner.keep_warm import Place, ask, request_for
from tests.redteam.attacks import ROOT, reported

PROBE = r'''
def _keeper_probe(paths):
    import json, os, socket
    found = []
    try:
        token = json.load(open(paths["lease"]))["token"]
        found.append("read the token")
    except Exception:
        token = "0" * 32
    try:
        found.append("listed the keeper's folder: " + ", ".join(os.listdir(paths["folder"])))
    except Exception:
        pass
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(5)
        conn.connect(paths["socket"])
        found.append("connected to the keeper")
        conn.sendall(json.dumps({"token": token, "op": "stop"}).encode())
        conn.shutdown(socket.SHUT_WR)
        if conn.recv(1024):
            found.append("the keeper answered")
    except Exception:
        pass
    return found
'''

ATTACK = PROBE + r'''

def _attack_forward(self, x):
    raise RuntimeError("REDTEAM " + json.dumps(_keeper_probe(PATHS)) + " END")


GELU.forward = _attack_forward
'''


def _wait(condition: Any, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_the_worker_cannot_see_or_reach_the_keeper(tmp_path: Path, private_runtime: Path) -> None:
    work = (tmp_path / "work").resolve()
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    place = Place.of(work)
    assert place is not None and place.lease.parent == private_runtime / "llmgrade"
    paths = {"lease": str(place.lease), "socket": str(place.socket), "folder": str(place.lease.parent)}
    honest = (ROOT / "solutions" / "ch04.py").read_text("utf-8")
    pid = None
    try:
        first = check_run_kept_warm(work, "ch04.GELU", option=True)  # honest: the keeper starts
        assert [i.status for i in first.items] == ["passed"]
        assert _wait(lambda: place.socket.exists() and place.lease.exists()), "no keeper started"
        pid = int(json.loads(place.lease.read_text("utf-8"))["pid"])

        namespace: dict[str, Any] = {}
        exec(PROBE, namespace)  # the probe itself works: outside the sandbox it finds everything
        outside = namespace["_keeper_probe"](paths)
        assert "read the token" in outside and "connected to the keeper" in outside, outside
        assert any(found.startswith("listed the keeper's folder") for found in outside), outside
        assert _wait(lambda: not _alive(pid), 60)  # ... and with the token it stopped the keeper

        check_run_kept_warm(work, "ch04.GELU", option=True)  # a new keeper for the attack
        assert _wait(lambda: place.lease.exists() and json.loads(place.lease.read_text())["pid"] != pid)
        pid = int(json.loads(place.lease.read_text("utf-8"))["pid"])
        (work / "ch04.py").write_text(honest + "\nimport json\nPATHS = " + json.dumps(paths) + "\n" + ATTACK,
                                      "utf-8")
        served = ask(place, request_for(work, ["ch04.GELU"], None, 1.0))
        assert served is not None, "the keeper did not serve the check"
        (item,) = served.items
        assert item.status == "failed"
        assert reported(" ".join(c.message for c in item.checks)) == []
        assert _alive(pid), "the student's code stopped the keeper"
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, 15)
            _wait(lambda: not _alive(pid), 30)
