"""The attacks of issue 9, each as a student's submission, through the real CLI (a subprocess).

``llmgrade grade``: the attacker's own items gain nothing, an honest item in the same run passes,
a private ``--suites`` folder does not leak, nothing outside is written or reached, and no process
or temporary folder is left behind. ``llmgrade grade-class --jobs 2``: with an honest neighbour
graded at the same time, the neighbour keeps full marks and the gradebook stays intact.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.results import GradeRun
from tests.redteam.attacks import ROOT, honest_submission, hostile_submission, reported

SECRET = "PRIVATE-SUITE-CONTENT-7f3a"


@dataclass
class Listener:
    """A TCP listener on the host's 127.0.0.1 that records every connection it gets."""

    sock: socket.socket
    connections: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                self.connections.append(conn.recv(100))
            except OSError:
                self.connections.append(b"")
            conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    found = Listener(sock)
    thread = threading.Thread(target=found.serve, daemon=True)
    thread.start()
    yield found
    sock.close()


@dataclass
class Scene:
    tmp: Path
    marker: str
    outside: Path
    host_tmp: Path
    secret_suites: Path
    probes: list[Path]

    def config(self, class_dir: Path, gradebook: Path, port: int) -> dict[str, Any]:
        return {"marker": self.marker, "outside": str(self.outside), "host_tmp": str(self.host_tmp),
                "secret_suites": str(self.secret_suites), "secret_file": str(self.secret_suites / "test_private.py"),
                "class_dir": str(class_dir), "gradebook": str(gradebook), "port": port,
                "probe_files": [str(p) for p in self.probes]}

    def run_cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, TMPDIR=str(self.host_tmp))
        env.pop("CI", None)
        return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                              env=env, timeout=timeout, cwd=self.tmp, check=False)

    def leftovers(self) -> list[str]:
        """Processes that carry the attack's marker, and temporary folders of the run."""
        time.sleep(5)  # the daemon acts 3 s after it starts
        found = [str(p) for p in self.host_tmp.iterdir()]
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    cmd = Path(f"/proc/{name}/cmdline").read_bytes()
                except OSError:
                    continue
                if self.marker.encode() in cmd:
                    found.append(f"process {name}: {cmd[:100]!r}")
        return found

    def cleanup_probes(self) -> list[str]:
        written = [str(p) for p in self.probes if p.exists()]
        for path in self.probes:
            path.unlink(missing_ok=True)
        return written


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    marker = f"llmgrade-redteam-{uuid.uuid4().hex[:8]}"
    outside = tmp_path / "outside"
    outside.mkdir()
    host_tmp = tmp_path / "tmp"
    host_tmp.mkdir()
    suites = tmp_path / "private-suites"
    suites.mkdir()
    (suites / "test_private.py").write_text(
        f"# {SECRET}\nimport pytest\n\n\n@pytest.mark.item('ch04.LayerNorm')\n"
        "def test_private_layernorm(student, ref):\n    pass\n", "utf-8")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    probes = [ROOT / "grader" / "recipes" / f"{marker}.txt", site / f"{marker}.txt",
              outside / "pwned", Path(sys.base_prefix) / f"{marker}.txt"]
    found = Scene(tmp_path, marker, outside, host_tmp, suites, probes)
    yield found
    found.cleanup_probes()


def item(run: GradeRun, item_id: str) -> Any:
    return next(i for i in run.items if i.id == item_id)


def attack_report(run: GradeRun) -> list[str]:
    gelu = item(run, "ch04.GELU")
    assert gelu.status == "failed" and gelu.points == 0
    return reported(next(c.message for c in gelu.checks if "REDTEAM" in c.message))


def test_grade_contains_every_attack(scene: Scene, listener: Listener) -> None:
    submission = scene.tmp / "attacker"
    gradebook = submission / ".llmgrade" / "gradebook.sqlite"
    hostile_submission(submission, scene.config(submission, gradebook, listener.port))
    out = scene.tmp / "results.json"
    done = scene.run_cli("grade", "ch04.GELU", "ch04.LayerNorm", "--submission", str(submission),
                         "--suites", str(scene.secret_suites), "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    run = GradeRun.read(out)
    assert run.status == "complete" and run.isolation.startswith("bwrap")
    assert attack_report(run) == []
    assert item(run, "ch04.LayerNorm").status == "passed"  # the honest item in the same run
    text = out.read_text("utf-8") + done.stdout + done.stderr
    assert SECRET not in text and str(scene.secret_suites) not in text
    assert listener.connections == []
    assert scene.leftovers() == []
    assert not (scene.outside / "daemon").exists()
    assert scene.cleanup_probes() == []
    with sqlite3.connect(gradebook) as con:  # the run was recorded in a readable gradebook
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*.py")):
            archive.write(path, path.relative_to(folder))
    return target


def test_grade_class_keeps_the_neighbour_and_the_gradebook(scene: Scene, listener: Listener) -> None:
    classroom = scene.tmp / "class"
    classroom.mkdir()
    gradebook = scene.tmp / "gradebook.sqlite"
    hostile_submission(classroom / "mallory", scene.config(classroom, gradebook, listener.port))
    _zip(honest_submission(scene.tmp / "alice-src"), classroom / "alice.zip")
    done = scene.run_cli("grade-class", str(classroom), "--jobs", "2", "--db", str(gradebook))
    assert "Traceback" not in done.stderr, done.stderr
    assert scene.leftovers() == []
    assert not (scene.outside / "daemon").exists()
    assert scene.cleanup_probes() == []
    assert listener.connections == []
    from grader.classroom.gradebook import Gradebook

    with Gradebook(gradebook) as book:  # intact, readable, both students recorded
        alice, mallory = book.latest("alice"), book.latest("mallory")
    assert alice is not None and mallory is not None
    graded = [i for i in alice.items if i.module in ("ch03", "ch04")]
    assert graded and all(i.status == "passed" for i in graded), [(i.id, i.status) for i in graded]
    assert alice.isolation.startswith("bwrap") and mallory.isolation.startswith("bwrap")
    assert attack_report(mallory) == []
    assert item(mallory, "ch04.GELU").points == 0
