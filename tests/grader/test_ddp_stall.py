"""The DDP recipe's guard against processes that never finish (grader/recipes/appendix_a.py).

Rarely, on a loaded machine, a rank of correct code never finished (seen in CI), and the check
then waited out its whole limit (minutes) and failed an honest student. Each attempt now has a third
of the limit: processes still running are killed, and the run is tried once more. Code that really
hangs hangs twice and is told what usually hangs DDP. These tests run the recipe in this process on
tiny stand-ins for the student's module: ranks that sleep instead of training.
"""

from __future__ import annotations

import os
import time
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from grader.recipes import Impl
from grader.recipes.appendix_a import train_ddp


class _Source:
    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def module(self, name: str) -> types.ModuleType:
        return self._module

    def loaded(self, name: str) -> types.ModuleType | None:
        return self._module


def _student(pids: Path, hang_on_attempt: set[int]) -> types.ModuleType:
    """A student's ``run_ddp`` that calls ``mp.spawn`` as the book does; rank 1 sleeps forever on
    the attempts in ``hang_on_attempt`` (counted in a file: each attempt is a new call)."""
    module = types.ModuleType("appendix_a")
    attempts = pids / "attempts"

    def rank_body(rank: int, attempt: int) -> None:
        (pids / f"{attempt}-{rank}").write_text(str(os.getpid()))
        if rank == 1 and attempt in hang_on_attempt:
            time.sleep(3600)

    def run_ddp(world_size: int, num_epochs: int, X: Any, y: Any, init_state_dict: dict[str, Any],
                lr: float = 0.5, batch_size: int = 2) -> dict[str, Any]:
        import torch.multiprocessing as mp

        attempt = len(attempts.read_text()) if attempts.exists() else 0
        attempts.write_text("x" * (attempt + 1))
        mp.spawn(rank_body, args=(attempt,), nprocs=world_size, join=True)
        return {"w": torch.ones(1)}

    module.run_ddp = run_ddp  # type: ignore[attr-defined]
    return module


def _run(tmp_path: Path, hang_on_attempt: set[int], attempt_s: float) -> dict[str, Any]:
    impl = Impl("student", _Source(_student(tmp_path, hang_on_attempt)), "cpu")
    result: dict[str, Any] = train_ddp(impl, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), {},
                                       own_run_ddp=True, attempt_s=attempt_s)
    return result


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"  # a zombie is gone too
    except OSError:
        return True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the recipe forks its ranks where it can")
def test_a_run_that_stalls_once_is_killed_and_passes_the_second_time(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(tmp_path, hang_on_attempt={0}, attempt_s=2.0)
    assert result["saved"] is True and torch.equal(result["state"]["w"], torch.ones(1))
    assert time.monotonic() - started < 30
    assert _gone(int((tmp_path / "0-1").read_text()))  # the sleeping rank was killed, not left behind


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the recipe forks its ranks where it can")
def test_code_that_hangs_every_time_is_said_to_stall_after_two_tries(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(tmp_path, hang_on_attempt={0, 1}, attempt_s=2.0)
    assert result == {"saved": False, "stalled": 2.0}
    assert 4.0 <= time.monotonic() - started < 30
    assert (tmp_path / "attempts").read_text() == "xx"  # tried exactly twice
    assert _gone(int((tmp_path / "0-1").read_text())) and _gone(int((tmp_path / "1-1").read_text()))


def test_a_rank_never_tears_its_process_group_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stall's cause, caught with gdb in a stuck rank: ``destroy_process_group`` ran gloo's C++
    destructor, which joins gloo's threads while holding the GIL, and one of them waited for the
    GIL. In a rank it now does nothing (the group ends with the process), under both names the
    book's code may use: ``dist.destroy_process_group`` and its own imported name."""
    import sys

    import torch.distributed as dist

    from grader.recipes.appendix_a import _keep_group_to_the_end

    original = dist.destroy_process_group
    monkeypatch.setattr(dist, "destroy_process_group", original)  # put back after the test
    student = types.ModuleType("submission.appendix_a")
    student.destroy_process_group = original  # type: ignore[attr-defined]  # as the book imports it
    monkeypatch.setitem(sys.modules, "submission.appendix_a", student)
    _keep_group_to_the_end()
    for replaced in (dist.destroy_process_group, student.destroy_process_group):  # type: ignore[attr-defined]
        assert replaced is not original
        assert replaced() is None  # no group here: the original would raise
