"""The contract between ``llmgrade`` (the runner) and the trusted pytest process it starts.

Both ends import this module and nothing else of each other: ``grader/runner/run.py`` builds the
command line and reads the results; ``grader/checking/plugin.py`` and ``fixtures.py`` read the run
spec and write the results. Everything that crosses the hop is defined here:

- **the command line**: ``python -P -m pytest <suite files> <our ini and plugins> --llmgrade-run=<spec>``
  (:func:`pytest_command`); the spec is one JSON object (:class:`RunSpec`);
- **the environment**: the caller's, less ``PYTEST_ADDOPTS``, with plugin auto-loading off, a safe
  ``sys.path``, the run's own ``TMPDIR`` and the torch thread cap when asked (:func:`pytest_environment`);
- **the key**: 32 random bytes on a private pipe (``RunSpec.key_fd``), read once and closed, so
  nothing the student's code can see or write can sign a result (:func:`read_key`, :func:`sign`);
- **progress**: one line per event on a second pipe, ``total <n>`` then ``done <status> <nodeid>``
  (:func:`total_line`, :func:`done_line`, :class:`ProgressCounter`);
- **the results**: one JSON document ``{"payload": {...}, "signature": hmac}`` whose payload has
  ``"format": RESULTS_FORMAT`` (:func:`write_signed`, :func:`read_signed`).

The device in the spec is only the *request* (``"auto"`` or what ``--device`` named); the pytest
process resolves it once and reports the device it used in the payload's ``environment``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPEC_OPTION = "--llmgrade-run"
SPEC_FORMAT = "llmgrade.run/1"
RESULTS_FORMAT = "llmgrade.checks/1"
KEY_BYTES = 32
SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
PLUGINS = ("grader.checking.plugin", "grader.checking.fixtures", "grader.checking.parallel")
AUTO_DEVICE = "auto"
# The whole-submission limit stretches by the slowdown the grading process reports on the progress
# pipe (``slowdown_line``, grader/checking/pace.py), up to this factor.
MAX_SUBMISSION_SLOWDOWN = 4.0
# OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads sleep as soon as a parallel region ends instead of spinning
# for it. The trusted process and the worker take turns on the same cores (one waits while the other
# computes), and a waiting process's spinning threads took the cores the other one needed: on the
# 2-core machines under load a 6x6 ``torch.triu`` took 6-13 ms instead of 0.04 ms, and one
# MultiHeadAttention forward and backward 40-60 ms instead of 4-7 ms. The thread count, and so
# every result, is unchanged. Both processes get it (the worker through grader/sandbox/parent.py).
OMP_WAIT_POLICY, PASSIVE = "OMP_WAIT_POLICY", "PASSIVE"


@dataclass(frozen=True)
class RunSpec:
    """What one grading run asks of the pytest process (serialised as one command-line value)."""

    submission: str
    results: str
    items: tuple[str, ...] = ()
    device: str = AUTO_DEVICE
    time_scale: float = 1.0
    key_fd: int = -1
    progress_fd: int = -1
    gate_fds: tuple[int, int] | None = None  # llmgrade watch: (ready, go) pipe ends, see fixtures.wait_for_go
    runners: int = 0  # items graded side by side (grader/checking/parallel.py); 0: one per usable core
    format: str = field(default=SPEC_FORMAT)

    def to_arg(self) -> str:
        gate = list(self.gate_fds) if self.gate_fds is not None else None
        return json.dumps({**asdict(self), "items": list(self.items), "gate_fds": gate}, sort_keys=True)

    @classmethod
    def from_arg(cls, text: str) -> RunSpec:
        """Parse :meth:`to_arg`'s output; a ``ValueError`` says what is wrong with it."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{SPEC_OPTION} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
            raise ValueError(f"{SPEC_OPTION} is not a {SPEC_FORMAT} object")
        try:
            return cls(submission=str(data["submission"]), results=str(data["results"]),
                       items=tuple(str(i) for i in data.get("items", [])),
                       device=str(data.get("device", AUTO_DEVICE)),
                       time_scale=float(data.get("time_scale", 1.0)),
                       key_fd=int(data.get("key_fd", -1)), progress_fd=int(data.get("progress_fd", -1)),
                       gate_fds=_gate(data.get("gate_fds")), runners=int(data.get("runners", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{SPEC_OPTION} has a missing or malformed field: {exc}") from None


def _gate(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    ready, go = value  # a ValueError or TypeError unless it is a pair
    return int(ready), int(go)


def pytest_command(python: str, suite_paths: Sequence[str], spec: RunSpec) -> list[str]:
    """The full command line: ``-P`` (no current-folder entry on ``sys.path``: nothing in the run
    folder can shadow a module), our ini and rootdir (a student's ``conftest.py``/``pytest.ini`` has
    no effect), no cache, our two plugins, quiet classic output, Python's own tracebacks in the log
    (pytest's long form parses a whole source file again for every frame of every failed check:
    14 of the 26 CPU seconds of a full grade of the stubs; the grade never reads them), and the spec."""
    return [python, "-P", "-m", "pytest", *suite_paths,
            "-c", str(SUITES_DIR / "pytest.ini"), "--rootdir", str(SUITES_DIR),
            "--confcutdir", str(SUITES_DIR), "-p", "no:cacheprovider",
            *[arg for plugin in PLUGINS for arg in ("-p", plugin)],
            "-q", "--no-header", "-o", "console_output_style=classic", "--tb=native",
            f"{SPEC_OPTION}={spec.to_arg()}"]


def pytest_environment(base: Mapping[str, str], *, threads: int | None = None,
                       tmpdir: Path | None = None) -> dict[str, str]:
    """The pytest process's environment: ``base`` without ``PYTEST_ADDOPTS``, no plugin auto-loading,
    no bytecode files, a safe ``sys.path``; ``tmpdir`` for every temporary folder it makes (the run's
    private folder); ``threads`` caps torch's threads (read at start-up, passed on to the worker);
    OpenMP's threads sleep when idle unless the caller's environment says otherwise (``OMP_WAIT_POLICY``)."""
    env = {k: v for k, v in base.items() if k != "PYTEST_ADDOPTS"}
    env.update({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONSAFEPATH": "1"})
    env.setdefault(OMP_WAIT_POLICY, PASSIVE)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


# -- the key and the signature ------------------------------------------------------------------

def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def read_key(fd: int) -> bytes:
    """The signing key from the private pipe (empty when there is none: nothing will verify)."""
    if fd < 0:
        return b""
    with os.fdopen(fd, "rb") as fh:
        return fh.read(KEY_BYTES)


def hand_over_key(key: bytes) -> int:
    """A pipe holding ``key``: returns its read end, for :attr:`RunSpec.key_fd` (pass it on, then close it)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, key)
    finally:
        os.close(write_fd)
    return read_fd


def sign(key: bytes, payload: Mapping[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def write_signed(path: Path, key: bytes, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` (which must carry ``"format": RESULTS_FORMAT``) and its signature atomically."""
    document = {"payload": dict(payload), "signature": sign(key, payload)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def read_signed(path: Path, key: bytes) -> dict[str, Any] | None:
    """The payload if the file is ours and its signature is valid, else ``None`` (missing or forged)."""
    try:
        document = json.loads(path.read_text("utf-8"))
        payload = document["payload"]
        signature = document["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(payload, dict) or payload.get("format") != RESULTS_FORMAT:
        return None
    if not hmac.compare_digest(sign(key, payload), str(signature)):
        return None
    return payload


# -- progress -----------------------------------------------------------------------------------

def total_line(count: int) -> str:
    return f"total {count}"


def slowdown_line(slowdown: float) -> str:
    return f"slowdown {slowdown:.3f}"


def done_line(status: str, nodeid: str) -> str:
    return f"done {status} {nodeid}"


class ProgressCounter:
    """Reads progress lines: how many checks are done out of how many."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def feed(self, line: str) -> None:
        if line.startswith("total "):
            try:
                self.total = int(line.split()[1])
            except (IndexError, ValueError):
                pass
        elif line.startswith("done "):
            self.done += 1
