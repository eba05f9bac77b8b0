"""Time limits scale with the machine (grader/checking/pace.py): a busy machine stretches every limit
together, a limit is never below its nominal floor, and a timeout says how long the reference took."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.checking import pace as pace_module
from grader.checking.failures import GradeFailure
from grader.checking.fixtures import Reference
from grader.checking.pace import MULTIPLE, Pace, probe_seconds
from grader.runner import contract
from grader.runner import run as run_module

REAL_CONTENTION = pace_module.contention
from grader.sandbox.parent import Student, Worker, WorkerError, failure_from_worker_error


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests share a busy machine: measure nothing about it unless a test says so."""
    monkeypatch.setattr(pace_module, "contention", lambda: 0.0)


def test_contention_reads_the_run_queue() -> None:
    assert pace_module.usable_cpus() >= 1
    assert 0.0 <= REAL_CONTENTION() < 10_000  # the real one, not the fixture's stand-in


def test_a_crowded_run_queue_stretches_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pace_module, "contention", lambda: 6.0)  # six processes per core
    monkeypatch.setattr(pace_module, "probe_seconds", lambda: 0.01)  # the probe ran at full speed
    assert Pace(probe_idle_s=0.01).limit("call", 5.0) == pytest.approx(30.0)


def test_limit_is_floor_plus_a_multiple_of_the_reference_time() -> None:
    pace = Pace(probe_idle_s=10.0)  # an idle probe of 10 s: this machine never looks slow
    assert pace.limit("call", 5.0) == 5.0
    pace.record("call", 0.5)
    assert pace.limit("call", 5.0) == pytest.approx(5.0 + MULTIPLE * 0.5)


def test_the_current_check_wins_over_earlier_checks() -> None:
    pace = Pace(probe_idle_s=10.0)
    pace.record("module.forward", 2.0)
    pace.new_check()
    assert pace.reference_seconds("module.forward") == 2.0  # earlier in this run: still a measure
    pace.record("module.forward", 0.1)
    pace.record("module.forward", 0.3)
    assert pace.reference_seconds("module.forward") == 0.3  # the longest call of this check
    assert pace.reference_seconds("never.ran") is None


def test_a_slow_machine_stretches_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pace_module, "probe_seconds", lambda: 0.08)  # 8x the idle probe
    slow = Pace(probe_idle_s=0.01)
    assert slow.slowdown() == pytest.approx(8.0)
    assert slow.limit("call", 5.0) == pytest.approx(40.0)
    slow.record("call", 1.0)
    assert slow.limit("call", 5.0) == pytest.approx(40.0 + MULTIPLE * 1.0)
    assert slow.max_slowdown_seen == pytest.approx(8.0)
    monkeypatch.setattr(pace_module, "probe_seconds", lambda: 0.001)
    fast = Pace(probe_idle_s=0.01)
    assert fast.slowdown() == 1.0  # never below the nominal floor
    monkeypatch.setattr(pace_module, "probe_seconds", lambda: 100.0)
    assert Pace(probe_idle_s=0.01).slowdown() == pace_module.MAX_SLOWDOWN


def test_the_probe_is_short() -> None:
    assert 0 < probe_seconds() < 5.0


def test_reference_calls_are_timed() -> None:
    pace = Pace(probe_idle_s=10.0)
    ref = Reference("cpu", pace)
    ref.run("module.state_dict", module="ch04", name="LayerNorm", args=[4])
    seconds = pace.reference_seconds("module.state_dict")
    assert seconds is not None and seconds > 0


def test_student_limit_comes_from_the_pace(tmp_path: Path) -> None:
    """The limit handed to the worker is the paced one (here: floor plus ten times 0.2 s)."""
    asked: list[float] = []

    class FakeWorker(Worker):
        def request(self, message: dict[str, object], time_limit_s: float) -> object:
            asked.append(time_limit_s)
            raise WorkerError("timeout", f"{time_limit_s:g}", extra={"seconds": time_limit_s})

    worker = FakeWorker(tmp_path)
    student = Student(worker, 5.0, item="ch04.GELU")
    student.pace = Pace(probe_idle_s=10.0)
    student.pace.record("module.forward", 0.2)
    with pytest.raises(GradeFailure) as caught:
        student.run("module.forward", what="GELU()(x)")
    assert asked == [pytest.approx(5.0 + MULTIPLE * 0.2)]
    assert caught.value.message_id == "check.student_timeout_paced"
    assert "0.20 s" in str(caught.value) and "7.0 s" in str(caught.value)
    assert caught.value.details["reference_s"] == 0.2


def test_timeout_without_a_reference_time_keeps_the_plain_message() -> None:
    err = WorkerError("timeout", "5", extra={"seconds": 5.0})
    assert failure_from_worker_error(err, "f(x)").message_id == "check.student_timeout"  # type: ignore[union-attr]


def test_whole_submission_limit_stretches_with_the_reported_slowdown() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(4)"])
    started = time.monotonic()
    # 3 s nominal, but the grading process reported a machine 4x slower than idle: 12 s allowed.
    allowed = run_module._wait_paced(proc, 3.0, [4.0])
    assert allowed == 12.0 and time.monotonic() - started >= 3.9  # it outlived the nominal limit
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired) as caught:
            run_module._wait_paced(stuck, 0.5, [100.0])  # the stretch is capped
        assert caught.value.timeout == 0.5 * contract.MAX_SUBMISSION_SLOWDOWN
    finally:
        stuck.kill()
        stuck.wait()


def test_progress_reader_takes_slowdown_lines(tmp_path: Path) -> None:
    import os

    r, w = os.pipe()
    os.write(w, b"total 3\nslowdown 1.500\ndone passed x\nslowdown 1.200\n")
    os.close(w)
    seen: list[tuple[int, int, str]] = []
    slowdown = [1.0]
    run_module._read_progress(r, lambda d, t, line: seen.append((d, t, line)), slowdown)
    assert slowdown == [1.5]
    assert [line for _, _, line in seen] == ["total 3", "done passed x"]
