"""The test-facing handle on the student's code: ``student.run(recipe, **inputs) -> data``.

One :class:`ForkServer` per grading run runs in the OS sandbox with torch imported and nothing of
the submission or of the reference (:mod:`grader.sandbox.forkserver`). Each item is graded by its
own :class:`Worker`, forked from it (see :mod:`grader.sandbox.child`): no inherited secrets in its
environment, namespaces of its own, a fresh working folder, a memory limit, a cap on what it may
print or write, a time limit per call enforced from here, and as its only reference code the view
of what the item builds on (:mod:`grader.sandbox.views`), never the item's own. A hang, a crash
(even a segfault), ``sys.exit`` or a memory blow-up ends only the call that caused it: the worker
is forked again on the next call, and every other item is still graded.
"""

from __future__ import annotations

import array
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from grader.sandbox import policy, protocol, views
from grader.sandbox.stack_dump import request_dump, stuck_at
from grader.sandbox.cgroup import PIDS_MAX, TreeGroup
from grader.checking.failures import GradeFailure, NotStarted
from grader.messages import phrase, t
from grader.notebooks.locations import describe
from grader.checking.pace import Pace
from grader.runner.contract import OMP_WAIT_POLICY, PASSIVE

GRADER_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIME_LIMIT_S = 5.0
# After one of these, later checks of the same item fail at once instead of waiting again.
_BREAKER_KINDS = ("timeout", "crash", "exit")
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


def tree_memory_bytes(memory_gib: float, workers: int = 1) -> int:
    """The cap on the fork server's whole tree: each worker alive at once with its own limit and
    tmpfs mounts, and some slack for the server and children (a CUDA worker, with no address-space
    limit, gets the default's)."""
    own = memory_gib or DEFAULT_MEMORY_GIB
    return max(1, workers) * (int(own * 1024**3) + policy.TMP_BYTES + policy.SHM_BYTES) + 1024**3


@dataclass
class Spawned:
    """One worker forked by the server: its pipes and a pidfd to watch and signal it."""

    to_worker: int
    from_worker: int
    pidfd: int
    pid: int  # in this process's pid namespace (read from the pidfd), for the stack dump
    ack: socket.socket  # says how the worker ended (its exit status) once it has


class ForkServer:
    """The trusted handle on one grading run's fork server (:mod:`grader.sandbox.forkserver`).

    Started once per run inside the OS sandbox where the machine has one; every worker is forked
    from it. ``workers``: how many may be alive at once (the tree's memory cap counts them)."""

    def __init__(self, submission: Path, *, device: str = "cpu", memory_gib: float = DEFAULT_MEMORY_GIB,
                 tiktoken_cache: Path | None = None, workers: int = 2, threads: int = 1,
                 warm: bool = False, preload: Sequence[str] = (), tree_bytes: int | None = None,
                 tree_pids: int | None = None) -> None:
        self.submission = submission.resolve()
        self.device = device
        self.memory_gib = 0.0 if device.startswith("cuda") else memory_gib  # RLIMIT_AS breaks CUDA
        self.tiktoken_cache = tiktoken_cache
        self.workers = workers
        self.threads = threads
        self.warm = warm  # import what a first optimizer step or meta-device model imports, once for all
        self.preload = list(preload)  # libraries the submission imports (grader/checking/preload.py)
        self.tree_bytes = tree_bytes or tree_memory_bytes(self.memory_gib, workers)  # the whole tree's caps
        self.tree_pids = tree_pids or PIDS_MAX
        self.isolation = policy.probe()
        self.home = Path(tempfile.mkdtemp(prefix="llmgrade-worker-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.group: TreeGroup | None = None
        self._control: socket.socket | None = None
        self._owner = os.getpid()
        self._spawned = 0
        self.package_root = self.home / "pkg"
        self.package_root.mkdir()
        (self.package_root / "submission").symlink_to(self.submission, target_is_directory=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and (os.getpid() != self._owner or self.proc.poll() is None)

    def start(self) -> None:
        if self.alive:
            return
        if os.getpid() != self._owner:
            raise WorkerError("crash", "the fork server of this run is gone")
        self.stop()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sandboxed = self.isolation.sandboxed
        inside = _inside_paths() if sandboxed else {}
        settings = {
            "nest": sandboxed, "seccomp": sandboxed and self.isolation.seccomp,
            "device": self.device, "memory_gib": self.memory_gib, "file_mib": 64.0,
            "threads": self.threads, "tmp_bytes": policy.TMP_BYTES, "shm_bytes": policy.SHM_BYTES,
            "home": policy.SANDBOX_HOME if sandboxed else str(self.home / "cwd"),
            "submission": str(self.submission),
            "package_root": inside.get("pkg", str(self.package_root)),
            "coverage": os.environ.get(COVERAGE_ENV, ""),
            "warm": self.warm, "preload": self.preload,
            "support_view": [list(m) for m in views.view_for([]).modules],
            # What the sandbox shows at its host path, which a worker's fresh /tmp must not hide.
            "keep": [[str(self.submission), False],
                     *([[str(Path(os.environ[COVERAGE_ENV]).parent.resolve()), True]]
                       if os.environ.get(COVERAGE_ENV) else [])],
        }
        bootstrap = (f"import sys; sys.path.insert(0, {str(GRADER_ROOT)!r}); "
                     "from grader.sandbox.forkserver import main; main()")
        cmd = [sys.executable, "-I", "-c", bootstrap, "--control-fd", str(theirs.fileno()),
               "--settings", json.dumps(settings)]
        if sandboxed:
            cmd = [*self._bwrap(inside), *cmd]
        if self.isolation.cgroup:
            self.group = TreeGroup.create(self.tree_bytes, self.tree_pids)
            if self.group is not None:
                cmd = self.group.wrap(cmd)
        cache = self.tiktoken_cache
        if cache is not None and sandboxed:
            cache = Path(inside["tiktoken"])
        log = self.home / "server.log"
        with open(log, "ab") as err:
            try:
                self.proc = subprocess.Popen(
                    cmd, cwd=self.home, env=sandbox_env(str(settings["home"]), cache, sandboxed),
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                    start_new_session=True)
            finally:
                theirs.close()
        self._control = mine

    def _bwrap(self, inside: dict[str, str]) -> list[str]:
        binds = [policy.Bind(self.package_root, inside["pkg"])]
        if self.tiktoken_cache is not None:
            binds.append(policy.Bind(self.tiktoken_cache, inside["tiktoken"]))
        coverage_file = os.environ.get(COVERAGE_ENV)
        if coverage_file:  # the project's own tests only
            folder = Path(coverage_file).parent
            binds.append(policy.Bind(folder, str(folder.resolve()), writable=True))
        return policy.bwrap_args(policy.Mounts(self.submission, binds), gpu=self.device.startswith("cuda"))

    def spawn(self, time_limit_s: float) -> Spawned:
        """Fork a new worker; raises :class:`WorkerError` when none could be started in time."""
        self.start()
        assert self._control is not None
        self._spawned += 1
        name = f"{os.getpid()}-{self._spawned}"
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        output = self.output_file(name)
        out_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stack_fd = os.open(output.with_name(f"stack-{name}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        ack, ack_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fds = array.array("i", [req_r, rep_w, out_fd, stack_fd, ack_theirs.fileno()])
            self._control.sendmsg([json.dumps({"op": "spawn"}).encode()],
                                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as exc:
            for fd in (req_w, rep_r):
                os.close(fd)
            raise WorkerError("crash", f"the fork server is gone ({exc})") from None
        finally:
            for fd in (req_r, rep_w, out_fd, stack_fd):
                os.close(fd)
            ack_theirs.close()
        try:
            pid, pidfd = _acknowledged(ack, time_limit_s)
        except WorkerError:
            os.close(req_w)
            os.close(rep_r)
            ack.close()
            raise
        return Spawned(req_w, rep_r, pidfd, _host_pid(pidfd, pid), ack)

    def output_file(self, name: str) -> Path:
        return self.home / f"output-{name}.log"

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.proc is not None and os.getpid() == self._owner:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        self.proc = None
        if self.group is not None and os.getpid() == self._owner:
            self.group.remove()
        self.group = None

    def close(self) -> None:
        if os.getpid() != self._owner:  # a forked copy: the process that started it ends it
            if self._control is not None:
                self._control.close()
                self._control = None
            return
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def hit_memory_limit(self, before: int) -> bool:
        return self.group is not None and self.group.memory_failures() > before

    def memory_failures(self) -> int:
        return self.group.memory_failures() if self.group is not None else 0


def _acknowledged(ack: socket.socket, time_limit_s: float) -> tuple[int, int]:
    """The new worker's pid and pidfd, as its intermediate process sends them."""
    ready, _, _ = select.select([ack], [], [], time_limit_s)
    if not ready:
        raise WorkerError("crash", f"no worker was started within {time_limit_s:g} s")
    fds = array.array("i")
    try:
        data, ancillary, _flags, _addr = ack.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
    except OSError as exc:
        raise WorkerError("crash", f"the fork server did not answer ({exc})") from None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    try:
        answer = json.loads(data) if data else {"error": "the fork server ended"}
    except ValueError:
        answer = {"error": "the fork server sent a malformed answer"}
    if not isinstance(answer, dict) or "pid" not in answer or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise WorkerError("crash", str(answer.get("error", "no worker")) if isinstance(answer, dict) else "no worker")
    return int(answer["pid"]), int(fds[0])


def _host_pid(pidfd: int, fallback: int) -> int:
    """The process's pid as this process sees it (``Pid:`` of the pidfd's fdinfo)."""
    try:
        for line in Path(f"/proc/self/fdinfo/{pidfd}").read_text().splitlines():
            if line.startswith("Pid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return fallback


def _inside_paths() -> dict[str, str]:
    """Where the fork server's own files appear inside the sandbox (no host folder name shows)."""
    return {"pkg": f"{policy.INSIDE}/pkg", "tiktoken": f"{policy.INSIDE}/tiktoken"}


class Worker:
    """The process that runs the student's code for one item (or, ``item=None``, that only loads
    the whole submission and reports what fails), forked from a :class:`ForkServer`.

    It holds the reference view of its item (:func:`grader.sandbox.views.view_for`): the reference
    of what the item builds on, never the item's own. A crash, hang or exit ends only this worker;
    the next call forks a fresh one (same view, same load)."""

    def __init__(self, submission: Path, *, device: str = "cpu",
                 memory_gib: float = DEFAULT_MEMORY_GIB, tiktoken_cache: Path | None = None,
                 max_reply_bytes: int = 64 * 1024 * 1024, server: ForkServer | None = None,
                 item: str | None = None, failed: Sequence[str] = ()) -> None:
        self.server = server or ForkServer(submission, device=device, memory_gib=memory_gib,
                                           tiktoken_cache=tiktoken_cache, workers=1)
        self._own_server = server is None
        self.submission = self.server.submission
        self.device = self.server.device
        self.item = item
        self.failed = list(failed)  # modules the loading worker saw fail: stand-ins from the start
        self.view = views.view_for([item] if item else [])
        self.max_reply_bytes = max_reply_bytes
        self.spawned: Spawned | None = None
        self.output = self.server.home / "output.log"
        self.load_report: dict[str, Any] | None = None
        self.restarts = 0
        self.broken_items: dict[str, WorkerError] = {}
        self.isolation = self.server.isolation
        self.load_time_scale = 1.0  # how much slower than idle the machine runs (set by the fixtures)
        self._memory_failures = 0

    @property
    def alive(self) -> bool:
        if self.spawned is None:
            return False
        ready, _, _ = select.select([self.spawned.pidfd], [], [], 0)
        return not ready

    # -- process management -------------------------------------------------------------------
    def start(self, time_limit_s: float = LOAD_TIME_LIMIT_S) -> None:
        """Fork this worker (the server first, if it is not running) and hand it its view."""
        if self.alive:
            return
        self.stop()
        self.spawned = self.server.spawn(time_limit_s * max(self.load_time_scale, 1.0))
        self.output = self.server.output_file(f"{os.getpid()}-{self.server._spawned}")
        protocol.send(self.spawned.to_worker, {"op": "view", "modules": [list(m) for m in self.view.modules]})
        self._receive(time_limit_s * max(self.load_time_scale, 1.0))

    def stop(self) -> None:
        spawned, self.spawned = self.spawned, None
        if spawned is None:
            return
        for sig in (signal.SIGKILL,):
            try:
                signal.pidfd_send_signal(spawned.pidfd, sig)
            except (ProcessLookupError, OSError):
                pass
            if not self.isolation.sandboxed:  # no pid namespace: its group goes with it
                try:
                    os.killpg(spawned.pid, sig)
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        select.select([spawned.pidfd], [], [], 5.0)  # gone: the kernel killed its namespace
        spawned.ack.close()
        for fd in (spawned.to_worker, spawned.from_worker, spawned.pidfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        """Ask the worker to finish (it saves coverage data when measuring), then make sure."""
        if self.spawned is not None and self.alive and os.environ.get(COVERAGE_ENV):
            try:  # only a measured worker has anything to save; others are simply stopped
                protocol.send(self.spawned.to_worker, {"op": "exit"})
                select.select([self.spawned.pidfd], [], [], 10)
            except (OSError, protocol.ProtocolError):
                pass
        self.stop()
        if self._own_server:
            self.server.close()

    # -- calls ----------------------------------------------------------------------------------
    def ping(self, time_limit_s: float) -> bool:
        """Wait until the started worker answers. Never starts a worker and never imports the
        student's code; one that does not answer in time is stopped. True when it answered."""
        if self.spawned is None or not self.alive:
            return False
        try:
            protocol.send(self.spawned.to_worker, {"op": "ping"})
            reply = self._receive(time_limit_s)
        except (WorkerError, OSError, EOFError, protocol.ProtocolError):
            self.stop()
            return False
        return isinstance(reply, dict) and reply.get("value") == "pong"

    def load(self) -> dict[str, Any]:
        """Import the student's modules (again after a restart): every chapter module for the
        loading worker, what its item needs for a grading worker.

        Returns ``{"modules": {module: problem}, "missing": {item id: [names]}}``; the first
        report is kept, since a restarted worker loads the same files.
        """
        scale = max(self.load_time_scale, 1.0)
        limit = MODULE_LOAD_TIME_LIMIT_S * scale
        message: dict[str, Any]
        if self.item is None:
            message = {"op": "load", "module_time_limit_s": limit}
            if self.load_report is not None:  # a restarted worker: do not wait for a hang again
                modules = self.load_report.get("modules", {})
                message["skip"] = sorted(name for name, info in modules.items()
                                         if isinstance(info, dict) and info.get("timeout_s"))
        else:
            message = {"op": "load_for", "modules": modules_for(self.item), "failed": self.failed,
                       "module_time_limit_s": limit}
        report = self.request(message, LOAD_TIME_LIMIT_S * scale)
        if self.load_report is None:
            self.load_report = report if isinstance(report, dict) else {"modules": {}, "missing": {}}
        return self.load_report

    def request(self, message: dict[str, Any], time_limit_s: float) -> Any:
        if self.spawned is None or not self.alive:
            if self.spawned is not None or self.load_report is not None:
                self.restarts += 1
            self.start()
            if message.get("op") not in ("load", "load_for"):
                self.load()
        assert self.spawned is not None
        output_start = self.output.stat().st_size if self.output.exists() else 0
        self._memory_failures = self.server.memory_failures()
        try:
            protocol.send(self.spawned.to_worker, message)
            reply = self._receive(time_limit_s)
        except WorkerError as err:
            err.output_tail = self._output_tail(output_start)
            if err.kind == "timeout" and self.spawned is not None:
                self._locate(err)
            self.stop()
            raise
        except (BrokenPipeError, EOFError, OSError) as exc:
            tail = self._output_tail(output_start)
            detail = self._death_detail(exc)
            # Killed by the tree's memory cap (a child, or tmpfs pages, took the memory).
            kind = "memory" if self.server.hit_memory_limit(self._memory_failures) else "crash"
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

    def _locate(self, err: WorkerError) -> None:
        """Fill in where the student's code was when it ran out of time (see ``stack_dump``)."""
        assert self.spawned is not None
        dump = request_dump(self.spawned.pid, self.output.with_name(self.output.name.replace("output-", "stack-")
                                                                     .replace(".log", ".txt")))
        if self.isolation.sandboxed:  # the worker imported the submission through /llmgrade/pkg
            dump = dump.replace(_inside_paths()["pkg"] + "/", f"{self.server.package_root}/")
        found = stuck_at(dump, self.submission)
        if found is not None:
            err.file, err.line, err.source_line = found.file, found.line, found.source_line
            err.extra.update({"function": found.function, "stuck_in_item": found.item})

    def _receive(self, time_limit_s: float) -> Any:
        assert self.spawned is not None
        source = self.spawned.from_worker
        deadline = time.monotonic() + time_limit_s
        remaining = time_limit_s
        ready, _, _ = select.select([source], [], [], max(remaining, 0.0))
        if not ready:
            raise WorkerError("timeout", f"{time_limit_s:g}", extra={"seconds": time_limit_s})
        header = protocol.read_exact(source, protocol.HEADER.size)
        (size,) = protocol.HEADER.unpack(header)
        if size > self.max_reply_bytes:
            raise WorkerError("too_large", f"{size}", extra={"bytes": size})
        chunks: list[bytes] = []
        got = 0
        while got < size:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([source], [], [], max(remaining, 0.0))
            if not ready:
                raise WorkerError("timeout", f"{time_limit_s:g}", extra={"seconds": time_limit_s})
            chunk = os.read(source, min(size - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        try:
            return protocol.decode(b"".join(chunks))
        except protocol.ProtocolError as exc:
            raise WorkerError("protocol", str(exc)) from None

    def _death_detail(self, exc: BaseException) -> str:
        """How the worker ended, as the process that waited for it says."""
        if self.spawned is None:
            return str(exc)
        ready, _, _ = select.select([self.spawned.ack], [], [], 2.0)
        try:
            answer = json.loads(self.spawned.ack.recv(4096)) if ready else None
        except (OSError, ValueError):
            answer = None
        code = answer.get("exit") if isinstance(answer, dict) else None
        if not isinstance(code, int):
            return str(exc) or "the worker ended"
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


def modules_for(item_id: str) -> list[str]:
    """The student's modules a grading worker imports before its item's first check: the item's
    own and those of everything its reference view holds (swaps then find them all loaded)."""
    from grader.catalog import BY_ID, MODULES

    wanted = {BY_ID[item_id].module, *(BY_ID[dep].module for dep in views.closure([item_id]))}
    return [name for name in MODULES if name in wanted]


class Student:
    """What a hidden check sees: run a recipe against the student's code, get data or a failure.

    ``broken``: items whose code hung, crashed or exited earlier in this run (shared by every
    check). A later call of this item then fails at once; a call of an item that builds on one of
    them runs with it swapped for the reference's instead of waiting on the same hang again, and
    the check is charged to it (``forced_swaps``, grader/runner/scoring.py)."""

    def __init__(self, worker: Worker, default_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 item: str | None = None, broken: dict[str, str] | None = None) -> None:
        self.worker = worker
        self.default_time_limit_s = default_time_limit_s
        self.time_scale = 1.0
        self.item = item
        self.broken: dict[str, str] = broken if broken is not None else {}
        self.pace: Pace | None = None  # limits scaled by the reference's time in this run
        self.swaps_used: list[list[str]] | None = None  # each call's swap list (for blame in scoring)
        self.forced_swaps: list[str] = []  # broken dependencies this check's calls swapped
        # each call of this check and its answer, when kept (a failed check looks for the reference
        # mutant that gives the same answers: grader/checking/mutants/)
        self.transcript: list[Any] | None = None

    @property
    def device(self) -> str:
        """The grading device (resolved once by the trusted side; both sides compute on it)."""
        return self.worker.device

    def time_limit(self, recipe: str, time_limit_s: float | None = None) -> float:
        """The seconds a call of ``recipe`` gets: ``time_limit_s`` (or the default) as the floor,
        scaled by the reference's own time in this run and by ``--time-scale``."""
        floor = time_limit_s or self.default_time_limit_s
        return (self.pace.limit(recipe, floor) if self.pace is not None else floor) * self.time_scale

    def run(self, recipe: str, /, *, swap: Sequence[str] = (), what: str = "",
            time_limit_s: float | None = None, **inputs: Any) -> Any:
        """Run ``recipe`` in the worker. Raises :class:`NotStarted` for a stub, else
        :class:`GradeFailure` with a message that names the student's file and line."""
        limit = self.time_limit(recipe, time_limit_s)
        earlier = self.broken.get(self.item or "")
        if earlier is not None:
            raise GradeFailure("check.skipped_after_" + earlier, what=what or recipe,
                               details={"kind": earlier}) from None
        swap = list(swap)
        if self.item is not None:
            allowed = views.closure([self.item])
            outside = [dep for dep in swap if dep not in allowed]
            if outside:  # a suite that swaps what its item does not declare: the view lacks it
                raise ValueError(f"a check of {self.item} swaps {', '.join(outside)}, which {self.item} "
                                 "neither depends on nor uses (grader/catalog.py)")
            forced = sorted(dep for dep in self.broken if dep in allowed and dep not in swap)
            swap += forced
            self.forced_swaps += [dep for dep in forced if dep not in self.forced_swaps]
        message = {"op": "run", "recipe": recipe, "swap": swap, "inputs": inputs}
        if self.swaps_used is not None:
            self.swaps_used.append(sorted(swap))
        record_dir = os.environ.get(RECORD_ENV)
        if record_dir:
            _record(Path(record_dir), message)
        try:
            value = self.worker.request(message, limit)
            if self.transcript is not None:
                self.transcript.append(Answer(recipe, swap, inputs, value=value))
            return value
        except WorkerError as err:
            reference_s = self.pace.reference_seconds(recipe) if self.pace is not None else None
            if err.kind == "timeout" and reference_s is not None:
                err.extra["reference_s"] = round(reference_s, 3)
            if err.kind in _BREAKER_KINDS and self.item:
                self.broken[self.item] = err.kind
            failure = failure_from_worker_error(err, what or recipe, self.item, self.worker.submission)
            if self.transcript is not None:
                self.transcript.append(Answer(recipe, swap, inputs, error=failure))
            raise failure from None

    def answered(self, recipe: str, value: Any, *, swap: Sequence[str] = (), **inputs: Any) -> None:
        """Record an answer that an earlier check of this item got for the same question (a suite
        that keeps a slow result between checks) as if this check had asked it: evidence for the
        reference mutants like any other answer."""
        if self.transcript is not None:
            self.transcript.append(Answer(recipe, list(swap), inputs, value=value))


@dataclass
class Answer:
    """One call a check made of the student's code, and what came back: a value or the failure."""

    recipe: str
    swap: list[str]
    inputs: dict[str, Any]
    value: Any = None
    error: BaseException | None = None


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
    }
    details = {"kind": err.kind, "type": err.type, "file": err.file, "line": err.line,
               "source_line": err.source_line, "output_tail": err.output_tail, "where": where, **err.extra}
    if err.kind == "timeout" and "reference_s" in err.extra:  # how long the reference took, here and now
        return GradeFailure("check.student_timeout_paced", details=details, what=what, seconds=_seconds(err),
                            reference_s=f"{float(err.extra['reference_s']):.2f}")
    return GradeFailure(ids.get(err.kind, "check.student_raised"), details=details, what=what,
                        type=err.type, message=err.message, where=where, source_line=err.source_line or "?")
