"""The isolation policy for the worker: what it may see, what it may do, how much it may take.

On Linux with ``bwrap`` (Debian/Ubuntu package ``bubblewrap``) and unprivileged user namespaces,
the worker runs in its own user, pid, network, ipc, uts and mount namespaces, with every
capability dropped. It sees read-only only the Python install, the venv, the grader's ``grader/``
and ``reference/`` folders, the tokenizer cache and the submission; ``/tmp`` and ``/dev/shm`` are
size-limited tmpfs mounts of its own; its only writable host files are its output log and stack
dump, which it sees under ``/llmgrade`` (no host folder name of the run shows inside). Its network
namespace has only ``lo`` (the DDP checks talk to themselves on 127.0.0.1; nothing outside can be
reached or reached from). A seccomp filter (:mod:`grader.sandbox.seccomp`) is the second wall.
The whole process tree is capped by a memory and a pids cgroup where one can be made
(:mod:`grader.sandbox.cgroup`), and dies with its pid namespace.

Where the sandbox is unavailable (macOS, no user namespaces, ``LLMGRADE_SANDBOX=off``) the worker
runs as before, with rlimits only; :func:`probe` says why, and the results record it.
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
# The worker reads these from the grader's tree; everything else there (solutions/, tests/, the
# hidden suites) stays out of its sight.
_GRADER_PARTS = ("grader", "reference")
_HIDDEN_PARTS = ("grader/suites",)


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
    try:
        done = subprocess.run([bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc",
                               "--dev", "/dev", "true"],
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Isolation("none", f"bwrap could not be started: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return Isolation("none", "bwrap cannot create namespaces here"
                         + (f" ({detail[-1]})" if detail else ""))
    return Isolation("bwrap", seccomp=seccomp.supported(), cgroup=cgroup.available())


def _namespace_args() -> list[str]:
    return ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]


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


def bwrap_args(mounts: Mounts, *, workdir: str = SANDBOX_HOME, seccomp_fd: int | None = None,
               gpu: bool = False) -> list[str]:
    """The ``bwrap`` command line (without the program to run) for one worker."""
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
    read_only = [*python_paths(), *(GRADER_ROOT / part for part in _GRADER_PARTS)]
    for path in _outermost({p.resolve() for p in read_only if p.exists()}):
        args += ["--ro-bind", str(path), str(path)]
    for hidden in _HIDDEN_PARTS:
        if (GRADER_ROOT / hidden).is_dir():
            args += ["--tmpfs", str(GRADER_ROOT / hidden), "--remount-ro", str(GRADER_ROOT / hidden)]
    submission = mounts.submission.resolve()
    args += ["--ro-bind", str(submission), str(submission)]
    for bind in mounts.binds:
        args += ["--bind" if bind.writable else "--ro-bind", str(bind.host.resolve()), bind.inside]
    if gpu:
        args += _gpu_args(mounts.devices)
    args += ["--dir", workdir, "--chdir", workdir, "--disable-userns"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return [*args, "--"]


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


def sandboxed_pid(outer: int, depth: int = 4) -> int | None:
    """The host pid of the worker inside the sandbox started as ``outer`` (``bwrap``): the
    descendant that is pid 2 of the new pid namespace (pid 1 is bwrap's reaper)."""
    level = [outer]
    for _ in range(depth):
        children: list[int] = []
        for pid in level:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if pid != outer and nspid and nspid[-1] == "2":
                return pid
        level = children
    return None
