"""Class grading on a Dask cluster (``grade-class --cluster``), with a real ``LocalCluster``.

The class: the model answers, a buggy copy, the stubs, a syntax error, a zip and a damaged zip. Each
submission is graded on two items only (the plumbing is what is tested here; the grading itself is
tested elsewhere). What the Dask path records must equal what the local pool records, and killing a
Dask worker or the instructor's process mid-run must end, after a rerun, with every submission
recorded exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader import __version__
from grader.classroom import cluster
from grader.classroom.gradebook import Gradebook
from grader.classroom.grade_class import grade_class
from grader.errors import SetupError

distributed = pytest.importorskip("distributed", reason="the cluster extra (distributed) is not installed")

ROOT = Path(__file__).resolve().parents[2]
ITEMS = ["ch04.LayerNorm", "ch04.GELU"]


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__")))


def make_class(folder: Path) -> Path:
    subs = folder / "subs"
    _copy(ROOT / "solutions", subs / "model")
    buggy = _copy(ROOT / "solutions", subs / "buggy")
    text = (buggy / "ch04.py").read_text("utf-8")
    assert "keepdim=True, unbiased=False)" in text
    (buggy / "ch04.py").write_text(text.replace("keepdim=True, unbiased=False)", "keepdim=True, unbiased=True)", 1),
                                   "utf-8")
    _copy(ROOT / "exercises", subs / "stubs")
    syntax = _copy(ROOT / "solutions", subs / "syntax")
    (syntax / "ch04.py").write_text("def oops(:\n", "utf-8")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as archive:
        for path in sorted((ROOT / "solutions").glob("*.py")):
            archive.write(path, f"zipped/{path.name}")
    (subs / "badzip.zip").write_bytes(b"PK\x03\x04 truncated")
    return subs


def recorded(db: Path) -> dict[str, Any]:
    """What the gradebook holds per student, without times, paths and who graded it."""
    with Gradebook(db) as book:
        return {student: {"status": run.status, "score": run.score,
                          "items": [(i.id, i.status, i.points, i.diagnosis, i.message) for i in run.items],
                          "load_errors": [(e.module, e.kind) for e in run.load_errors],
                          "runs": len(book.history(student))}
                for student, run in book.latest_all().items()}


def test_pack_is_content_addressed(tmp_path: Path) -> None:
    one = _copy(ROOT / "solutions", tmp_path / "one")
    two = _copy(ROOT / "solutions", tmp_path / "two")
    os.utime(two / "ch03.py", (1_000_000, 1_000_000))  # other timestamps, same content
    (two / "notes.txt").write_text("not code")
    assert cluster.pack(one).digest == cluster.pack(two).digest
    (two / "ch03.py").write_text((two / "ch03.py").read_text() + "\n# changed\n")
    assert cluster.pack(one).digest != cluster.pack(two).digest


def test_a_damaged_archive_or_another_version_is_refused(tmp_path: Path) -> None:
    archive = cluster.pack(_copy(ROOT / "solutions", tmp_path / "s"))
    damaged = cluster.Archive(archive.digest, archive.data[:-1] + b"x")
    with pytest.raises(cluster.ArchiveError) as bad:
        cluster.grade_archive(damaged, ITEMS, 60, cluster.versions())
    assert archive.digest[:12] in str(bad.value) and "sha256" in str(bad.value)
    other = {**cluster.versions(), "llmgrade": "0.0.1"}
    with pytest.raises(cluster.VersionMismatch) as mismatch:
        cluster.grade_archive(archive, ITEMS, 60, other)
    assert f"llmgrade {__version__}" in str(mismatch.value) and "llmgrade 0.0.1" in str(mismatch.value)


def test_a_worker_refusal_is_the_clusters_fault_not_the_students() -> None:
    """Damaged archives, other versions and a missing sandbox are not recorded against the student."""
    for refusal in (cluster.ArchiveError("cluster.bad_archive", digest="abc", host="node1"),
                    cluster.VersionMismatch("cluster.version_mismatch", host="n", worker="a", instructor="b"),
                    cluster.NoSandbox("cluster.no_sandbox", host="node1", reason="no bwrap")):
        assert cluster.is_cluster_loss(refusal)
    assert not cluster.is_cluster_loss(SetupError("cluster.bad_local", address="x"))
    assert not cluster.is_cluster_loss(RuntimeError("a crash while grading"))


def test_bad_cluster_addresses_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as local:
        cluster.open_pool("local:zero")
    assert "local:N" in str(local.value)
    with pytest.raises(SetupError) as remote:
        cluster.DaskPool("tcp://127.0.0.1:9", connect_timeout_s=2)
    assert "tcp://127.0.0.1:9" in str(remote.value) and "docs/cluster.md" in str(remote.value)


@pytest.mark.slow
def test_dask_records_what_the_local_pool_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the reference mutants try every candidate: a mistake named or not at the edge of the CPU
    # budget on a busy machine is not the cluster's doing (grader/checking/mutants/)
    monkeypatch.setenv("LLMGRADE_MUTANT_BUDGET_S", "60")
    subs = make_class(tmp_path)
    local = grade_class(subs, tmp_path / "local.sqlite", jobs=2, items=ITEMS, time_limit_s=300, progress=None)
    threads = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    dask = grade_class(subs, tmp_path / "dask.sqlite", items=ITEMS, time_limit_s=300, progress=None,
                       cluster="local:2")
    assert sorted(dask.graded) == sorted(local.graded) == ["buggy", "model", "stubs", "syntax", "zipped"]
    assert dask.broken == local.broken == ["badzip"]
    ours, theirs = recorded(tmp_path / "dask.sqlite"), recorded(tmp_path / "local.sqlite")
    assert ours == theirs
    assert ours["model"]["score"] > 0 and ours["buggy"]["score"] < ours["model"]["score"]
    # Dask's nannies would have set these to 1 in this process (and so in what it starts later).
    assert {name: os.environ.get(name) for name in threads} == threads
    with Gradebook(tmp_path / "dask.sqlite") as book:
        graded_by = {s: run.graded_by for s, run in book.latest_all().items() if s != "badzip"}
    assert all(value.startswith(os.uname().nodename) and "tcp://" in value for value in graded_by.values())
    again = grade_class(subs, tmp_path / "dask.sqlite", items=ITEMS, progress=None, cluster="local:2")
    assert sorted(again.skipped) == ["badzip", "buggy", "model", "stubs", "syntax", "zipped"]


@pytest.mark.slow
def test_a_killed_dask_worker_loses_nothing(tmp_path: Path) -> None:
    """A worker killed mid-task: its task runs again elsewhere and every submission is recorded once."""
    import dask

    subs = make_class(tmp_path)
    db = tmp_path / "gb.sqlite"
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local, distributed.Client(local) as client:
            killed: list[int] = []

            def kill_one_busy_worker() -> None:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not killed:
                    busy = [addr for addr, tasks in client.processing().items() if tasks]
                    if busy:
                        time.sleep(1.0)  # inside grade_submission by now
                        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    time.sleep(0.2)

            killer = threading.Thread(target=kill_one_busy_worker)
            killer.start()
            summary = grade_class(subs, db, items=ITEMS, time_limit_s=300, progress=None,
                                  cluster=local.scheduler_address)
            killer.join()
    assert killed, "no worker was ever busy, so none was killed"
    assert sorted(summary.graded) == ["buggy", "model", "stubs", "syntax", "zipped"], summary.outcomes
    assert all(entry["runs"] == 1 for entry in recorded(db).values())
    assert recorded(db)["model"]["score"] > 0


@pytest.mark.slow
def test_killing_the_instructor_mid_run_loses_no_recorded_result(tmp_path: Path) -> None:
    subs = make_class(tmp_path)
    db = tmp_path / "gb.sqlite"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from grader.classroom.grade_class import grade_class
        grade_class(Path({str(subs)!r}), Path({str(db)!r}), items={ITEMS!r}, time_limit_s=300,
                    progress=None, cluster="local:2")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if db.exists():
                with Gradebook(db) as book:
                    # the damaged zip is recorded at once; wait for one real grading result too
                    if len(book.students()) >= 2:
                        break
            time.sleep(0.3)
        else:
            pytest.fail("the class run recorded nothing within 240 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the instructor's process and its local cluster
        proc.wait()
    before = recorded(db)
    assert 2 <= len(before) < 6
    summary = grade_class(subs, db, items=ITEMS, time_limit_s=300, progress=None, cluster="local:2")
    after = recorded(db)
    assert sorted(after) == ["badzip", "buggy", "model", "stubs", "syntax", "zipped"]
    assert all(entry["runs"] == 1 for entry in after.values())
    assert sorted(summary.skipped) == sorted(before)
    assert {k: after[k] for k in before} == before
