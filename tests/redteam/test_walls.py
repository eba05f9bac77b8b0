"""Each wall of the sandbox on its own, attacked directly (seconds, no grading run).

A small Python program runs inside a real grading worker (forked by the run's fork server,
:class:`grader.sandbox.parent.ForkServer`, with every wall of :mod:`grader.sandbox.nest` raised)
as the body of a function of the submission, and reports what it managed to do; every attempt must
fail. The sibling test runs two workers of one fork server at once.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
from pathlib import Path

import pytest

from grader.sandbox import policy
from grader.sandbox.cgroup import TreeGroup, available
from grader.sandbox.parent import ForkServer, Worker

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024

PROBE = """
import contextlib, io, json


def probe(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "probe"})
    return json.loads(out.getvalue().strip().splitlines()[-1])
"""


def probe_folder(tmp_path: Path) -> Path:
    submission = tmp_path / "submission"
    submission.mkdir(exist_ok=True)
    (submission / "appendix_a.py").write_text(PROBE, "utf-8")
    return submission


def call(worker: Worker, code: str, timeout: float = 120) -> dict[str, object]:
    report: dict[str, object] = worker.request({"op": "run", "recipe": "call", "swap": [], "inputs": {
        "module": "appendix_a", "name": "probe", "args": [textwrap.dedent(code)]}}, timeout)
    return report


def run_inside(tmp_path: Path, code: str, tree_bytes: int | None = None, tree_pids: int | None = None,
               timeout: float = 120) -> dict[str, object]:
    """Run ``code`` (which prints one JSON line last) in a grading worker; return that JSON."""
    server = ForkServer(probe_folder(tmp_path), workers=1, tree_bytes=tree_bytes, tree_pids=tree_pids)
    try:
        assert server.isolation.sandboxed, server.isolation.reason
        return call(Worker(server.submission, server=server, item="A.4"), code, timeout)
    finally:
        server.close()


def test_the_sandbox_sees_no_process_no_secret_folder_and_cannot_write_the_install(tmp_path: Path) -> None:
    secret = tmp_path / "gradebook.sqlite"
    secret.write_text("grades")
    run_folder = Path(os.environ.get("TMPDIR", "/tmp"))
    import llms_from_scratch  # the book author's package: installed here, hidden there

    book = Path(llms_from_scratch.__file__).parent
    report = run_inside(tmp_path, f"""
        import json, os, sys, glob
        got = {{}}
        got["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        got["secret"] = os.path.exists({str(secret)!r})
        got["tests"] = os.path.exists({str(ROOT / "tests")!r})
        got["solutions"] = os.path.exists({str(ROOT / "solutions")!r})
        got["reference"] = os.path.exists({str(ROOT / "reference")!r})
        got["checks"] = os.path.exists({str(ROOT / "grader" / "checking")!r})
        got["suites"] = os.path.exists({str(ROOT / "grader" / "suites")!r})
        got["book"] = os.listdir({str(book)!r}) if os.path.isdir({str(book)!r}) else None
        got["runs"] = glob.glob("/tmp/llmgrade-*") + glob.glob({str(run_folder / "llmgrade-*")!r})
        try:
            import reference.ch03
            got["mha"] = hasattr(reference.ch03, "MultiHeadAttention")
        except ImportError:
            got["mha"] = None
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
    assert report["pids"] == [1], "only the worker itself, pid 1 of its own namespace, is visible"
    assert report["secret"] is False and report["tests"] is False and report["solutions"] is False
    assert report["reference"] is False and report["checks"] is False and report["suites"] is False
    assert report["book"] == [], "the book's own package is an empty folder inside"
    assert report["mha"] is False, "the view of A.4 holds no MultiHeadAttention"
    assert report["runs"] == []
    assert report["written"] == []


def test_sibling_workers_cannot_see_or_reach_each_other(tmp_path: Path) -> None:
    """Two workers of one fork server at once (two items graded side by side): what one leaves in
    /tmp or /dev/shm, the abstract socket and the port it listens on, and its process are out of
    the other's reach, so a worker holding an item's reference cannot hand it to one grading it."""
    server = ForkServer(probe_folder(tmp_path), workers=2)
    try:
        first = Worker(server.submission, server=server, item="A.4")
        second = Worker(server.submission, server=server, item="A.4")
        planted = call(first, """
            import json, os, socket
            for folder in ("/tmp", "/dev/shm", "/tmp/home"):
                with open(os.path.join(folder, "sibling-secret"), "w") as fh:
                    fh.write("the reference")
            abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            abstract.bind("\\0llmgrade-sibling")
            abstract.listen()
            tcp = socket.socket()
            tcp.bind(("127.0.0.1", 0))
            tcp.listen()
            import builtins
            builtins._keep = (abstract, tcp)  # still listening during the next call
            print(json.dumps({"port": tcp.getsockname()[1], "pid": os.getpid()}))
        """)
        report = call(second, f"""
            import glob, json, os, socket
            got = {{"files": glob.glob("/tmp/**/sibling-secret", recursive=True)
                             + glob.glob("/dev/shm/sibling-secret"),
                    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
            for name, connect in (("abstract", lambda: socket.socket(socket.AF_UNIX).connect("\\0llmgrade-sibling")),
                                  ("tcp", lambda: socket.create_connection(("127.0.0.1", {planted["port"]}), timeout=2))):
                try:
                    connect()
                    got[name] = "connected"
                except OSError as exc:
                    got[name] = exc.errno
            print(json.dumps(got))
        """)
        assert call(first, "import glob, json; print(json.dumps(glob.glob('/tmp/sibling-secret')))") \
            == ["/tmp/sibling-secret"], "the first worker still has its file: the second one just cannot see it"
        first.close()
        second.close()
    finally:
        server.close()
    assert report["files"] == [] and report["pids"] == [1]
    assert report["abstract"] != "connected" and report["tcp"] != "connected"


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
    """Files of 32 MiB (each under the worker's own file-size limit) until the folder is full."""
    report = run_inside(tmp_path, """
        import json, os
        got = {}
        for folder in ("/tmp", "/dev/shm"):
            written = 0
            block = b"x" * (1 << 20)
            try:
                for n in range(256):
                    with open(os.path.join(folder, f"fill{n}"), "wb") as fh:
                        for _ in range(32):
                            fh.write(block)
                            written += 1
                        fh.flush()
            except OSError as exc:
                got[folder + "_errno"] = exc.errno
            got[folder] = written
            for name in os.listdir(folder):
                if name.startswith("fill"):
                    os.remove(os.path.join(folder, name))
        print(json.dumps(got))
    """)
    assert report["/tmp"] <= policy.TMP_BYTES // MiB
    assert report["/dev/shm"] <= policy.SHM_BYTES // MiB
    assert report["/tmp_errno"] == 28 and report["/dev/shm_errno"] == 28  # ENOSPC


@pytest.mark.skipif(not available(), reason="no cgroup can be made here (the worker has rlimits only)")
def test_the_whole_tree_is_capped_in_memory(tmp_path: Path) -> None:
    """Eight children of 150 MiB each, fine alone, too much together: the tree's cap stops them.
    The kernel kills the largest process of the group; that is usually a child, but a worker that
    holds torch can be larger than a child (a fork shares its pages without counting them) and
    is then the one killed: the trusted side then says "memory" for the item, from the cap's own
    count. Either way the tree did not get its 1.2 GiB."""
    from grader.sandbox.parent import WorkerError

    try:
        report = run_inside(tmp_path, """
            import json, os, time
            got = {"children_killed": 0}
            children = []
            for _ in range(8):
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
            print(json.dumps(got), flush=True)
        """, tree_bytes=900 * MiB, tree_pids=96)
    except WorkerError as err:
        assert err.kind == "memory", err  # killed by the cap, and known to be (not a "crash")
    else:
        assert report["children_killed"] >= 1


@pytest.mark.skipif(not available(), reason="no cgroup can be made here (the worker has rlimits only)")
def test_the_whole_tree_is_capped_in_processes(tmp_path: Path) -> None:
    report = run_inside(tmp_path, """
        import json, os, time
        got = {"forks": 0, "fork_error": None}
        try:
            for _ in range(200):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                got["forks"] += 1
        except OSError as exc:
            got["fork_error"] = exc.errno
        print(json.dumps(got), flush=True)
    """, tree_bytes=900 * MiB, tree_pids=96)
    assert report["forks"] < 96 and report["fork_error"] == 11  # EAGAIN from pids.max


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
