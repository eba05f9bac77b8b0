"""Fixtures for hidden suites (the grader's own and an instructor's ``--suites DIR``).

Loaded as a pytest plugin (``-p grader.checking.fixtures``), so any suite folder gets:

- ``student``: a :class:`grader.sandbox.parent.Student` on the submission's worker process;
- ``ref``: runs the same recipe in this (trusted) process against ``reference/``;
- ``device``: the device both sides grade on.

The worker starts while pytest collects (its torch import overlaps ours), then imports the
student's modules once; items whose module failed to load are deselected and reported once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.catalog import BY_ID
from grader.checking.orphan import exit_with_parent
from grader.messages import t
from grader.recipes import run_reference
from grader.sandbox.parent import DEFAULT_TIME_LIMIT_S, Student, Worker
from grader.recipes.support import configure_determinism

WORKER = pytest.StashKey[Worker]()
DEVICE = pytest.StashKey[str]()
TIKTOKEN_CACHE = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmgrade")
    group.addoption("--llmgrade-submission", default=None, help="the student's folder")
    group.addoption("--llmgrade-device", default="auto",
                    help="cpu, cuda, cuda:1, mps, or auto (CUDA, then MPS, then CPU)")
    group.addoption("--llmgrade-time-scale", type=float, default=1.0,
                    help="multiply every per-call time limit (slow machines)")
    group.addoption("--llmgrade-memory-gib", type=float, default=6.0)
    group.addoption("--llmgrade-gate-fds", default="",
                    help="READY,GO (llmgrade watch): once warm, write a byte on READY, then wait for one on "
                         "GO before importing the student's code")
    group.addoption("--llmgrade-trusted-memory-gib", type=float, default=16.0,
                    help="address-space cap of this (trusted) process on the CPU; 0: none")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    configure_determinism(torch)
    submission = config.getoption("--llmgrade-submission")
    if not submission:
        return
    exit_with_parent()
    from reference.device import get_device

    requested = config.getoption("--llmgrade-device")
    try:
        device = str(get_device(None if requested == "auto" else requested))
    except (RuntimeError, ValueError) as exc:
        raise pytest.UsageError(t("grade.bad_device", device=requested, error=str(exc))) from None
    # Module recipes on this side read the device from here; the worker gets it the same way.
    os.environ["LLMGRADE_DEVICE"] = device
    cap_own_memory(device, config.getoption("--llmgrade-trusted-memory-gib"))
    config.stash[DEVICE] = device
    from reference.ch02 import prepare_tiktoken_cache

    cache = Path(tempfile.mkdtemp(prefix="llmgrade-tiktoken-"))
    prepare_tiktoken_cache(cache)
    config.stash[TIKTOKEN_CACHE] = cache
    worker = Worker(Path(submission), device=device,
                    memory_gib=config.getoption("--llmgrade-memory-gib"), tiktoken_cache=cache)
    worker.start()
    config.stash[WORKER] = worker


def wait_for_go(fds: str) -> None:
    """``llmgrade watch``: everything is warm (pytest, the suites, the reference, a started worker
    that has not imported the student's code): say so, then wait until the student saves."""
    if not fds:
        return
    ready, go = (int(fd) for fd in fds.split(","))
    try:
        os.write(ready, b"1")
    except BrokenPipeError:  # the watch did not wait for us (a save came first)
        pass
    os.close(ready)
    started = os.read(go, 1)
    os.close(go)
    if not started:  # the watch ended without asking for a check
        pytest.exit("llmgrade watch ended", returncode=pytest.ExitCode.INTERRUPTED)


def cap_own_memory(device: str, gib: float) -> None:
    """The trusted process gets its own memory cap (CPU only: CUDA breaks under RLIMIT_AS), so that
    no reply, however it slipped past the protocol's checks, can take the machine's memory."""
    if gib <= 0 or device.startswith("cuda"):
        return
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    limit = int(gib * 1024**3)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def pytest_unconfigure(config: pytest.Config) -> None:
    worker = config.stash.get(WORKER, None)
    if worker is not None:
        worker.close()
    cache = config.stash.get(TIKTOKEN_CACHE, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Import the student's modules once; tell the results collector what could not load."""
    worker = config.stash.get(WORKER, None)
    collector = config.pluginmanager.get_plugin("llmgrade-collector")
    if worker is None or collector is None:
        return
    wait_for_go(config.getoption("--llmgrade-gate-fds"))
    try:
        report = worker.load()
    except Exception as exc:  # noqa: BLE001 - a worker that cannot even start is reported once
        report = {"modules": {"*": {"kind": "import_error", "file": str(worker.submission),
                                    "message": f"{type(exc).__name__}: {exc}"}}, "missing": {}}
    modules, missing = report.get("modules", {}), report.get("missing", {})
    collector.load_errors = {"modules": modules, "missing": missing}
    import torch

    collector.environment = {"device": config.stash.get(DEVICE, ""), "torch_version": torch.__version__,
                             "isolation": worker.isolation.describe(),
                             "isolation_reason": worker.isolation.reason}
    for item in BY_ID.values():
        if item.module in modules or "*" in modules or item.id in missing:
            collector.skipped_items.add(item.id)


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    return pytestconfig.stash.get(DEVICE, "cpu")


@pytest.fixture
def student(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[Student]:
    worker = pytestconfig.stash.get(WORKER, None)
    if worker is None:
        pytest.fail("hidden suites need --llmgrade-submission (run them through `llmgrade grade`)")
    marker = request.node.get_closest_marker("item")
    handle = Student(worker, DEFAULT_TIME_LIMIT_S, item=str(marker.args[0]) if marker else None)
    handle.time_scale = float(pytestconfig.getoption("--llmgrade-time-scale"))
    yield handle


class Reference:
    """The trusted side: the same recipes, run here against ``reference/``."""

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        return run_reference(recipe, **inputs)


@pytest.fixture(scope="session")
def ref() -> Reference:
    return Reference()
