"""The fork server: one warm process per grading run from which every worker is forked (worker side).

Started by the trusted side (:class:`grader.sandbox.parent.ForkServer`) inside the OS sandbox, it
imports torch and the recipes, and nothing of the submission or of the reference (neither is in
its reach: ``reference/`` is not mounted, the submission is never imported here). Then it waits on
its control socket (``SOCK_SEQPACKET``, one request a datagram, so several trusted processes may
share it). A request carries, as file descriptors: the worker's request pipe (read end), its reply
pipe (write end), its output file, its stack-dump file and an acknowledgement socket. For each one
the server forks:

- an intermediate process (in the server's namespaces) that, with the sandbox on, unshares a new
  mount, pid, network, ipc and uts namespace (:mod:`grader.sandbox.nest`), forks the worker, sends
  the worker's pidfd back on the acknowledgement socket (the trusted side signals and watches the
  worker through it) and waits for it;
- the worker: pid 1 of its own pid namespace, with its own ``/tmp``, ``/dev/shm``, ``/proc`` and
  loopback, every capability dropped and the seccomp filter on (:func:`grader.sandbox.nest.enter`);
  then it serves the trusted side (:func:`grader.sandbox.child.serve_forked`).

So a worker starts in about the time of a ``fork`` (torch is already imported), siblings cannot see
or reach each other, and a worker that hangs, crashes or exits costs only its own item. The server
runs no torch operation before it forks (a forked OpenMP pool would hang the child).
"""

from __future__ import annotations

import argparse
import array
import json
import os
import signal
import socket
import sys
from typing import Any

REQUEST_BYTES = 64 * 1024
FDS_PER_REQUEST = 5  # request pipe, reply pipe, output file, stack file, acknowledgement socket


def _receive(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    fds = array.array("i")
    try:
        data, ancillary, _flags, _addr = control.recvmsg(REQUEST_BYTES, socket.CMSG_LEN(FDS_PER_REQUEST * fds.itemsize))
    except InterruptedError:
        return {}, []
    if not data:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    try:
        request = json.loads(data)
    except ValueError:
        request = {}
    return (request if isinstance(request, dict) else {}), list(fds)


def _reap(_signum: int = 0, _frame: Any = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(control_fd: int, settings: dict[str, Any]) -> None:
    """Fork a worker for each request until the control socket is closed by every client."""
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        received = _receive(control)
        if received is None:
            return
        request, fds = received
        if request.get("op") != "spawn" or len(fds) != FDS_PER_REQUEST:
            for fd in fds:
                os.close(fd)
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            _refuse(fds[4], f"fork: {exc}")
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            _intermediate(control_fd, fds, {**settings, **request})  # never returns
        for fd in fds:
            os.close(fd)


def _refuse(ack_fd: int, message: str) -> None:
    try:
        ack = socket.socket(fileno=os.dup(ack_fd))
        ack.send(json.dumps({"error": message}).encode())
        ack.close()
    except OSError:
        pass


def _intermediate(control_fd: int, fds: list[int], settings: dict[str, Any]) -> None:
    """Child of the server: new namespaces, then the worker; hand its pidfd over, wait for it."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(control_fd)
        req_r, rep_w, out_fd, stack_fd, ack_fd = fds
        _keep_only(fds)
        from grader.sandbox import nest

        nested = bool(settings.get("nest"))
        if nested:
            nest.unshare_for_worker()
        worker = os.fork()
        if worker == 0:
            os.close(ack_fd)
            _worker(req_r, rep_w, out_fd, stack_fd, settings)  # never returns
        for fd in (req_r, rep_w, out_fd, stack_fd):
            os.close(fd)
        ack = socket.socket(fileno=ack_fd)
        try:
            pidfd = os.pidfd_open(worker)
            ack.sendmsg([json.dumps({"pid": worker}).encode()],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pidfd]))])
            os.close(pidfd)
            _, status = os.waitpid(worker, 0)
            code = os.waitstatus_to_exitcode(status)
            ack.send(json.dumps({"exit": code}).encode())  # how it ended: a signal is negative
        except OSError:
            pass
        finally:
            ack.close()
    except BaseException as exc:  # noqa: BLE001 - reported on the ack socket if it is still open
        _refuse(fds[4], f"{type(exc).__name__}: {exc}")
    os._exit(code if 0 <= code < 256 else 1)  # noqa: the worker's own status went on the ack socket


def _keep_only(fds: list[int]) -> None:
    """Close every descriptor but ``fds`` and the standard ones (nothing of the server's leaks)."""
    keep = sorted({0, 1, 2, *fds})
    low = 0
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def _worker(req_r: int, rep_w: int, out_fd: int, stack_fd: int, settings: dict[str, Any]) -> None:
    code = 0
    try:
        from grader.sandbox.child import serve_forked

        serve_forked(req_r, rep_w, out_fd, stack_fd, settings)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the trusted side sees the pipe close
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.sandbox.forkserver")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--settings", required=True, help="JSON: what every worker gets (see child.serve_forked)")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)
    sys.stdin.close()
    from grader.sandbox.child import prepare_server

    prepare_server(settings)
    serve(args.control_fd, settings)


if __name__ == "__main__":
    main()
