"""The keeper: a detached process that keeps a standby warm for a workspace's next ``llmgrade check``.

Started by the CLI after a cold check (:func:`grader.runner.keep_warm.start_keeper`), with its
spec on stdin. It serves one request at a time on its Unix socket; see :mod:`grader.runner.keep_warm`
for the why, where and when it ends. It is trusted code (like the CLI): it never imports the
student's code, and each check runs in a standby's own pytest process and sandboxed worker.
"""

from __future__ import annotations

import hmac
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.results import GradeRun
from grader.runner.commands import check_items
from grader.runner.keep_warm import MAX_REPLY_BYTES, Place, Request, read_all
from grader.runner.run import grade_submission
from grader.runner.watch import Standby

TICK_S = 2.0  # how often an idle keeper looks whether its socket and workspace are still there
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 1024**2


class Keeper:
    def __init__(self, place: Place, request: Request, graded: list[str], minutes: float, token: str) -> None:
        self.place, self.request, self.graded, self.token = place, request, graded, token
        self.idle_s = minutes * 60.0
        self.folder = Path(request.submission)
        self.device = None if request.device == "auto" else request.device
        self.standby = self._standby()
        self.listener = self._listen()

    def _standby(self) -> Standby:
        return Standby(self.folder, self.graded, self.device, self.request.time_scale)

    def _listen(self) -> socket.socket:
        """Bind a fresh socket and put it in place atomically (a previous keeper of this workspace
        sees its socket replaced and ends), after the lease that holds the token."""
        tmp = self.place.socket.with_name(f"{self.place.socket.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp))
        os.chmod(tmp, 0o600)
        listener.listen(8)
        self.place.write_lease(self.token)
        tmp.replace(self.place.socket)
        self.inode = os.stat(self.place.socket).st_ino
        return listener

    def serve(self) -> None:
        deadline = time.monotonic() + self.idle_s
        try:
            while time.monotonic() < deadline and self._still_ours():
                self.listener.settimeout(min(TICK_S, max(0.01, deadline - time.monotonic())))
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    if not self._answer(conn):
                        return
                deadline = time.monotonic() + self.idle_s
        finally:
            self.standby.cancel()
            self.listener.close()
            self._remove_own_files()

    def _answer(self, conn: socket.socket) -> bool:
        """Serve one connection; False when the keeper should end."""
        try:
            conn.settimeout(REQUEST_TIMEOUT_S)
            message = json.loads(read_all(conn, MAX_REQUEST_BYTES).decode("utf-8"))
            token = message["token"]
            if not isinstance(token, str) or not hmac.compare_digest(token, self.token):
                return True  # not from this user's CLI: no answer
            if message.get("op") == "stop":
                _reply(conn, {"status": "stopping"})
                return False
            request = Request.from_dict(message["request"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return True
        if request != self.request:
            _reply(conn, {"status": "mismatch"})
            return False
        try:
            run, self.graded = check_items(self._grade(), list(request.wanted), self.graded)
        except Exception as exc:  # noqa: BLE001 - the CLI grades cold and shows the error itself
            _reply(conn, {"status": "error", "error": f"{type(exc).__name__}: {exc}"})
            return False
        _reply(conn, {"status": "ok", "run": run.to_dict()})
        self.standby = self._standby()  # warms up while the student reads; a check that comes first waits
        return True

    def _grade(self) -> Callable[[list[str]], GradeRun]:
        standby: Standby | None = self.standby

        def grade(ids: list[str]) -> GradeRun:
            nonlocal standby
            if standby is not None and ids == self.graded:
                used, standby = standby, None
                return used.go()
            return grade_submission(self.folder, ids, device=self.device, time_scale=self.request.time_scale)

        return grade

    def _still_ours(self) -> bool:
        try:
            return os.stat(self.place.socket).st_ino == self.inode and self.folder.exists()
        except OSError:
            return False

    def _remove_own_files(self) -> None:
        """The socket and the lease, unless a newer keeper of this workspace has replaced them."""
        try:
            if os.stat(self.place.socket).st_ino == self.inode:
                self.place.socket.unlink()
                self.place.lease.unlink(missing_ok=True)
        except OSError:
            pass


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.settimeout(30.0)
        conn.sendall(json.dumps(message).encode("utf-8"))
    except OSError:  # the CLI went away (Ctrl+C): its check is simply not shown
        pass


def _end(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # through serve()'s finally: the standby is cancelled and the files removed


def main() -> None:
    signal.signal(signal.SIGTERM, _end)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    spec = json.loads(sys.stdin.read())
    request = Request.from_dict(spec["request"])
    place = Place.of(Path(request.submission))
    if place is None:
        return
    keeper = Keeper(place, request, [str(i) for i in spec["graded"]], float(spec["minutes"]), str(spec["token"]))
    keeper.serve()


if __name__ == "__main__":
    main()
