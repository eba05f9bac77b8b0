"""pytest plugin that records hidden-check outcomes per catalog item and writes one JSON file.

Shaped like pytest's own junitxml: hooks collect facts, ``pytest_sessionfinish`` writes them. No
HTML, no process control. Every hidden test carries ``@pytest.mark.item("<catalog id>")``; checks
that grade an item together with the student's own dependencies also carry
``@pytest.mark.integration`` (a failure there may be charged to a dependency instead). Checks of
work beyond the book (e.g. ``generate`` with a batch of several rows, which the printed code does
not support) carry ``@pytest.mark.extension``: reported with their status, never counted in points.

The JSON is signed with an HMAC whose key arrives on a pipe that student code never sees, so a
submission that writes to the results path cannot forge a result. What the runner passes in (the
run spec), the signature, the progress lines and the results format are defined once, in
:mod:`grader.runner.contract`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import pytest

from grader.catalog import BY_ID
from grader.checking.failures import GradeFailure, NotStarted
from grader.messages import Phrase, encode_params, message_fields
from grader.runner.contract import (RESULTS_FORMAT, SPEC_OPTION, SUITES_DIR, RunSpec, done_line, read_key, slowdown_line,
                                    total_line, write_signed)

RUN_SPEC = pytest.StashKey[Optional[RunSpec]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmgrade")
    group.addoption(SPEC_OPTION, default=None,
                    help="the grading run as one JSON object (written by grader.runner.contract.RunSpec)")


def spec_of(config: pytest.Config) -> RunSpec | None:
    """The run spec of this pytest process (``None`` when pytest was started by hand)."""
    if RUN_SPEC not in config.stash:
        text = config.getoption(SPEC_OPTION, None)
        try:
            config.stash[RUN_SPEC] = RunSpec.from_arg(str(text)) if text else None
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config.stash[RUN_SPEC]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "item(id): the catalog item a hidden check grades")
    config.addinivalue_line("markers", "integration: grades an item with the student's own dependencies")
    config.addinivalue_line("markers", "extension: goes beyond the book; reported, not counted in points")
    spec = spec_of(config)
    if spec is not None:
        collector = Collector(spec)
        config.stash[COLLECTOR] = collector
        config.pluginmanager.register(collector, "llmgrade-collector")


def pytest_unconfigure(config: pytest.Config) -> None:
    collector = config.stash.get(COLLECTOR, None)
    if collector is not None:
        del config.stash[COLLECTOR]
        config.pluginmanager.unregister(collector)


def collector_of(config: pytest.Config) -> Collector | None:
    """The results collector of this run (``None`` when pytest was started by hand)."""
    return config.stash.get(COLLECTOR, None)


def item_id_of(node: pytest.Item) -> str | None:
    marker = node.get_closest_marker("item")
    return str(marker.args[0]) if marker and marker.args else None


class Collector:
    """Collects check outcomes during the session and writes the signed results at its end."""

    def __init__(self, spec: RunSpec) -> None:
        self.path = Path(spec.results)
        self.key = read_key(spec.key_fd)
        self.wanted = set(spec.items)
        self.progress_fd = spec.progress_fd
        self.checks: list[dict[str, Any]] = []
        self.load_errors: dict[str, Any] = {}
        self.environment: dict[str, str] = {}
        self.grader_code: list[dict[str, Any]] = []  # where the files name the grader's code (a note)
        self.skipped_items: set[str] = set()
        self.collection_errors: list[str] = []
        self.started = time.time()

    def record_load_errors(self, modules: Mapping[str, Any], missing: Mapping[str, Any]) -> None:
        """The student's modules that failed to load (``"*"``: none could) and the items whose
        symbols are missing: reported once, and their checks are not run."""
        self.load_errors = {"modules": dict(modules), "missing": dict(missing)}
        self.skipped_items.update(item.id for item in BY_ID.values()
                                  if item.module in modules or "*" in modules or item.id in missing)

    def record_grader_code(self, notes: list[dict[str, Any]]) -> None:
        """Where the submission's files name the grader's own code (``grader/checking/grader_code.py``):
        a note for the instructor, never a grade."""
        self.grader_code = list(notes)

    def record_environment(self, device: str, torch_version: str, isolation: str = "",
                           isolation_reason: str = "") -> None:
        """The device the checks ran on (resolved in this process), torch's version, and the OS
        sandbox the worker ran in (``grader.sandbox.policy``)."""
        self.environment = {"device": device, "torch_version": torch_version, "isolation": isolation,
                            "isolation_reason": isolation_reason}

    def _progress(self, line: str) -> None:
        if self.progress_fd >= 0:
            try:
                os.write(self.progress_fd, (line + "\n").encode("utf-8"))
            except OSError:
                self.progress_fd = -1

    def report_slowdown(self, slowdown: float) -> None:
        """Tell the parent how much slower than idle the machine runs (it stretches the whole-run limit)."""
        self._progress(slowdown_line(slowdown))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        keep: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for node in items:
            item_id = item_id_of(node)
            if item_id is None:
                self.collection_errors.append(node.nodeid)
                dropped.append(node)
            elif (self.wanted and item_id not in self.wanted) or item_id in self.skipped_items:
                dropped.append(node)
            else:
                keep.append(node)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        self._progress(total_line(len(keep)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.checks.append(self._check(item, call, report))
            self._progress(done_line(self.checks[-1]["status"], item.nodeid))
        return report

    def _check(self, node: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> dict[str, Any]:
        name = node.name[5:] if node.name.startswith("test_") else node.name
        check: dict[str, Any] = {
            "item": item_id_of(node), "name": name, "nodeid": node.nodeid,
            "integration": node.get_closest_marker("integration") is not None,
            "extension": node.get_closest_marker("extension") is not None,
            "status": "passed", "message": "", "message_id": "", "diagnosis": None, "details": {},
            "duration_s": round(report.duration, 4),
            # A check of an instructor's --suites folder is hidden from the student (name and outcome
            # only) unless marked @pytest.mark.visible: its inputs are the instructor's secret.
            "hidden": _private(node) and node.get_closest_marker("visible") is None,
        }
        properties = dict(report.user_properties)
        swaps = properties.pop("student_swaps", None)  # grader.checking.fixtures.SWAPS_PROPERTY
        if isinstance(swaps, list):
            check["student_swaps"] = [list(s) for s in swaps]
        forced = properties.pop("forced_swaps", None)  # dependencies swapped because their code broke
        if isinstance(forced, list) and forced:
            check["forced_swaps"] = sorted(str(dep) for dep in forced)
        if properties:
            check["details"] = _jsonable(properties)
        if report.passed:
            if "convention" in properties:  # book errata: say which accepted convention was used
                convention = properties["convention"]
                _message(check, "check.convention_used",
                         convention=convention if isinstance(convention, Phrase) else str(convention))
            return check
        exc = call.excinfo.value if call.excinfo is not None else None
        if report.skipped:
            check.update(status="skipped", message=str(exc or ""))
        elif isinstance(exc, NotStarted):
            check["status"] = "not_started"
            _message(check, exc.message_id, stub=str(exc))
        elif isinstance(exc, GradeFailure):
            check.update(status="failed", message_id=exc.message_id, message=str(exc),
                         message_params=encode_params(exc.params),
                         diagnosis=exc.diagnosis, details=_jsonable({**properties, **exc.details}))
        else:
            text = f"{type(exc).__name__}: {exc}" if exc is not None else report.longreprtext[-1500:]
            check["status"] = "failed"
            _message(check, "check.failed_generic", detail=text[:1500])
        return check

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        payload = {
            "format": RESULTS_FORMAT,
            "checks": self.checks,
            "load_errors": self.load_errors,
            "environment": self.environment,
            "grader_code": self.grader_code,
            "collection_errors": self.collection_errors,
            "duration_s": round(time.time() - self.started, 3),
        }
        write_signed(self.path, self.key, payload)


def _private(node: pytest.Item) -> bool:
    """A check that is not one of the grader's own suites (an instructor's ``--suites`` folder)."""
    try:
        return not Path(str(node.path)).resolve().is_relative_to(SUITES_DIR.resolve())
    except (OSError, ValueError):
        return True


def _message(check: dict[str, Any], message_id: str, **params: Any) -> None:
    """The check's message, its id and its parameters (so a report can render it in another language)."""
    check.update(message_fields(message_id, **params))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


COLLECTOR = pytest.StashKey[Collector]()
