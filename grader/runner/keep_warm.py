"""``llmgrade check`` served warm: a *keeper* holds a standby for the next check of the same item.

A cold check pays for two ``import torch`` (the trusted pytest process and the worker, side by
side) before a single check runs: about 2 s on the 2-core grading machines, the floor of a check
started from nothing. A student checks the same item again and again while fixing it, so after a
cold check in a terminal the CLI starts a keeper (:mod:`grader.runner.keeper`), a detached process
that holds a :class:`grader.runner.watch.Standby` for the items that check graded. The next
``llmgrade check`` of the same item asks the keeper over a Unix socket; the keeper opens the gate
(the student's code is imported then, as saved) and sends back the result, then makes the next
standby. Anything else (another item, another device, language, time scale, or a grader whose
files changed) is a *mismatch*: the keeper ends and the CLI grades cold, as without it.

Where things live: a private folder of this user (``$XDG_RUNTIME_DIR/llmgrade``, else
``<tmp>/llmgrade-<uid>``, then ``/tmp/llmgrade-<uid>``: the first one owned by the user, mode 0700,
and short enough for a socket's path; else no keeper at all), one lease
(``<key>.json``: the keeper's pid and a random token, mode 0600) and one socket (``<key>.sock``)
per workspace. The sandboxed worker sees neither (``/tmp`` is its own tmpfs, ``/run`` is not
mounted). A request without the lease's token gets no answer. The keeper ends after
``LLMGRADE_KEEP_WARM`` minutes without a request (default 10), when its socket is replaced or
removed, when its workspace is gone, or when asked to stop.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader.errors import SetupError
from grader.messages import current_lang
from grader.results import GradeRun, SchemaError

ENV_VAR = "LLMGRADE_KEEP_WARM"  # minutes a keeper waits for the next check; 0 turns keepers off
DEFAULT_MINUTES = 10.0
CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 1200.0  # a keeper that neither answers nor closes the socket (its checks keep their limits)
MAX_REPLY_BYTES = 64 * 1024**2
GRADER_ROOT = Path(__file__).resolve().parents[2]
# The environment a grading run reads (the grader's own settings, the language, torch and its
# thread pools, where modules and the tokenizer come from); a keeper serves only the same values.
# sun_path holds 108 bytes on Linux, 104 on macOS; a socket is <folder>/<20 hex>.sock, bound first as
# <that>.<pid>, so the folder may take 100 - 34 bytes.
MAX_FOLDER_BYTES = 66
_SETTINGS_PREFIXES = ("LLMGRADE_", "PYTORCH_", "TORCH_", "CUDA_", "HIP_", "ROCR_", "OMP_", "MKL_", "OPENBLAS_", "KMP_")
_SETTINGS_NAMES = ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "PYTHONPATH", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")


@dataclass(frozen=True)
class Request:
    """What a check asks for; a keeper serves it only when every field equals its own."""

    submission: str
    wanted: tuple[str, ...]
    device: str
    time_scale: float
    lang: str
    environment: tuple[tuple[str, str], ...]
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["wanted"] = list(self.wanted)
        data["environment"] = [list(pair) for pair in self.environment]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        return cls(submission=str(data["submission"]), wanted=tuple(str(i) for i in data["wanted"]),
                   device=str(data["device"]), time_scale=float(data["time_scale"]), lang=str(data["lang"]),
                   environment=tuple((str(k), str(v)) for k, v in data["environment"]),
                   fingerprint=str(data["fingerprint"]))


def request_for(folder: Path, wanted: Sequence[str], device: str | None, time_scale: float,
                environ: Mapping[str, str] | None = None) -> Request:
    environ = os.environ if environ is None else environ
    return Request(submission=str(folder), wanted=tuple(wanted), device=device or "auto",
                   time_scale=float(time_scale), lang=current_lang(),
                   environment=grading_environment(environ),
                   fingerprint=code_fingerprint())


def grading_environment(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables of ``environ`` that may change a grade or its messages (not ``LLMGRADE_KEEP_WARM``)."""
    return tuple(sorted((k, v) for k, v in environ.items() if k != ENV_VAR
                        and (k in _SETTINGS_NAMES or k.startswith(_SETTINGS_PREFIXES))))


def minutes(option: bool | None, environ: Mapping[str, str], interactive: bool) -> float | None:
    """How long a keeper started after this check waits for the next one: None when keepers are
    off (none is asked or started), 0 when one may be asked but none is started, else minutes.

    ``--no-keep-warm`` (``option`` False) turns them off; ``--keep-warm`` starts one. Otherwise
    ``LLMGRADE_KEEP_WARM`` (minutes; 0 is off), else one is started only in an interactive
    terminal outside CI (a script or a test run leaves no process behind)."""
    if option is False:
        return None
    value = environ.get(ENV_VAR, "").strip()
    chosen: float | None = None
    if value:
        try:
            chosen = float(value)
        except ValueError:
            raise SetupError("keep_warm.bad_env", value=value) from None
        if not chosen >= 0 or chosen == float("inf"):  # NaN, negative or endless
            raise SetupError("keep_warm.bad_env", value=value)
    if option:
        return chosen if chosen else DEFAULT_MINUTES
    if chosen is not None:
        return chosen or None
    return DEFAULT_MINUTES if interactive and not environ.get("CI") else 0.0


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """This user's private folder for leases and sockets; None where there is no safe one."""
    environ = os.environ if environ is None else environ
    if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    candidates = []
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        candidates.append(Path(xdg) / "llmgrade")
    candidates += [Path(tempfile.gettempdir()) / f"llmgrade-{os.getuid()}", Path("/tmp") / f"llmgrade-{os.getuid()}"]
    for path in candidates:
        if len(os.fsencode(path)) > MAX_FOLDER_BYTES:  # a socket's path must fit in sun_path
            continue
        try:
            path.mkdir(mode=0o700, exist_ok=True)
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return path
    return None


@dataclass(frozen=True)
class Place:
    """Where the keeper of one workspace keeps its lease and its socket."""

    lease: Path
    socket: Path
    log: Path

    @classmethod
    def of(cls, folder: Path, environ: Mapping[str, str] | None = None) -> Place | None:
        base = runtime_dir(environ)
        if base is None:
            return None
        key = hashlib.sha256(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:20]
        return cls(base / f"{key}.json", base / f"{key}.sock", base / f"{key}.log")

    def read_token(self) -> str | None:
        try:
            info = self.lease.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                return None
            token = json.loads(self.lease.read_text("utf-8")).get("token")
        except (OSError, ValueError, AttributeError):
            return None
        return token if isinstance(token, str) else None

    def write_lease(self, token: str) -> None:
        tmp = self.lease.with_name(f"{self.lease.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"pid": os.getpid(), "token": token}, out)
        tmp.replace(self.lease)


def code_fingerprint() -> str:
    """Changes whenever the grader, its suites, the reference, Python or torch change on disk."""
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}".encode())
    files: list[Path] = []
    for top in ("grader", "reference", "reports"):
        files += [p for p in (GRADER_ROOT / top).rglob("*")
                  if p.suffix in (".py", ".json", ".ini") and "__pycache__" not in p.parts]
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin is not None:
        files.append(Path(spec.origin).with_name("version.py"))
    for path in sorted(files):
        try:
            info = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{info.st_mtime_ns}\0{info.st_size}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def ask(place: Place, request: Request) -> GradeRun | None:
    """The keeper's result for ``request``; None when there is no keeper, it does not match, or it fails
    (the caller then grades cold: a keeper can make a check faster, never different)."""
    token = place.read_token()
    if token is None:
        return None
    reply = _exchange(place, {"token": token, "op": "check", "request": request.to_dict()}, REPLY_TIMEOUT_S)
    if reply is None or reply.get("status") != "ok":
        return None
    try:
        run = GradeRun.from_dict(reply.get("run"))  # type: ignore[arg-type]
    except SchemaError:
        return None
    return run if sorted(item.id for item in run.items) == sorted(request.wanted) else None


def stop(place: Place) -> bool:
    """Ask the workspace's keeper to end; True when one answered."""
    token = place.read_token()
    if token is None:
        return False
    reply = _exchange(place, {"token": token, "op": "stop"}, CONNECT_TIMEOUT_S * 5)
    return reply is not None and reply.get("status") == "stopping"


def _exchange(place: Place, message: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT_S)
            conn.connect(str(place.socket))
            conn.sendall(json.dumps(message).encode("utf-8") + b"\n")
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(timeout_s)
            data = read_all(conn, MAX_REPLY_BYTES)
    except OSError:
        return None
    try:
        reply = json.loads(data.decode("utf-8")) if data else None
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def read_all(conn: socket.socket, limit: int) -> bytes:
    """Everything until the peer closes its side (at most ``limit`` bytes; more is an error)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise OSError("reply too large")
        chunks.append(chunk)


def start_keeper(place: Place, request: Request, graded: Sequence[str], minutes_: float) -> None:
    """Start a detached keeper that holds a standby of ``graded`` (``request.wanted`` and the items
    the last check also needed) for the next check that matches ``request``."""
    spec = {"request": request.to_dict(), "graded": list(graded), "minutes": minutes_,
            "token": secrets.token_hex(16)}
    log_fd = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(log_fd, "wb") as log:  # the token goes over stdin: a command line is public
        keeper = subprocess.Popen([sys.executable, "-m", "grader.runner.keeper"], stdin=subprocess.PIPE,
                                  stdout=log, stderr=log, start_new_session=True, close_fds=True,
                                  cwd=str(GRADER_ROOT))
    assert keeper.stdin is not None
    try:
        with keeper.stdin:
            keeper.stdin.write(json.dumps(spec).encode("utf-8"))
    except OSError:  # it could not start (its log says why): the next check is cold, nothing else changes
        pass
