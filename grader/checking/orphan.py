"""The trusted pytest process ends when the process that started it dies.

``grader.runner.run`` starts pytest in a session of its own (so a timeout can kill the whole group).
If the grading process itself is killed (a Dask worker lost mid-task, an instructor's Ctrl-C that
reached only the parent, SIGKILL), nothing would stop that pytest and its worker: they would grade on
for nobody. A daemon thread watches the parent and ends this process group when it is gone.
"""

from __future__ import annotations

import os
import signal
import threading

POLL_S = 0.5


def exit_with_parent(poll_s: float = POLL_S) -> threading.Thread:
    """Start the watchdog; returns its (daemon) thread."""
    parent = os.getppid()

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(poll_s):
            if os.getppid() != parent:  # re-parented: the grading process is gone
                try:
                    if os.getpgrp() == os.getpid():  # our own group (run.py): the worker goes too
                        os.killpg(os.getpgrp(), signal.SIGKILL)
                finally:
                    os._exit(1)

    thread = threading.Thread(target=watch, name="llmgrade-orphan-watch", daemon=True)
    thread.start()
    return thread
