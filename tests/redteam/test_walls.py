"""Each wall of the sandbox on its own, attacked directly (seconds, no grading run).

A small Python program runs inside exactly the ``bwrap`` command line a worker gets
(:func:`grader.sandbox.policy.bwrap_args`, with the seccomp filter and, where one can be made, the
cgroup) and reports what it managed to do; every attempt must fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.sandbox import policy, seccomp
from grader.sandbox.cgroup import TreeGroup, available

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def run_inside(tmp_path: Path, code: str, group: TreeGroup | None = None,
               timeout: float = 120) -> dict[str, object]:
    """Run ``code`` (which prints one JSON line last) in the worker's sandbox; return that JSON."""
    submission = tmp_path / "submission"
    submission.mkdir(exist_ok=True)
    output = tmp_path / "output.log"
    output.touch()
    fd = seccomp.filter_fd()
    assert fd is not None, "the seccomp filter should be built on this machine"
    try:
        mounts = policy.Mounts(submission, [policy.Bind(output, f"{policy.INSIDE}/output.log", writable=True)])
        cmd = [*policy.bwrap_args(mounts, seccomp_fd=fd),
               sys.executable, "-I", "-c", textwrap.dedent(code)]
        if group is not None:
            cmd = group.wrap(cmd)
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, pass_fds=(fd,), check=False)
    finally:
        os.close(fd)
    lines = done.stdout.decode().strip().splitlines()
    assert lines, f"no report from inside the sandbox: {done.stderr.decode()[-2000:]}"
    report: dict[str, object] = json.loads(lines[-1])
    return report


def test_the_sandbox_sees_no_process_no_secret_folder_and_cannot_write_the_install(tmp_path: Path) -> None:
    secret = tmp_path / "gradebook.sqlite"
    secret.write_text("grades")
    run_folder = Path(os.environ.get("TMPDIR", "/tmp"))
    report = run_inside(tmp_path, f"""
        import json, os, sys, glob
        got = {{}}
        got["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        got["secret"] = os.path.exists({str(secret)!r})
        got["tests"] = os.path.exists({str(ROOT / "tests")!r})
        got["solutions"] = os.path.exists({str(ROOT / "solutions")!r})
        got["suites"] = os.listdir({str(ROOT / "grader" / "suites")!r})
        got["runs"] = glob.glob("/tmp/llmgrade-*") + glob.glob({str(run_folder / "llmgrade-*")!r})
        got["written"] = []
        for target in [{str(ROOT / "grader" / "recipes" / "zz_redteam.py")!r},
                       os.path.join(sys.prefix, "zz_redteam.pth"),
                       os.path.join(os.path.dirname(os.__file__), "zz_redteam.py"),
                       {str(tmp_path / "submission" / "zz.py")!r}]:
            try:
                open(target, "w").close()
                got["written"].append(target)
            except OSError:
                pass
        print(json.dumps(got))
    """)
    assert report["pids"] == [1, 2], "only the sandbox's own init and this process are visible"
    assert report["secret"] is False and report["tests"] is False and report["solutions"] is False
    assert report["suites"] == [] and report["runs"] == []
    assert report["written"] == []


def test_seccomp_denies_ptrace_memory_reads_and_foreign_sockets_but_loopback_works(tmp_path: Path) -> None:
    report = run_inside(tmp_path, """
        import ctypes, json, os, socket
        libc = ctypes.CDLL(None, use_errno=True)
        got = {}
        got["ptrace"] = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH to the sandbox's init
        got["ptrace_errno"] = ctypes.get_errno()
        buf = ctypes.create_string_buffer(8)
        class IoVec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 8)
        remote = IoVec(ctypes.cast(buf, ctypes.c_void_p), 8)
        got["vm_read"] = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        got["vm_errno"] = ctypes.get_errno()
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            got["packet"] = "opened"
        except OSError as exc:
            got["packet"] = exc.errno
        got["unshare"] = libc.unshare(0x10000000)  # CLONE_NEWUSER
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname(), timeout=5)
        conn, _ = server.accept()
        client.sendall(b"ok")
        got["loopback"] = conn.recv(2).decode()
        got["interfaces"] = sorted(name for _, name in socket.if_nameindex())
        print(json.dumps(got))
    """)
    assert report["ptrace"] == -1 and report["ptrace_errno"] == 1  # EPERM
    assert report["vm_read"] == -1 and report["vm_errno"] == 1
    assert report["packet"] == 97  # EAFNOSUPPORT
    assert report["unshare"] == -1
    assert report["loopback"] == "ok"
    assert report["interfaces"] == ["lo"]


def test_a_listener_outside_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        report = run_inside(tmp_path, f"""
            import json, socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                print(json.dumps({{"connected": True}}))
            except OSError as exc:
                print(json.dumps({{"connected": False, "errno": exc.errno}}))
        """)
        with pytest.raises(TimeoutError):
            server.accept()
    assert report["connected"] is False


def test_tmpfs_fills_stop_at_their_size(tmp_path: Path) -> None:
    report = run_inside(tmp_path, """
        import json, os
        got = {}
        for folder in ("/tmp", "/dev/shm"):
            written = 0
            block = b"x" * (1 << 20)
            try:
                with open(os.path.join(folder, "fill"), "wb") as fh:
                    for _ in range(4096):
                        fh.write(block)
                        written += 1
                    fh.flush()
            except OSError as exc:
                got[folder + "_errno"] = exc.errno
            got[folder] = written
            os.remove(os.path.join(folder, "fill"))
        print(json.dumps(got))
    """)
    assert report["/tmp"] <= policy.TMP_BYTES // MiB
    assert report["/dev/shm"] <= policy.SHM_BYTES // MiB
    assert report["/tmp_errno"] == 28 and report["/dev/shm_errno"] == 28  # ENOSPC


@pytest.mark.skipif(not available(), reason="no cgroup can be made here (the worker has rlimits only)")
def test_the_whole_tree_is_capped_in_memory_and_processes(tmp_path: Path) -> None:
    group = TreeGroup.create(memory_bytes=400 * MiB, pids_max=64)
    assert group is not None
    try:
        report = run_inside(tmp_path, """
            import json, os, time
            got = {"children_killed": 0, "forks": 0, "fork_error": None}
            children = []
            for _ in range(4):  # each child takes 150 MiB: fine alone, too much together
                pid = os.fork()
                if pid == 0:
                    block = bytearray(150 * 1024 * 1024)
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
            time.sleep(3)
            for pid in children:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done and os.WIFSIGNALED(status):
                    got["children_killed"] += 1
                else:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
            try:
                for _ in range(200):
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    got["forks"] += 1
            except OSError as exc:
                got["fork_error"] = exc.errno
            print(json.dumps(got), flush=True)
            os._exit(0)
        """, group=group)
        assert group.hit_memory_limit()
    finally:
        group.remove()
    assert report["children_killed"] >= 1
    assert report["forks"] < 64 and report["fork_error"] == 11  # EAGAIN from pids.max


@pytest.mark.skipif(not available(), reason="no cgroup can be made here (the worker has rlimits only)")
def test_stale_groups_of_dead_graders_are_swept(tmp_path: Path) -> None:
    from grader.sandbox import cgroup

    parents = cgroup._parents()
    assert parents is not None
    dead = 2**22 + 12345  # above pid_max's default: no such process
    stale = [parent / f"llmgrade-run-test{os.getpid()}-{dead}-1-abcdef" for parent in set(parents.values())]
    for folder in stale:
        folder.mkdir()
    cgroup.sweep_stale.cache_clear()
    group = TreeGroup.create(memory_bytes=64 * MiB)
    assert group is not None
    group.remove()
    assert [folder for folder in stale if folder.exists()] == []
