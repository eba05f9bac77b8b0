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
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.checking.answer_key import scan as scan_for_answer_key
from grader.checking.orphan import exit_with_parent
from grader.checking.plugin import collector_of, spec_of
from grader.messages import t
from grader.checking.pace import Pace
from grader.checking.early_device import certain_device
from grader.recipes import load_all as load_all_recipes, run_reference
from grader.runner.contract import AUTO_DEVICE
from grader.sandbox.parent import DEFAULT_TIME_LIMIT_S, Student, Worker

PACE = pytest.StashKey[Pace]()
SWAPS_PROPERTY = "student_swaps"


@dataclass
class Grading:
    """This process's grading run: the device resolved once, and the worker that computes on it."""

    device: str
    worker: Worker
    time_scale: float
    tiktoken_cache: Path
    gate_fds: tuple[int, int] | None = None  # llmgrade watch: (ready, go), see wait_for_go


GRADING = pytest.StashKey[Grading]()
EXIT_STATUS = pytest.StashKey[int]()  # the session's exit status, once the results are written
READY_PING_S = 120.0  # llmgrade watch: how long a standby waits for its worker to answer before saying "ready"
TRUSTED_MEMORY_GIB = 16.0  # address-space cap of this (trusted) process on the CPU


def resolve_device(requested: str) -> str:
    """``auto`` (or an explicit device) -> the device both sides grade on: the one place it is decided.

    ``auto`` honours ``LLMGRADE_DEVICE`` and otherwise picks CUDA, then MPS, then CPU
    (``reference.device.get_device``). The book's own code (the reference here, and its stand-ins
    in the worker) picks its device from that same variable, so it is set to the result.
    """
    from reference.device import ENV_VAR, get_device

    try:
        device = str(get_device(None if requested == AUTO_DEVICE else requested))
    except (RuntimeError, ValueError) as exc:
        if requested == AUTO_DEVICE:  # the variable asked for it, not --device
            raise pytest.UsageError(t("grade.bad_device_env", device=os.environ.get(ENV_VAR, ""),
                                      error=str(exc))) from None
        raise pytest.UsageError(t("grade.bad_device", device=requested, error=str(exc))) from None
    os.environ[ENV_VAR] = device
    return device


def pytest_configure(config: pytest.Config) -> None:
    config.stash[PACE] = Pace()
    spec = spec_of(config)
    if spec is None:
        _import_torch()
        return
    exit_with_parent()
    # The worker starts before this process imports torch when the device is already certain
    # (grader/checking/early_device.py): the two torch imports then run side by side.
    early = certain_device(spec.device, os.environ)
    cache = Path(tempfile.mkdtemp(prefix="llmgrade-tiktoken-"))  # filled below, before any student code
    worker: Worker | None = None
    try:
        if early is not None:
            cap_own_memory(early, TRUSTED_MEMORY_GIB)
            worker = _start_worker(spec.submission, early, cache)
        _import_torch()
        device = resolve_device(spec.device)
        if worker is None or worker.device != device:
            if worker is not None:
                worker.close()
            cap_own_memory(device, TRUSTED_MEMORY_GIB)
            worker = _start_worker(spec.submission, device, cache)
        from reference.ch02 import prepare_tiktoken_cache

        prepare_tiktoken_cache(cache)
    except BaseException:
        if worker is not None:
            worker.close()
        shutil.rmtree(cache, ignore_errors=True)
        raise
    config.stash[GRADING] = Grading(device=device, worker=worker, time_scale=spec.time_scale,
                                    tiktoken_cache=cache, gate_fds=spec.gate_fds)


def _import_torch() -> None:
    import torch

    from grader.recipes.support import configure_determinism

    configure_determinism(torch)


def _start_worker(submission: str, device: str, tiktoken_cache: Path) -> Worker:
    worker = Worker(Path(submission), device=device, tiktoken_cache=tiktoken_cache)
    worker.start()
    return worker


class _Meanwhile:
    """``scan()`` in a thread, with every recipe module imported after it; :meth:`result` waits."""

    def __init__(self, scan: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._found: dict[str, dict[str, Any]] = {}
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._found = scan()
                load_all_recipes()
            except BaseException as exc:  # noqa: BLE001 - raised again in result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="llmgrade-meanwhile", daemon=True)
        self._thread.start()

    def result(self) -> dict[str, dict[str, Any]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found


def wait_for_go(fds: tuple[int, int] | None, worker: Worker | None = None) -> None:
    """``llmgrade watch``: get everything warm (pytest, the suites, the reference and the recipes in
    this process; a worker that has imported torch and answers, and has not imported the student's
    code), say so, then wait until the student saves."""
    if fds is None:
        return
    load_all_recipes()
    if worker is not None:
        worker.ping(READY_PING_S)  # a worker that does not answer is started again by the load
    ready, go = fds
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    grading = config.stash.get(GRADING, None)
    if grading is None:
        return
    grading.worker.close()
    shutil.rmtree(grading.tiktoken_cache, ignore_errors=True)
    status = config.stash.get(EXIT_STATUS, None)
    if status is not None:
        # The signed results are written (plugin.py, at session finish) and the worker is gone:
        # end now. What is left decides nothing and takes about 0.7 s on the grading machines
        # (pytest's garbage collection for unraisable exceptions, the interpreter's teardown of
        # torch's modules), and the runner waits for this process to end before it reads the results.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Import the student's modules once; tell the results collector what could not load."""
    grading = config.stash.get(GRADING, None)
    collector = collector_of(config)
    if grading is None or collector is None:
        return
    worker = grading.worker
    wait_for_go(grading.gate_fds, worker)
    worker.load_time_scale = _pace(config).slowdown() * grading.time_scale  # probed before the thread starts
    # While the worker imports the student's modules, this process reads the same files for the
    # answer key and imports the recipes (otherwise both happen later, one after the other).
    meanwhile = _Meanwhile(lambda: scan_for_answer_key(worker.submission))
    try:
        report = worker.load()
    except Exception as exc:  # noqa: BLE001 - a worker that cannot even start is reported once
        report = {"modules": {"*": {"kind": "import_error", "file": str(worker.submission),
                                    "message": f"{type(exc).__name__}: {exc}"}}, "missing": {}}
    modules = dict(report.get("modules", {}))
    for module, use in meanwhile.result().items():  # imports written in the files
        if modules.get(module, {}).get("kind") in (None, "import_error"):
            modules[module] = use
    collector.record_load_errors(modules, report.get("missing", {}))
    import torch

    collector.record_environment(grading.device, torch.__version__, isolation=worker.isolation.describe(),
                                 isolation_reason=worker.isolation.reason)


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    grading = pytestconfig.stash.get(GRADING, None)
    return grading.device if grading is not None else "cpu"


@pytest.fixture
def student(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[Student]:
    grading = pytestconfig.stash.get(GRADING, None)
    if grading is None:
        pytest.fail("hidden suites need a submission (run them through `llmgrade grade`)")
    marker = request.node.get_closest_marker("item")
    handle = Student(grading.worker, DEFAULT_TIME_LIMIT_S, item=str(marker.args[0]) if marker else None)
    handle.time_scale = grading.time_scale
    # Which of the student's items each call swapped for the reference's: scoring charges a failure
    # to a failed dependency whose student version the check ran (grader/runner/scoring.py).
    handle.swaps_used = []
    request.node.user_properties.append((SWAPS_PROPERTY, handle.swaps_used))
    pace = handle.pace = _pace(pytestconfig)
    pace.new_check()
    reported = pace.max_slowdown_seen
    yield handle
    collector = collector_of(pytestconfig)
    if collector is not None and pace.max_slowdown_seen > reported:
        collector.report_slowdown(pace.max_slowdown_seen)


def _pace(config: pytest.Config) -> Pace:
    if PACE not in config.stash:
        config.stash[PACE] = Pace()
    return config.stash[PACE]


class Reference:
    """The trusted side: the same recipes, run here against ``reference/`` on the grading device;
    each call is timed so that the student's call of the same recipe gets a limit scaled from it
    (:mod:`grader.checking.pace`)."""

    def __init__(self, device: str, pace: Pace | None = None) -> None:
        self.device = device
        self.pace = pace if pace is not None else Pace()

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        start = time.perf_counter()
        try:
            return run_reference(recipe, self.device, **inputs)
        finally:
            self.pace.record(recipe, time.perf_counter() - start)


@pytest.fixture(scope="session")
def ref(device: str, pytestconfig: pytest.Config) -> Reference:
    return Reference(device, _pace(pytestconfig))
