"""Start-up of a grading run (issue 12's speed targets): the worker starts before the trusted
process imports torch only when the device is certain without torch, and nothing on the trusted
side's start-up path imports torch before that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.checking.early_device import DEVICE_ENV_VAR, certain_device, torch_build_is_cpu_only
from grader.runner.contract import AUTO_DEVICE

ROOT = Path(__file__).resolve().parents[2]

CPU_BUILD = "__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n"
CUDA_BUILD = "__version__ = '2.13.0+cu121'\ncuda: Optional[str] = '12.1'\nhip: Optional[str] = None\n"
ROCM_BUILD = "__version__ = '2.13.0+rocm6.1'\ncuda: Optional[str] = None\nhip: Optional[str] = '6.1'\n"


def version_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "version.py"
    path.write_text(text, "utf-8")
    return path


def test_only_a_cpu_only_build_is_certain(tmp_path: Path) -> None:
    assert torch_build_is_cpu_only(version_file(tmp_path, CPU_BUILD))
    assert not torch_build_is_cpu_only(version_file(tmp_path, CUDA_BUILD))
    assert not torch_build_is_cpu_only(version_file(tmp_path, ROCM_BUILD))  # ROCm is torch.cuda too
    # anything unreadable or unusual: not certain (the device is then resolved with torch)
    assert not torch_build_is_cpu_only(tmp_path / "missing.py")
    assert not torch_build_is_cpu_only(version_file(tmp_path, "cuda = None\n"))  # hip not stated
    assert not torch_build_is_cpu_only(version_file(tmp_path, "cuda = None\nhip = find_hip()\n"))
    assert not torch_build_is_cpu_only(version_file(tmp_path, "cuda = (\n"))


def test_a_named_device_other_than_cpu_is_left_to_torch() -> None:
    assert certain_device("cpu", {}) == "cpu"
    assert certain_device("cpu", {DEVICE_ENV_VAR: "cuda"}) == "cpu"  # --device wins over the variable
    for name in ("cuda", "cuda:0", "mps", "CPU", "nosuchdevice"):
        assert certain_device(name, {}) is None
        assert certain_device(AUTO_DEVICE, {DEVICE_ENV_VAR: name}) is None
    assert certain_device(AUTO_DEVICE, {DEVICE_ENV_VAR: "cpu"}) == "cpu"


def test_the_guess_agrees_with_torch_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the guess is certain, torch's own choice (``resolve_device``) is the same device."""
    from grader.checking.fixtures import resolve_device

    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    guess = certain_device(AUTO_DEVICE, {})
    import torch

    assert torch_build_is_cpu_only() == (torch.version.cuda is None and torch.version.hip is None)
    if guess is not None:
        assert resolve_device(AUTO_DEVICE) == guess


def test_the_trusted_start_up_path_imports_no_torch() -> None:
    """pytest and our two plugins load without torch, so the worker can start before torch is imported."""
    code = ("import sys, pytest, grader.checking.plugin, grader.checking.fixtures, grader.sandbox.parent\n"
            "heavy = [m for m in ('torch', 'numpy', 'reference.ch02', 'jinja2') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_openmp_threads_sleep_when_idle_in_both_grading_processes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both processes take turns on the same cores: neither one's idle threads may spin (contract.py)."""
    from grader.runner import contract

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    from grader.sandbox.parent import sandbox_env

    assert contract.pytest_environment({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert contract.pytest_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"  # asked for
    assert sandbox_env(tmp_path, None)["OMP_WAIT_POLICY"] == "PASSIVE"
    code = "import torch, os; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    env = {**contract.pytest_environment(os.environ), "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "2"]  # the thread count, and so every result, is unchanged


def test_a_ping_waits_for_the_worker_and_never_imports_the_students_code(tmp_path: Path) -> None:
    """The watch's standby says "ready" only once its worker answers; a ping never starts a worker
    and never loads the submission (only the load after the save does)."""
    from grader.sandbox.parent import Worker

    work = tmp_path / "work"
    work.mkdir()
    (work / "ch02.py").write_text("while True:\n    pass\n", "utf-8")  # importing it never ends
    worker = Worker(work)
    try:
        assert not worker.ping(60) and worker.spawned is None  # not started: nothing is started for it
        worker.start()
        assert worker.ping(120)  # answered: the hanging module was not imported
        assert worker.alive
    finally:
        worker.close()


def test_a_worker_that_cannot_be_forked_in_time_is_reported(tmp_path: Path) -> None:
    from grader.sandbox.parent import Worker, WorkerError

    worker = Worker(tmp_path)
    try:
        with pytest.raises(WorkerError) as caught:
            worker.start(0.001)  # the fork server is still importing torch: no worker in a millisecond
        assert caught.value.kind == "crash" and worker.spawned is None
        worker.start()  # it answers the same request later
        assert worker.ping(120)
    finally:
        worker.close()


def test_the_runner_is_woken_by_the_end_of_the_grading_process() -> None:
    """The runner waits on a descriptor that becomes readable when pytest ends (not a polling loop)."""
    import select

    from grader.runner import run as run_module

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    fd = run_module._exit_fd(proc)
    try:
        if fd is None:
            pytest.skip("no pidfd on this system: the runner falls back to Popen.wait (test_pace covers it)")
        assert select.select([fd], [], [], 0)[0] == []  # still running
        assert proc.stdin is not None
        proc.stdin.close()  # now it ends
        assert select.select([fd], [], [], 60)[0] == [fd]
        assert proc.wait(5) == 0
    finally:
        if fd is not None:
            os.close(fd)
        proc.kill()
        proc.wait()
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    assert run_module._wait_paced(done, 60.0, [1.0]) == 60.0 and done.returncode == 0
