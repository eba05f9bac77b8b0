"""The worker's seccomp filter: the second wall inside the bubblewrap sandbox.

A classic BPF program, assembled here (no dependency: it is some forty instructions, and a binding
such as ``pyseccomp`` or Debian's ``python3-seccomp`` would not be importable from every venv),
handed to ``bwrap --seccomp FD``, which installs it just before the worker starts.

It denies (``EPERM``) what a student's code never needs and an attacker would: ``ptrace``,
``process_vm_readv/writev``, ``pidfd_getfd``, ``kcmp``, kernel keyrings, ``bpf``,
``perf_event_open``, ``userfaultfd``, ``io_uring``, mounts, new namespaces (``unshare``,
``setns``, ``clone`` with namespace flags; ``clone3`` answers ``ENOSYS`` so that the C library
falls back to ``clone``), kernel modules, ``open_by_handle_at``. Sockets are limited to
``AF_UNIX``, ``AF_INET``, ``AF_INET6`` and ``AF_NETLINK`` (others: ``EAFNOSUPPORT``): the worker's
network namespace holds only its own loopback, which the DDP checks (gloo on 127.0.0.1) need, so
an inet socket reaches nothing outside it. A call from the wrong architecture kills the process.
"""

from __future__ import annotations

import os
import platform
import struct

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_KILL_PROCESS = 0x80000000
_EPERM, _ENOSYS, _EAFNOSUPPORT = 1, 38, 97
_X32_BIT = 0x40000000
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 \
    | 0x40000000  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (NEWTIME: clone3 only)
_SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK

_DENIED_NAMES = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "keyctl",
                 "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
                 "io_uring_enter", "io_uring_register", "mount", "umount2", "pivot_root", "unshare",
                 "setns", "init_module", "finit_module", "delete_module", "kexec_load",
                 "open_by_handle_at", "fsopen", "fsmount", "move_mount", "open_tree")

# arch: (AUDIT_ARCH value, x32 bit check, syscall numbers)
_ARCHES: dict[str, tuple[int, bool, dict[str, int]]] = {
    "x86_64": (0xC000003E, True, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
        "kcmp": 312, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272,
        "setns": 308, "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "open_by_handle_at": 304, "fsopen": 430, "fsmount": 432, "move_mount": 429, "open_tree": 428,
        "socket": 41, "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, False, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
        "kcmp": 272, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "mount": 40, "umount2": 39, "pivot_root": 41, "unshare": 97,
        "setns": 268, "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "open_by_handle_at": 265, "fsopen": 430, "fsmount": 432, "move_mount": 429, "open_tree": 428,
        "socket": 198, "clone": 220, "clone3": 435}),
}
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def _arch() -> str:
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


def supported() -> bool:
    return _arch() in _ARCHES


class _Program:
    """A tiny assembler: conditional jumps name labels, resolved when the program is built."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def emit(self, op: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.code.append((op, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def build(self) -> bytes:
        out = bytearray()
        for index, (op, jt, jf, k) in enumerate(self.code):
            out += struct.pack("=HBBI", op, self._offset(jt, index), self._offset(jf, index), k)
        return bytes(out)

    def _offset(self, target: str | int, index: int) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - index - 1
        if not 0 <= offset <= 255:
            raise ValueError(f"seccomp jump to {target} out of range")
        return offset


def build_filter(arch: str | None = None) -> bytes:
    """The filter for ``arch`` (default: this machine's) as raw ``struct sock_filter`` entries."""
    audit_arch, x32, numbers = _ARCHES[arch or _arch()]
    p = _Program()
    p.emit(_LD_W_ABS, 4)  # seccomp_data.arch
    p.emit(_JEQ_K, audit_arch, 0, "kill")
    p.emit(_LD_W_ABS, 0)  # seccomp_data.nr
    if x32:
        p.emit(_JGE_K, _X32_BIT, "deny", 0)
    for name in _DENIED_NAMES:
        p.emit(_JEQ_K, numbers[name], "deny", 0)
    p.emit(_JEQ_K, numbers["socket"], "socket", 0)
    p.emit(_JEQ_K, numbers["clone"], "clone", 0)
    p.emit(_JEQ_K, numbers["clone3"], "enosys", 0)
    p.emit(_RET_K, _ALLOW)
    p.label("socket")
    p.emit(_LD_W_ABS, 16)  # args[0], low 32 bits: the address family
    for family in _SOCKET_FAMILIES:
        p.emit(_JEQ_K, family, "allow", 0)
    p.emit(_RET_K, _ERRNO | _EAFNOSUPPORT)
    p.label("clone")
    p.emit(_LD_W_ABS, 16)  # args[0]: the clone flags
    p.emit(_JSET_K, _NAMESPACE_FLAGS, "deny", "allow")
    p.label("allow")
    p.emit(_RET_K, _ALLOW)
    p.label("deny")
    p.emit(_RET_K, _ERRNO | _EPERM)
    p.label("enosys")
    p.emit(_RET_K, _ERRNO | _ENOSYS)
    p.label("kill")
    p.emit(_RET_K, _KILL_PROCESS)
    return p.build()


def filter_fd() -> int | None:
    """A readable file descriptor holding the filter (for ``bwrap --seccomp``), or ``None``."""
    if not supported():
        return None
    data = build_filter()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("llmgrade-seccomp", 0)
    else:  # pragma: no cover - Linux always has memfd_create since 3.17
        return None
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
