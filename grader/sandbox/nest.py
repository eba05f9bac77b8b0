"""The walls around one grading worker, raised inside the fork server's sandbox (worker side).

The fork server (:mod:`grader.sandbox.forkserver`) runs inside ``bwrap`` with its own user, mount,
pid, network and ipc namespaces and the capabilities of that user namespace (it is the worker's
parent, never a place where student code runs). For each item it forks a process that calls
:func:`unshare_for_worker` (new mount, pid, network, ipc and uts namespaces) and forks the worker,
which becomes pid 1 of its own pid namespace and calls :func:`enter` before any student code:

- a fresh ``/tmp`` and ``/dev/shm`` (tmpfs, capped) and a ``/proc`` of its own pid namespace: it
  sees no sibling worker, no file a sibling wrote, and not the fork server;
- its own loopback (up) and nothing else: the DDP checks use ``127.0.0.1``; no sibling's sockets,
  abstract ones included, are reachable;
- every capability dropped (bounding, effective, permitted, inheritable, ambient), ``no_new_privs``,
  not dumpable, and the seccomp filter of :mod:`grader.sandbox.seccomp` (no ``mount``, ``unshare``,
  ``ptrace`` ...), so none of this can be undone.

Only ctypes and the standard library: this module is imported in the sandbox.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
WORKER_NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 0x1, 0x2, 0x4, 0x8, 0x20, 0x1000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_CAP_AMBIENT = 38, 22, 47
PR_CAP_AMBIENT_CLEAR_ALL, SECCOMP_MODE_FILTER = 4, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class NestError(OSError):
    """A wall could not be raised: the worker must not run."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise NestError(code, f"{what}: {os.strerror(code)}")
    return result


def unshare_for_worker() -> None:
    """New mount, uts, ipc, network and pid namespaces (the pid one for the next child)."""
    _check(_libc().unshare(WORKER_NAMESPACES), "unshare")


def enter(tmp_bytes: int, shm_bytes: int, home: str, seccomp_filter: bytes | None,
          keep: Sequence[tuple[str, bool]] = ()) -> None:
    """Raise every wall of this worker (pid 1 of its own namespaces), then lock them in.

    ``keep``: paths the fork server's sandbox shows under ``/tmp`` (the submission, the tokenizer
    cache) and whether they are writable: they stay where they are on top of the fresh ``/tmp``."""
    libc = _libc()
    _check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    held = [(path, os.open(path, os.O_PATH), writable) for path, writable in keep
            if path.startswith(("/tmp/", "/dev/shm/")) and os.path.exists(path)]
    flags = MS_NOSUID | MS_NODEV
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", flags, f"size={tmp_bytes},mode=1777".encode()), "mount /tmp")
    _check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", flags, f"size={shm_bytes},mode=1777".encode()),
           "mount /dev/shm")
    for path, fd, writable in held:
        _bind_again(libc, fd, path, writable)
    _freeze_parents(libc, [path for path, _, _ in held])
    _check(libc.mount(b"proc", b"/proc", b"proc", flags | MS_NOEXEC, None), "mount /proc")
    loopback_up()
    os.makedirs(home, exist_ok=True)
    os.chdir(home)
    drop_capabilities(libc)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")
    if seccomp_filter is not None:
        install_seccomp(libc, seccomp_filter)


def _bind_again(libc: ctypes.CDLL, fd: int, path: str, writable: bool) -> None:
    """Mount what ``fd`` (opened before the fresh tmpfs hid it) refers to at ``path`` again."""
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "ab").close()
    target = path.encode()
    _check(libc.mount(f"/proc/self/fd/{fd}".encode(), target, None, MS_BIND | MS_REC, None), f"bind {path}")
    if not writable:
        _check(libc.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
               f"remount {path} read-only")
    os.close(fd)


def _freeze_parents(libc: ctypes.CDLL, paths: Sequence[str]) -> None:
    """Make read-only the folders made on the fresh tmpfs to hold ``paths`` (``/tmp/a`` for
    ``/tmp/a/b/submission``). They are the worker's own, so nothing outside could change, but they
    carry the trusted side's names (``llmgrade-stage-...``): a worker that can write there looks, to
    itself and to anyone reading what it says, as if it wrote into the trusted run folder. The kept
    paths are mounts below them and keep their own flags."""
    def first_folder(path: str) -> str:
        root = "/dev/shm/" if path.startswith("/dev/shm/") else "/tmp/"
        return root + path[len(root):].split("/")[0]

    for folder in sorted({first_folder(path) for path in paths} - set(paths)):
        target = folder.encode()
        _check(libc.mount(target, target, None, MS_BIND | MS_REC, None), f"bind {folder}")
        _check(libc.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
               f"remount {folder} read-only")


def loopback_up() -> None:
    """Bring ``lo`` up in this network namespace (it starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities(libc: ctypes.CDLL | None = None) -> None:
    """Empty the bounding set first (it needs CAP_SETPCAP), then every other set."""
    libc = libc or _libc()
    last = _last_capability()
    for cap in range(last + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() != errno.EINVAL:
            _check(-1, f"prctl(CAPBSET_DROP, {cap})")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # EINVAL on old kernels: nothing to clear
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 63


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(libc: ctypes.CDLL, program: bytes) -> None:
    """Load a classic BPF seccomp filter (``struct sock_filter`` entries); ``no_new_privs`` is set."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "prctl(SECCOMP)")


def set_parent_death_signal(sig: int = 9) -> None:
    _check(_libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PDEATHSIG)")
