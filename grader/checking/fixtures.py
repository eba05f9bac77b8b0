"""Fixtures for hidden suites (the grader's own and an instructor's ``--suites DIR``).

Loaded as a pytest plugin (``-p grader.checking.fixtures``), so any suite folder gets:

- ``student``: a :class:`grader.sandbox.parent.Student` on the worker of the check's item;
- ``ref``: runs the same recipe in this (trusted) process against ``reference/``;
- ``device``: the device both sides grade on.

The run's fork server starts while pytest collects (its torch import overlaps ours). A loading
worker then imports all of the student's modules once; items whose module failed to load are
deselected and reported once. Each item is then graded by a worker of its own, forked for its
first check and stopped after its last, which holds the reference view of that item only
(:mod:`grader.sandbox.views`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.checking.failures import GradeFailure
from grader.checking.grader_code import scan as scan_for_grader_code
from grader.checking.mutants import diagnose
from grader.checking.orphan import exit_with_parent
from grader.catalog import ITEMS
from grader.checking.parallel import RUNNERS, runners_for
from grader.checking.plugin import collector_of, spec_of
from grader.messages import t
from grader.checking.pace import Pace
from grader.checking.preload import libraries_to_preload
from grader.checking.early_device import certain_device
from grader.checking.reference_cache import ReferenceCache
from grader.recipes import cached as recipe_is_cached, load_all as load_all_recipes, run_reference
from grader.runner.contract import AUTO_DEVICE
from grader.sandbox.parent import DEFAULT_TIME_LIMIT_S, ForkServer, Student, Worker

PACE = pytest.StashKey[Pace]()
SWAPS_PROPERTY = "student_swaps"
FORCED_SWAPS_PROPERTY = "forced_swaps"


@dataclass
class Grading:
    """This process's grading run: the device resolved once, the fork server its workers come
    from, and what the run learnt so far (modules that fail to load, items whose code broke)."""

    device: str
    server: ForkServer
    time_scale: float
    tiktoken_cache: Path
    gate_fds: tuple[int, int] | None = None  # llmgrade watch: (ready, go), see wait_for_go
    loader: Worker | None = None  # the loading worker (all of the submission, no reference)
    failed: list[str] = field(default_factory=list)  # modules it could not load
    broken: dict[str, str] = field(default_factory=dict)  # item -> how its code broke (timeout, crash, exit)
    workers: dict[str, Worker] = field(default_factory=dict)  # the item being graded -> its worker
    load_time_scale: float = 1.0

    def worker_for(self, item_id: str) -> Worker:
        """The worker of ``item_id`` (forked on first use, with that item's view)."""
        worker = self.workers.get(item_id)
        if worker is None:
            worker = Worker(self.server.submission, server=self.server, item=item_id, failed=self.failed)
            worker.load_time_scale = self.load_time_scale
            self.workers[item_id] = worker
        return worker

    def close_worker(self, item_id: str) -> None:
        worker = self.workers.pop(item_id, None)
        if worker is not None:
            worker.close()

    def close(self) -> None:
        for item_id in list(self.workers):
            self.close_worker(item_id)
        if self.loader is not None:
            self.loader.close()
        self.server.close()


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
    # The fork server starts before this process imports torch when the device is already certain
    # (grader/checking/early_device.py): the two torch imports then run side by side.
    early = certain_device(spec.device, os.environ)
    cache = Path(tempfile.mkdtemp(prefix="llmgrade-tiktoken-"))  # filled below, before any student code
    cpus = _usable_cpus()
    runners = config.stash[RUNNERS] = runners_for(spec.runners, len(spec.items) or len(ITEMS), cpus)
    threads = worker_threads(runners, cpus)
    warm = len(spec.items) != 1  # more than one item: warm the fork server up once for them all
    server: ForkServer | None = None
    try:
        if early is not None:
            cap_own_memory(early, TRUSTED_MEMORY_GIB)
            server = _start_server(spec.submission, early, cache, runners, threads, warm)
        _import_torch(threads if runners > 1 else None)
        device = resolve_device(spec.device)
        if server is None or server.device != device:
            if server is not None:
                server.close()
            cap_own_memory(device, TRUSTED_MEMORY_GIB)
            server = _start_server(spec.submission, device, cache, runners, threads, warm)
        from reference.gpt2_tokenizer import prepare_tiktoken_cache

        prepare_tiktoken_cache(cache)
    except BaseException:
        if server is not None:
            server.close()
        shutil.rmtree(cache, ignore_errors=True)
        raise
    config.stash[GRADING] = Grading(device=device, server=server, time_scale=spec.time_scale,
                                    tiktoken_cache=cache, gate_fds=spec.gate_fds)


def _import_torch(threads: int | None = None) -> None:
    import torch

    from grader.recipes.support import configure_determinism

    if threads is not None:  # before any torch operation: runners are forked from this process
        torch.set_num_threads(threads)
    configure_determinism(torch)


def _start_server(submission: str, device: str, tiktoken_cache: Path, runners: int, threads: int,
                  warm: bool) -> ForkServer:
    server = ForkServer(Path(submission), device=device, tiktoken_cache=tiktoken_cache,
                        workers=runners + 1, threads=threads, warm=warm,
                        preload=libraries_to_preload(Path(submission)))
    server.start()
    return server


def worker_threads(runners: int, cpus: int) -> int:
    """Torch threads per process: the cores this run may use (``OMP_NUM_THREADS`` when the run is
    one of several at once, grade-class), shared by the items graded side by side."""
    try:
        cap = int(os.environ.get("OMP_NUM_THREADS", "") or 0)
    except ValueError:
        cap = 0
    return max(1, min(cap or cpus, cpus // max(1, runners)))


def _usable_cpus() -> int:
    from grader.checking.pace import usable_cpus

    return usable_cpus()


class _Meanwhile:
    """``scan()`` in a thread, with every recipe module imported after it; :meth:`result` waits."""

    def __init__(self, scan: Callable[[], list[dict[str, Any]]]) -> None:
        self._found: list[dict[str, Any]] = []
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._found = scan()
                load_all_recipes()
            except BaseException as exc:  # noqa: BLE001 - raised again in result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="llmgrade-meanwhile", daemon=True)
        self._thread.start()

    def result(self) -> list[dict[str, Any]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found


def wait_for_go(fds: tuple[int, int] | None, loader: Worker | None = None) -> None:
    """``llmgrade watch``: get everything warm (pytest, the suites, the reference and the recipes in
    this process; the loading worker forked from a fork server that has imported torch, not yet
    given the student's code), say so, then wait until the student saves."""
    if fds is None:
        return
    load_all_recipes()
    if loader is not None:
        try:
            loader.start(READY_PING_S)
            loader.ping(READY_PING_S)
        except Exception:  # noqa: BLE001 - the load after the save forks it again and reports the failure
            pass
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
    grading.close()
    shutil.rmtree(grading.tiktoken_cache, ignore_errors=True)
    status = config.stash.get(EXIT_STATUS, None)
    if status is not None:
        # The signed results are written (plugin.py, at session finish) and the workers are gone:
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
    loader = grading.loader = Worker(grading.server.submission, server=grading.server, item=None)
    wait_for_go(grading.gate_fds, loader)
    grading.load_time_scale = loader.load_time_scale = _pace(config).slowdown() * grading.time_scale
    # While the worker imports the student's modules, this process reads the same files for names
    # of the grader's code and imports the recipes (otherwise both happen later, one after the other).
    meanwhile = _Meanwhile(lambda: scan_for_grader_code(grading.server.submission))
    try:
        report = loader.load()
    except Exception as exc:  # noqa: BLE001 - a worker that cannot even start is reported once
        report = {"modules": {"*": {"kind": "import_error", "file": str(grading.server.submission),
                                    "message": f"{type(exc).__name__}: {exc}"}}, "missing": {}}
    finally:
        loader.close()
        grading.loader = None
    modules = dict(report.get("modules", {}))
    grading.failed = sorted(name for name, info in modules.items()
                            if name != "*" and isinstance(info, dict) and info.get("kind") != "missing_file")
    collector.record_grader_code(meanwhile.result())
    collector.record_load_errors(modules, report.get("missing", {}))
    import torch

    collector.record_environment(grading.device, torch.__version__, isolation=grading.server.isolation.describe(),
                                 isolation_reason=grading.server.isolation.reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """An item's worker is stopped after its last check (the checks of an item run together)."""
    try:
        return (yield)
    finally:
        grading = item.config.stash.get(GRADING, None)
        graded = _item_of(item)
        if grading is not None and graded is not None and (nextitem is None or _item_of(nextitem) != graded):
            grading.close_worker(graded)
            diagnose.forget(graded)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """A check that fails without a named mistake is run again against the reference mutants of its
    item, on the student's recorded answers (grader/checking/mutants/): an exact match names it. A
    check that passes is kept as evidence against mutants that would have failed it."""
    try:
        outcome = yield
    except GradeFailure as failure:
        replayable = _replayable(pyfuncitem)
        named = diagnose.name_mistake(failure, *replayable) if replayable is not None else None
        if named is None:
            raise
        raise named from None
    replayable = _replayable(pyfuncitem)
    if replayable is not None:
        item, calls, _, check = replayable
        diagnose.passed(item, calls, check)
    return outcome


def _replayable(pyfuncitem: pytest.Function) -> tuple[str | None, list[Any], Reference, Any] | None:
    """The check's item, the student's recorded answers, the reference and the check's body with
    ``student`` and ``ref`` as parameters; None for a check that asked the student nothing."""
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames
            if name in pyfuncitem.funcargs}
    student = args.get("student")
    ref = args.get("ref")
    if not isinstance(student, Student) or not isinstance(ref, Reference) or not student.transcript:
        return None

    def check(replay: Any, mutant_ref: Any) -> None:
        again = {name: replay if value is student else mutant_ref if value is ref else value
                 for name, value in args.items()}
        if "record_property" in again:
            again["record_property"] = lambda *_: None
        pyfuncitem.obj(**again)

    return student.item, list(student.transcript), ref, check


def _item_of(node: pytest.Item) -> str | None:
    marker = node.get_closest_marker("item")
    return str(marker.args[0]) if marker and marker.args else None


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    grading = pytestconfig.stash.get(GRADING, None)
    return grading.device if grading is not None else "cpu"


@pytest.fixture
def student(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[Student]:
    grading = pytestconfig.stash.get(GRADING, None)
    if grading is None:
        pytest.fail("hidden suites need a submission (run them through `llmgrade grade`)")
    item_id = _item_of(request.node)
    if item_id is None:
        pytest.fail("a hidden check grades one item: mark it with what component(...) or problem(...) returns")
    worker = grading.worker_for(item_id)
    handle = Student(worker, DEFAULT_TIME_LIMIT_S, item=item_id, broken=grading.broken)
    handle.time_scale = grading.time_scale
    # Which of the student's items each call swapped for the reference's: scoring charges a failure
    # to a failed dependency whose student version the check ran (grader/runner/scoring.py).
    handle.swaps_used = []
    handle.transcript = []  # its answers, for the reference mutants if the check fails
    request.node.user_properties.append((SWAPS_PROPERTY, handle.swaps_used))
    request.node.user_properties.append((FORCED_SWAPS_PROPERTY, handle.forced_swaps))
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
    (:mod:`grader.checking.pace`). Results for inputs seen in an earlier run come from the cache
    (:mod:`grader.checking.reference_cache`), with the time they took then, scaled to this machine's
    load now."""

    def __init__(self, device: str, pace: Pace | None = None, cache: ReferenceCache | None = None) -> None:
        self.device = device
        self.pace = pace if pace is not None else Pace()
        self.cache = cache

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        use_cache = self.cache is not None and recipe_is_cached(recipe)
        if use_cache:
            assert self.cache is not None
            hit = self.cache.get(recipe, inputs)
            if hit is not None:
                value, idle_seconds = hit
                self.pace.record(recipe, idle_seconds * self.pace.slowdown())
                return value
        start = time.perf_counter()
        value = run_reference(recipe, self.device, **inputs)
        seconds = time.perf_counter() - start
        self.pace.record(recipe, seconds)
        if use_cache:
            assert self.cache is not None
            self.cache.put(recipe, inputs, value, seconds / self.pace.slowdown())
        return value


@pytest.fixture(scope="session")
def ref(device: str, pytestconfig: pytest.Config) -> Reference:
    cache = ReferenceCache(device) if spec_of(pytestconfig) is not None else None
    return Reference(device, _pace(pytestconfig), cache)
