"""The test-facing handle on the student's code: ``student.run(recipe, **inputs) -> data``.

A :class:`Worker` is one sandboxed child process (see :mod:`grader.sandbox.child`): no inherited
secrets in its environment, a fresh working folder, a memory limit, a cap on what it may print or
write, and a time limit per call enforced from here. A hang, a crash (even a segfault),
``sys.exit`` or a memory blow-up ends only the call that caused it: the worker is restarted on the
next call and every other item is still graded.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from grader.sandbox import key_uses, key_watch, policy, protocol, seccomp
from grader.sandbox.child import STACK_DUMP_NAME
from grader.sandbox.stack_dump import request_dump, stuck_at
from grader.sandbox.cgroup import TreeGroup
from grader.checking.failures import GradeFailure, NotStarted
from grader.messages import phrase, t
from grader.notebooks.locations import describe
from grader.checking.pace import Pace
from grader.runner.contract import OMP_WAIT_POLICY, PASSIVE

GRADER_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIME_LIMIT_S = 5.0
# After one of these, later checks of the same item fail at once instead of waiting again.
_BREAKER_KINDS = ("timeout", "crash", "exit", "answer_key")
LOAD_TIME_LIMIT_S = 90.0
# One module's import; a longer one is stopped where it is stuck and costs only that module.
MODULE_LOAD_TIME_LIMIT_S = 15.0
DEFAULT_MEMORY_GIB = 6.0
OUTPUT_TAIL_BYTES = 4000
COVERAGE_ENV = "LLMGRADE_WORKER_COVERAGE"  # set by the project's own tests only
RECORD_ENV = "LLMGRADE_RECORD_CALLS"  # bench/: save every recipe call here, to replay it directly
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


@dataclass
class WorkerError(Exception):
    """A call that did not return a value: the student's code raised, hung, or died."""

    kind: str  # exception | not_implemented | memory | timeout | crash | exit | too_large | protocol
    message: str
    type: str = ""
    file: str | None = None
    line: int | None = None
    source_line: str = ""
    output_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind}: {self.type} {self.message}"


def sandbox_env(home: Path | str, tiktoken_cache: Path | None, sandboxed: bool = False) -> dict[str, str]:
    """A minimal environment: nothing secret from the grader's own environment is passed on."""
    env = {key: os.environ[key] for key in _KEEP_ENV if key in os.environ}
    if sandboxed:
        env["TMPDIR"] = "/tmp"
    env.update({
        "HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        OMP_WAIT_POLICY: os.environ.get(OMP_WAIT_POLICY, PASSIVE),  # see grader/runner/contract.py
        "NO_PROXY": "*",
    })
    if tiktoken_cache is not None:
        env["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache)
    return env


def tree_memory_bytes(memory_gib: float) -> int:
    """The cap on the worker's whole tree: its own limit, its tmpfs mounts and some slack for
    children (a CUDA worker, with no address-space limit, gets the default's)."""
    own = memory_gib or DEFAULT_MEMORY_GIB
    return int(own * 1024**3) + policy.TMP_BYTES + policy.SHM_BYTES + 1024**3


class Worker:
    def __init__(self, submission: Path, *, device: str = "cpu",
                 memory_gib: float = DEFAULT_MEMORY_GIB, tiktoken_cache: Path | None = None,
                 max_reply_bytes: int = 64 * 1024 * 1024) -> None:
        self.submission = submission.resolve()
        self.device = device
        # An address-space limit breaks CUDA initialisation: on accelerators rely on the device's
        # own allocator limit instead (set in the worker through the recipe defaults).
        cuda = device.startswith("cuda")
        self.memory_gib = 0.0 if cuda else memory_gib
        self.tiktoken_cache = tiktoken_cache
        self.max_reply_bytes = max_reply_bytes
        self.proc: subprocess.Popen[bytes] | None = None
        self.home = Path(tempfile.mkdtemp(prefix="llmgrade-worker-"))
        self.output = self.home / "output.log"
        self._to_worker = -1
        self._from_worker = -1
        self._key_uses_fd = -1  # the answer-key tripwire's pipe (grader/sandbox/key_watch.py)
        self.key_uses_seen: list[key_uses.KeyUse] = []  # what it reported during the last call
        self.load_report: dict[str, Any] | None = None
        self.restarts = 0
        self.broken_items: dict[str, WorkerError] = {}
        self.isolation = policy.probe()
        self.group: TreeGroup | None = None
        self.load_time_scale = 1.0  # how much slower than idle the machine runs (set by the fixtures)

    # -- process management -------------------------------------------------------------------
    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self._close_pipes()
        self._remove_group()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        key_r, key_w = os.pipe()
        os.set_blocking(key_r, False)
        sandboxed = self.isolation.sandboxed
        # The importable link to the submission (read-only /llmgrade/pkg in the sandbox; a stack
        # dump's paths are mapped back to it in _locate).
        package_root = self.home / "pkg"
        if not (package_root / "submission").is_symlink():
            package_root.mkdir(exist_ok=True)
            (package_root / "submission").symlink_to(self.submission, target_is_directory=True)
        if sandboxed:  # home and working folder live on the sandbox's own tmpfs
            workdir = Path(policy.SANDBOX_HOME)
        else:
            workdir = self.home / "cwd"
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
        self.output.touch()
        self.output.with_name(STACK_DUMP_NAME).touch()  # the worker's stack dump (bound into the sandbox)
        inside = self._inside_paths(package_root) if sandboxed else {}
        bootstrap = f"import sys; sys.path.insert(0, {str(GRADER_ROOT)!r}); from grader.sandbox.child import main; main()"
        cmd = [sys.executable, "-I", "-c", bootstrap,
               "--read-fd", str(req_r), "--write-fd", str(rep_w), "--key-fd", str(key_w),
               "--submission", str(self.submission), "--output", inside.get("output", str(self.output)),
               "--package-root", inside.get("pkg", str(package_root)), "--memory-gib", str(self.memory_gib),
               "--device", self.device]
        coverage_file = os.environ.get(COVERAGE_ENV)
        if coverage_file:
            cmd += ["--coverage", coverage_file]
        fds = [req_r, rep_w, key_w]
        filter_fd = None
        if sandboxed:
            filter_fd = seccomp.filter_fd() if self.isolation.seccomp else None
            if filter_fd is not None:
                fds.append(filter_fd)
            cmd = [*self._bwrap(package_root, inside, coverage_file, filter_fd), *cmd]
        if self.isolation.cgroup:
            self.group = TreeGroup.create(tree_memory_bytes(self.memory_gib))
            if self.group is not None:
                cmd = self.group.wrap(cmd)
        cache = self.tiktoken_cache
        if cache is not None and sandboxed:
            cache = Path(inside["tiktoken"])
        # bwrap's own complaints (before the worker redirects its output) go to the output log.
        err_fd = os.open(self.output, os.O_WRONLY | os.O_APPEND)
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=workdir if not sandboxed else None,
                env=sandbox_env(workdir, cache, sandboxed),
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err_fd, start_new_session=True)
        finally:
            for fd in (req_r, rep_w, key_w, filter_fd, err_fd):
                if fd is not None:
                    os.close(fd)
        self._to_worker, self._from_worker, self._key_uses_fd = req_w, rep_r, key_r

    def _bwrap(self, package_root: Path, inside: dict[str, str], coverage_file: str | None,
               filter_fd: int | None) -> list[str]:
        """The sandbox around the worker (see :mod:`grader.sandbox.policy`)."""
        binds = [policy.Bind(self.output, inside["output"], writable=True),
                 policy.Bind(self.output.with_name(STACK_DUMP_NAME), inside["stack"], writable=True),
                 policy.Bind(package_root, inside["pkg"])]
        if self.tiktoken_cache is not None:
            binds.append(policy.Bind(self.tiktoken_cache, inside["tiktoken"]))
        if coverage_file:  # the project's own tests only
            folder = Path(coverage_file).parent
            binds.append(policy.Bind(folder, str(folder.resolve()), writable=True))
        cuda = bool(self.device) and str(self.device).startswith("cuda")
        return policy.bwrap_args(policy.Mounts(self.submission, binds), seccomp_fd=filter_fd, gpu=cuda)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.proc = None
        self._close_pipes()
        self._remove_group()

    def _remove_group(self) -> None:
        if self.group is not None:
            self.group.remove()
            self.group = None

    def close(self) -> None:
        """Ask the worker to finish (it saves coverage data when measuring), then make sure."""
        if self.proc is not None and self.proc.poll() is None and os.environ.get(COVERAGE_ENV):
            try:  # only a measured worker has anything to save; others are simply stopped
                protocol.send(self._to_worker, {"op": "exit"})
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, protocol.ProtocolError):
                pass
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def _close_pipes(self) -> None:
        for fd in (self._to_worker, self._from_worker, self._key_uses_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_worker = self._from_worker = self._key_uses_fd = -1

    # -- calls ----------------------------------------------------------------------------------
    def ping(self, time_limit_s: float) -> bool:
        """Wait until the started worker answers (it has imported torch). Never starts a worker and
        never imports the student's code; one that does not answer in time is stopped (the next
        request starts it again). True when it answered."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            protocol.send(self._to_worker, {"op": "ping"})
            reply = self._receive(time_limit_s)
        except (WorkerError, OSError, EOFError, protocol.ProtocolError):
            self.stop()
            return False
        return isinstance(reply, dict) and reply.get("value") == "pong"

    def load(self) -> dict[str, Any]:
        """Import every chapter module (again after a restart).

        Returns ``{"modules": {module: problem}, "missing": {item id: [names]}}``; the first
        report is kept, since a restarted worker loads the same files.
        """
        scale = max(self.load_time_scale, 1.0)
        message: dict[str, Any] = {"op": "load", "module_time_limit_s": MODULE_LOAD_TIME_LIMIT_S * scale}
        if self.load_report is not None:  # a restarted worker: do not wait for a hang again
            modules = self.load_report.get("modules", {})
            message["skip"] = sorted(name for name, info in modules.items()
                                     if isinstance(info, dict) and info.get("timeout_s"))
        try:
            report = self.request(message, LOAD_TIME_LIMIT_S * scale)
        except WorkerError as err:  # the tripwire was blinded while the modules were imported
            if err.kind != "answer_key" or self.load_report is not None:
                raise
            report = {"modules": {"*": {"kind": "answer_key", "use": "tamper", "message": "tamper",
                                        "file": str(self.submission)}}, "missing": {}}
        if isinstance(report, dict) and self.key_uses_seen:  # the tripwire outranks what the worker said
            from grader.catalog import MODULES

            modules = dict(report.get("modules") or {})
            modules.update(key_uses.load_errors(self.key_uses_seen, self.submission, list(MODULES)))
            report = {**report, "modules": modules}
        if self.load_report is None:
            self.load_report = report if isinstance(report, dict) else {"modules": {}, "missing": {}}
        return self.load_report

    def request(self, message: dict[str, Any], time_limit_s: float) -> Any:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
            self.start()
            if message.get("op") != "load":
                self.load()
        output_start = self.output.stat().st_size if self.output.exists() else 0
        self.key_uses_seen = []
        try:
            protocol.send(self._to_worker, message)
            reply = self._receive(time_limit_s)
            used = self._answer_key_use(message)
            if used is not None:
                raise used
        except WorkerError as err:
            if err.kind != "answer_key":  # a use of the key outranks how the call ended
                err = self._answer_key_use(message) or err
            err.output_tail = self._output_tail(output_start)
            if err.kind == "timeout" and self.proc is not None:
                self._locate(err)
            self.stop()
            raise
        except (BrokenPipeError, EOFError, OSError) as exc:
            used = self._answer_key_use(message) or self._tampered(message)
            if used is not None:
                used.output_tail = self._output_tail(output_start)
                self.stop()
                raise used from None
            tail = self._output_tail(output_start)
            detail = self._death_detail(exc)
            # Killed by the tree's memory cap (a child, or tmpfs pages, took the memory).
            kind = "memory" if self.group is not None and self.group.hit_memory_limit() else "crash"
            self.stop()
            raise WorkerError(kind, detail, output_tail=tail) from None
        if not isinstance(reply, dict) or "ok" not in reply:
            self.stop()
            raise WorkerError("protocol", "the worker sent a malformed reply")
        if reply["ok"]:
            return reply.get("value")
        error = reply.get("error") or {}
        raise WorkerError(
            kind=str(error.get("kind", "exception")), message=str(error.get("message", "")),
            type=str(error.get("type", "")), file=error.get("file"), line=error.get("line"),
            source_line=str(error.get("source_line", "")), output_tail=self._output_tail(output_start))

    def _answer_key_use(self, message: dict[str, Any]) -> WorkerError | None:
        """Read what the tripwire reported during this call; a use during a recipe call fails it."""
        if self._key_uses_fd < 0:
            return None
        inside = self._inside_paths(self.home / "pkg")["pkg"] if self.isolation.sandboxed else str(self.home / "pkg")
        uses = key_uses.parse(key_uses.drain(self._key_uses_fd), self.submission, inside)
        self.key_uses_seen = uses
        if not uses or message.get("op") != "run":
            return None
        error = uses[0].error(self.submission)
        return WorkerError("answer_key", str(error["message"]), type=str(error["type"]), file=error["file"],
                           line=error["line"], source_line=str(error["source_line"]))

    def _tampered(self, message: dict[str, Any]) -> WorkerError | None:
        """The worker ended because its tripwire could no longer report (its pipe was closed or
        replaced by the student's code): that counts as using the answer key."""
        if self.proc is None or message.get("op") not in ("run", "load"):
            return None
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None
        if code != key_watch.TAMPER_EXIT:
            return None
        return WorkerError("answer_key", "tamper", type="tamper")

    @staticmethod
    def _inside_paths(package_root: Path) -> dict[str, str]:
        """Where the worker's own files appear inside the sandbox."""
        return {"output": f"{policy.INSIDE}/output.log", "stack": f"{policy.INSIDE}/{STACK_DUMP_NAME}",
                "pkg": f"{policy.INSIDE}/{package_root.name}", "tiktoken": f"{policy.INSIDE}/tiktoken"}

    def _locate(self, err: WorkerError) -> None:
        """Fill in where the student's code was when it ran out of time (see ``stack_dump``)."""
        assert self.proc is not None
        pid = policy.sandboxed_pid(self.proc.pid) if self.isolation.sandboxed else self.proc.pid
        if pid is None:
            return
        dump = request_dump(pid, self.output.with_name(STACK_DUMP_NAME))
        if self.isolation.sandboxed:  # the worker imported the submission through /llmgrade/pkg
            dump = dump.replace(self._inside_paths(self.home / "pkg")["pkg"] + "/", f"{self.home / 'pkg'}/")
        found = stuck_at(dump, self.submission)
        if found is not None:
            err.file, err.line, err.source_line = found.file, found.line, found.source_line
            err.extra.update({"function": found.function, "stuck_in_item": found.item})

    def _receive(self, time_limit_s: float) -> Any:
        deadline = time.monotonic() + time_limit_s
        remaining = time_limit_s
        ready, _, _ = select.select([self._from_worker], [], [], max(remaining, 0.0))
        if not ready:
            raise WorkerError("timeout", f"{time_limit_s:g}", extra={"seconds": time_limit_s})
        header = protocol.read_exact(self._from_worker, protocol.HEADER.size)
        (size,) = protocol.HEADER.unpack(header)
        if size > self.max_reply_bytes:
            raise WorkerError("too_large", f"{size}", extra={"bytes": size})
        chunks: list[bytes] = []
        got = 0
        while got < size:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_worker], [], [], max(remaining, 0.0))
            if not ready:
                raise WorkerError("timeout", f"{time_limit_s:g}", extra={"seconds": time_limit_s})
            chunk = os.read(self._from_worker, min(size - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        try:
            return protocol.decode(b"".join(chunks))
        except protocol.ProtocolError as exc:
            raise WorkerError("protocol", str(exc)) from None

    def _death_detail(self, exc: BaseException) -> str:
        if self.proc is None:
            return str(exc)
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return str(exc)
        if code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"

    def _output_tail(self, start: int) -> str:
        try:
            with open(self.output, "rb") as fh:
                fh.seek(start)
                data = fh.read()
        except OSError:
            return ""
        text = data[-OUTPUT_TAIL_BYTES:].decode("utf-8", "replace")
        return text


class Student:
    """What a hidden check sees: run a recipe against the student's code, get data or a failure."""

    def __init__(self, worker: Worker, default_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 item: str | None = None) -> None:
        self.worker = worker
        self.default_time_limit_s = default_time_limit_s
        self.time_scale = 1.0
        self.item = item
        self.pace: Pace | None = None  # limits scaled by the reference's time in this run
        self.swaps_used: list[list[str]] | None = None  # each call's swap list (for blame in scoring)

    @property
    def device(self) -> str:
        """The grading device (resolved once by the trusted side; both sides compute on it)."""
        return self.worker.device

    def run(self, recipe: str, /, *, swap: Sequence[str] = (), what: str = "",
            time_limit_s: float | None = None, **inputs: Any) -> Any:
        """Run ``recipe`` in the worker. Raises :class:`NotStarted` for a stub, else
        :class:`GradeFailure` with a message that names the student's file and line."""
        floor = time_limit_s or self.default_time_limit_s
        limit = (self.pace.limit(recipe, floor) if self.pace is not None else floor) * self.time_scale
        earlier = self.worker.broken_items.get(self.item or "")
        if earlier is not None:
            raise GradeFailure("check.skipped_after_" + earlier.kind, what=what or recipe,
                               details={"kind": earlier.kind}) from None
        message = {"op": "run", "recipe": recipe, "swap": list(swap), "inputs": inputs}
        if self.swaps_used is not None:
            self.swaps_used.append(sorted(swap))
        record_dir = os.environ.get(RECORD_ENV)
        if record_dir:
            _record(Path(record_dir), message)
        try:
            return self.worker.request(message, limit)
        except WorkerError as err:
            reference_s = self.pace.reference_seconds(recipe) if self.pace is not None else None
            if err.kind == "timeout" and reference_s is not None:
                err.extra["reference_s"] = round(reference_s, 3)
            if err.kind in _BREAKER_KINDS and self.item:
                self.worker.broken_items[self.item] = err
            raise failure_from_worker_error(err, what or recipe, self.item, self.worker.submission) from None


def _record(folder: Path, message: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = len(list(folder.glob("call-*.pt")))
    (folder / f"call-{os.getpid()}-{index:05d}.pt").write_bytes(protocol.encode(message))


def _seconds(err: WorkerError) -> str:
    """The limit a timed-out call had, as shown to the student."""
    try:
        return f"{float(err.extra.get('seconds', err.message)):.1f}"
    except (TypeError, ValueError):
        return err.message


def failure_from_worker_error(err: WorkerError, what: str, item: str | None = None,
                              submission: Path | None = None) -> Exception:
    where = describe(err.file, err.line, submission)  # ch03.py:17, or ch03.ipynb, cell 14, line 3
    if err.kind == "not_implemented":
        return NotStarted(err.message or what)
    if err.kind == "timeout" and err.file:
        stuck_in = str(err.extra.get("stuck_in_item") or "")
        owner = phrase("feedback.timeout_owner", item=stuck_in) if stuck_in and stuck_in != item else ""
        details = {"kind": err.kind, "file": err.file, "line": err.line, "source_line": err.source_line,
                   "output_tail": err.output_tail, "where": where, **err.extra}
        paced = "reference_s" in err.extra  # how long the reference took, here and now
        return GradeFailure("check.student_timeout_at_paced" if paced else "feedback.student_timeout_at",
                            details=details, what=what, seconds=_seconds(err), where=where,
                            function=err.extra.get("function", "?"), source_line=err.source_line, owner=owner,
                            reference_s=f"{float(err.extra.get('reference_s', 0)):.2f}")
    ids = {
        "exception": "check.student_raised",
        "memory": "check.student_memory",
        "timeout": "check.student_timeout",
        "crash": "check.student_crashed",
        "exit": "check.student_exited",
        "too_large": "check.student_too_large",
        "protocol": "check.student_bad_value",
        "module_not_loaded": "check.module_not_loaded",
        "answer_key": "check.uses_answer_key",
    }
    details = {"kind": err.kind, "type": err.type, "file": err.file, "line": err.line,
               "source_line": err.source_line, "output_tail": err.output_tail, "where": where, **err.extra}
    if err.kind == "timeout" and "reference_s" in err.extra:  # how long the reference took, here and now
        return GradeFailure("check.student_timeout_paced", details=details, what=what, seconds=_seconds(err),
                            reference_s=f"{float(err.extra['reference_s']):.2f}")
    return GradeFailure(ids.get(err.kind, "check.student_raised"), details=details, what=what,
                        type=err.type, message=err.message, where=where, source_line=err.source_line or "?",
                        how=key_uses.how(err.type, err.message) if err.kind == "answer_key" else "")
