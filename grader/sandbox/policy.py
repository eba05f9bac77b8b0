"""The isolation policy for the workers: what they may see, what they may do, how much they may take.

On Linux with ``bwrap`` (Debian/Ubuntu package ``bubblewrap``) and unprivileged user namespaces,
the fork server of a grading run (:mod:`grader.sandbox.forkserver`) runs in its own user, pid,
network, ipc, uts and mount namespaces. It sees read-only only the Python install, the venv (less
any package of the book's answers, such as ``llms_from_scratch``), the few files of ``grader/`` the
workers run (:data:`WORKER_FILES`: the fork server, the worker, the wire, the recipes, the
catalog; not ``reference/``, not the checks, not the suites), the tokenizer cache and the
submission (through ``/llmgrade/pkg``, so no host folder name of the run shows inside). Its
network namespace has only ``lo``.

Each worker it forks raises walls of its own before any student code runs
(:mod:`grader.sandbox.nest`): new mount, pid, network, ipc and uts namespaces (its own ``/tmp``,
``/dev/shm``, ``/proc`` and loopback: the DDP checks talk to themselves on 127.0.0.1), every
capability dropped and the seccomp filter (:mod:`grader.sandbox.seccomp`). The whole tree is capped
by a memory and a pids cgroup where one can be made (:mod:`grader.sandbox.cgroup`), and dies with
its pid namespace.

Where the sandbox is unavailable (macOS, no user namespaces, namespaces that cannot be nested,
``LLMGRADE_SANDBOX=off``) the workers run with rlimits only; :func:`probe` says why, and the
results record it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

GRADER_ROOT = Path(__file__).resolve().parents[2]
OFF_ENV = "LLMGRADE_SANDBOX"  # "off": run without the sandbox (to see the fallback), anything else: auto
MiB = 1024 * 1024
TMP_BYTES = 512 * MiB
SHM_BYTES = 256 * MiB
SANDBOX_HOME = "/tmp/home"
# The only files of the grader's tree the workers see: what the fork server and the workers import
# (tests/grader/test_layout.py checks the list against what they really import). Everything else
# (reference/, solutions/, tests/, the checks and their known mistakes, the hidden suites) does not
# exist inside.
WORKER_FILES = (
    "grader/__init__.py", "grader/catalog.py", "grader/catalog_index.json", "grader/errors.py",
    "grader/messages.py", "grader/locales",
    "grader/sandbox/__init__.py", "grader/sandbox/forkserver.py", "grader/sandbox/child.py",
    "grader/sandbox/nest.py", "grader/sandbox/seccomp.py", "grader/sandbox/protocol.py",
    "grader/recipes",
)
# Installed packages that hold the book's answers: hidden in the sandbox (an empty folder).
ANSWER_PACKAGES = ("llms_from_scratch",)
# The grader's own code and the book's answers: none of it is a worker's to import (the worker holds
# only its item's reference view, grader/sandbox/views.py); a submission naming it gets a note.
GRADER_PACKAGES = ("reference", "solutions", "grader", *ANSWER_PACKAGES)


@dataclass(frozen=True)
class Isolation:
    """How a worker is isolated: ``"bwrap"`` (the OS sandbox) or ``"none"`` (rlimits only)."""

    kind: str
    reason: str = ""
    seccomp: bool = False
    cgroup: bool = False

    @property
    def sandboxed(self) -> bool:
        return self.kind == "bwrap"

    def describe(self) -> str:
        """A short plain-data label for the results and the gradebook."""
        if not self.sandboxed:
            return "none"
        parts = ["bwrap"]
        if self.seccomp:
            parts.append("seccomp")
        if self.cgroup:
            parts.append("cgroup")
        return "+".join(parts)


@functools.lru_cache(maxsize=1)
def probe() -> Isolation:
    """Can a worker be sandboxed here? Runs ``bwrap ... true`` once per process (a few ms)."""
    from grader.sandbox import cgroup, seccomp

    if os.environ.get(OFF_ENV, "").lower() in ("off", "0", "no", "none"):
        return Isolation("none", f"{OFF_ENV}=off is set")
    if not sys.platform.startswith("linux"):
        return Isolation("none", f"bubblewrap needs Linux (this is {sys.platform})")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation("none", "bwrap is not installed (Debian/Ubuntu package: bubblewrap)")
    # A worker's own walls, raised inside the sandbox as the fork server raises them (nest.py).
    nested = ("import os, sys; sys.path.insert(0, sys.argv[1]); from grader.sandbox import nest\n"
              "nest.unshare_for_worker()\npid = os.fork()\n"
              "if pid == 0:\n    nest.enter(1 << 20, 1 << 20, '/tmp/home', None)\n    os._exit(0)\n"
              "os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    try:
        done = subprocess.run([bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc",
                               "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
                               sys.executable, "-I", "-c", nested, str(GRADER_ROOT)],
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Isolation("none", f"bwrap could not be started: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return Isolation("none", "bwrap cannot create (and nest) namespaces here"
                         + (f" ({detail[-1]})" if detail else ""))
    return Isolation("bwrap", seccomp=seccomp.supported(), cgroup=cgroup.available())


def _namespace_args() -> list[str]:
    # The fork server keeps the capabilities of its own user namespace (and nested user namespaces
    # stay possible for it): each worker needs them to raise its own walls, then drops them all
    # and seals them with seccomp (nest.py). No student code ever runs with them.
    return ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]


INSIDE = "/llmgrade"  # where the worker's own files appear, so no host folder name shows inside


@dataclass
class Bind:
    host: Path
    inside: str
    writable: bool = False


@dataclass
class Mounts:
    """What one worker sees besides the system, Python and the grader's code."""

    submission: Path
    binds: list[Bind] = field(default_factory=list)
    devices: list[Path] = field(default_factory=list)


def python_paths() -> list[Path]:
    """The Python install and the venv (and any extra site folders) the worker imports from."""
    found = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(sys.executable).resolve().parent.parent}
    for entry in sys.path:
        path = Path(entry) if entry else None
        if path is not None and path.is_dir() and "site-packages" in path.parts:
            found.add(path.resolve())
    return sorted(_outermost(found))


def _outermost(paths: set[Path]) -> set[Path]:
    return {p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths)}


def bwrap_args(mounts: Mounts, *, workdir: str = SANDBOX_HOME, gpu: bool = False) -> list[str]:
    """The ``bwrap`` command line (without the program to run) for a run's fork server."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, *_namespace_args()]
    for system in ("/usr", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf",
                   "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl"):
        if os.path.exists(system):
            args += ["--ro-bind", system, system]
    for top in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
             "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    for path in _outermost({p.resolve() for p in python_paths() if p.exists()}):
        args += ["--ro-bind", str(path), str(path)]
    for hidden in answer_package_paths():
        args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
    for part in WORKER_FILES:
        path = GRADER_ROOT / part
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    submission = mounts.submission.resolve()
    args += ["--ro-bind", str(submission), str(submission)]
    for bind in mounts.binds:
        args += ["--bind" if bind.writable else "--ro-bind", str(bind.host.resolve()), bind.inside]
    if gpu:
        args += _gpu_args(mounts.devices)
    args += ["--dir", workdir, "--chdir", workdir]
    return [*args, "--"]


def answer_package_paths() -> list[Path]:
    """Where the installed packages of :data:`ANSWER_PACKAGES` are (found without importing them)."""
    import importlib.util

    found: list[Path] = []
    for name in ANSWER_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            if Path(location).is_dir():
                found.append(Path(location).resolve())
    return found


def _gpu_args(devices: Sequence[Path]) -> list[str]:
    """NVIDIA device nodes and the driver's /sys and /proc entries, for a CUDA worker."""
    args: list[str] = []
    nodes = list(devices) or sorted(Path("/dev").glob("nvidia*"))
    for node in nodes:
        if node.exists() and not node.is_dir():
            args += ["--dev-bind", str(node), str(node)]
    for info in ("/sys", "/proc/driver/nvidia"):
        if os.path.exists(info):
            args += ["--ro-bind", info, info]
    return args
