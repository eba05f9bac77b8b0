"""Grade one submission: run the hidden suites with pytest in a subprocess and read its results.

``grade_submission`` holds the defaults the CLI uses. The pytest process is the trusted side (it
imports ``reference/`` and never the student's code); it starts the worker that loads the student's
code. Its results come back as one JSON file signed with a key handed over on a private pipe, so
nothing the student's code writes can pose as a result. The command line, the run spec, the key,
the progress lines and the results format are defined in :mod:`grader.runner.contract`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from grader import __version__, catalog
from grader.catalog import Item, items_for
from grader.errors import SetupError, unknown_item
from grader.messages import current_lang, message_fields
from grader.sandbox import cgroup
from grader.sandbox.policy import probe
from grader.results import GradeRun, GraderCodeNote, RunStatus, installed_torch_version
from grader.runner import contract
from grader.runner.options import GradeOptions
from grader.runner.scoring import item_results, load_errors_from
from grader.authoring.workspace import find_submission
from grader.notebooks.staging import is_notebook_file, stage
from grader.submission_tree import Limits, shown

SUITES_DIR = contract.SUITES_DIR
DEFAULT_SUBMISSION_TIME_LIMIT_S = 600.0
Progress = Callable[[int, int, str], None]
USAGE_ERROR = 4  # pytest's exit code for a usage error


def grade_submission(submission: Path | None = None, items: Sequence[str] = (), device: str | None = None,
                     json_path: Path | None = None, time_limit_s: float | None = None,
                     suites: Sequence[Path] = (), progress: Progress | None = None,
                     time_scale: float = 1.0, threads: int | None = None,
                     gate: tuple[int, int] | None = None, limits: Limits | None = None) -> GradeRun:
    """Grade ``submission`` (default: found from the current folder) on ``items`` (default: all).

    ``threads`` caps torch's threads in the grading processes (class grading runs several at once).
    ``gate`` = (ready, go) pipe ends for ``llmgrade watch``: the grading processes start, write a byte
    on ``ready`` once warm, and import the student's code only after a byte arrives on ``go``
    (both ends are handed over: closed here once the processes have them).
    ``limits``: the caps on the submission's size and file count (default: the environment's, else
    :mod:`grader.submission_tree`'s); the worker only ever sees a private copy of what was read.
    Raises :class:`SetupError` for bad input (unknown item, missing folder, broken grader install).
    A submission that crashes, hangs or cheats only loses the items it affects.
    """
    folder = find_submission(submission).resolve()
    if not items and is_notebook_file(folder) and folder.stem in catalog.MODULES:
        items = (folder.stem,)  # a chapter notebook graded alone is its chapter
    try:
        chosen = items_for(list(items))
    except KeyError as exc:
        raise unknown_item(exc.args[0]) from exc
    GradeOptions(suites=tuple(str(extra) for extra in suites)).check()
    # Only the request goes over: the pytest process resolves the device (it imports torch anyway;
    # this one need not) and reports the one it used.
    started = time.time()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    # A private copy of what the tree reader read (no link out, no special file), in which chapter
    # notebooks become modules: the folder the worker is given.
    staged = stage(folder, limits=limits)
    try:
        # --time-scale multiplies every time limit, the whole submission's default one too.
        limit = time_limit_s or DEFAULT_SUBMISSION_TIME_LIMIT_S * time_scale
        if gate is not None:  # copy (and convert notebooks) again after the save
            gate = _restaging_gate(gate, staged.refresh)
        payload, status, error = _run_suites(staged.folder, chosen, device or contract.AUTO_DEVICE, suites,
                                             progress, limit,
                                             time_scale, threads, gate)
        modules = {item.module for item in chosen}
        notebooks = {note.module: Path(note.file).name for note in staged.notes if note.used}
        load_errors = [e for e in load_errors_from(payload.get("load_errors", {}), notebooks, staged.folder)
                       if e.module in modules or e.module == "*"]
    finally:
        staged.cleanup()
    environment = payload.get("environment", {})
    results = item_results(chosen, payload.get("checks", []), load_errors)
    run = GradeRun(
        tool_version=__version__, torch_version=environment.get("torch_version") or installed_torch_version(),
        python_version=platform.python_version(), device=environment.get("device") or device or "",
        submission=shown(folder),
        submission_hash=staged.digest, started_at=started_at,
        duration_s=round(time.time() - started, 3), items=results, load_errors=load_errors,
        status=status, error=error, error_private=bool(suites) and status == "setup_error", lang=current_lang(),
        isolation=environment.get("isolation") or probe().describe(),
        notebooks=staged.notes,
        grader_code=grader_code_notes(payload.get("grader_code", []), modules), refused=staged.refused)
    if json_path is not None:  # the student's copy: hidden items and checks say pass/fail only
        run.student_view().write(json_path)
    return run


def grader_code_notes(found: Any, modules: set[str]) -> list[GraderCodeNote]:
    """The scan's notes (``grader/checking/grader_code.py``) for the graded modules, as sentences."""
    notes: list[GraderCodeNote] = []
    for entry in found if isinstance(found, list) else []:
        if not isinstance(entry, dict) or entry.get("module") not in modules:
            continue
        # the student's own text (a file name, a line of code): escaped, so no control character
        # reaches a terminal or a report as itself
        file, line, name = shown(Path(str(entry.get("file", ""))).name), int(entry.get("line") or 0), \
            shown(str(entry.get("name", "")))
        source_line = shown(str(entry.get("source_line", "")))
        notes.append(GraderCodeNote(module=str(entry["module"]), file=file, line=line, name=name,
                                    source_line=source_line,
                                    **message_fields("note.grader_code", file=file, line=line, name=name,
                                                     source_line=source_line)))
    return notes


_RUNNING: set[subprocess.Popen[bytes]] = set()  # every grading process of this process, until it ends
_RUNNING_LOCK = threading.Lock()


def stop_running() -> None:
    """End every grading process this process started (their runs then clean up after themselves):
    for an interrupted ``grade-class``, whose grading threads would otherwise wait for them."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _kill_group(proc)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` in the main thread while inside (as Ctrl-C does), so that
    every ``finally`` runs: no grading process, copy of a submission or run folder is left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_suites(folder: Path, chosen: list[Item], device: str, suites: Sequence[Path],
                progress: Progress | None, time_limit_s: float, time_scale: float,
                threads: int | None = None, gate: tuple[int, int] | None = None
                ) -> tuple[dict[str, Any], RunStatus, str]:
    # The trusted pytest runs in a private folder (outside every sandbox) that holds its results,
    # log and every temporary folder it makes; it is removed when the run ends, however it ends.
    workdir = Path(tempfile.mkdtemp(prefix="llmgrade-run-"))
    try:
        return _run_suites_in(workdir, folder, chosen, device, suites, progress, time_limit_s,
                              time_scale, threads, gate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        cgroup.remove_leftovers(workdir.name)


def _run_suites_in(workdir: Path, folder: Path, chosen: list[Item], device: str, suites: Sequence[Path],
                   progress: Progress | None, time_limit_s: float, time_scale: float,
                   threads: int | None, gate: tuple[int, int] | None = None
                   ) -> tuple[dict[str, Any], RunStatus, str]:
    results = workdir / "checks.json"
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    key = contract.new_key()
    key_r = contract.hand_over_key(key)
    prog_r, prog_w = os.pipe()
    # One of several runs at once (class grading gives each run its share of the cores as ``threads``):
    # that many items side by side, one torch thread each (grade-class --jobs 1 on 2 cores: 2 runners).
    spec = contract.RunSpec(submission=str(folder), results=str(results), items=tuple(i.id for i in chosen),
                            device=device, time_scale=time_scale, key_fd=key_r, progress_fd=prog_w,
                            gate_fds=gate, runners=max(1, threads) if threads is not None else 0)
    paths = [*suite_files(chosen), *[str(Path(extra).resolve()) for extra in suites]]
    cmd = contract.pytest_command(sys.executable, paths, spec)
    env = contract.pytest_environment(os.environ, threads=threads, tmpdir=tmpdir)
    env[cgroup.PREFIX_ENV] = workdir.name  # the sandbox names its cgroups after this run
    log = open(workdir / "pytest.log", "wb")
    try:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, pass_fds=(key_r, prog_w, *(gate or ())),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
    finally:
        os.close(key_r)
        os.close(prog_w)
        for fd in gate or ():
            os.close(fd)
    slowdown = [1.0]  # the grading process reports how much slower than idle the machine runs
    reader = threading.Thread(target=_read_progress, args=(prog_r, progress, slowdown), daemon=True)
    reader.start()
    status: RunStatus = "complete"
    error = ""
    try:
        _wait_paced(proc, time_limit_s, slowdown)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        status, error = "interrupted", f"time limit of {exc.timeout:.0f} s for the whole submission"
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        log.close()
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    reader.join(timeout=5)
    payload = contract.read_signed(results, key)
    if payload is None:
        tail = (workdir / "pytest.log").read_text("utf-8", "replace")[-3000:]
        if proc.returncode == USAGE_ERROR:  # e.g. a --device that cannot be used
            last = tail.strip().splitlines()[-1] if tail.strip() else ""
            raise SetupError("grade.setup_failed", error=last.removeprefix("ERROR: "))
        if status == "complete":
            status, error = "setup_error", tail
        return {}, status, error
    if payload.get("collection_errors"):
        raise SetupError("grade.suite_error", detail="\n".join(payload["collection_errors"])[-3000:])
    return payload, status, error


def _restaging_gate(gate: tuple[int, int], refresh: Callable[[], None]) -> tuple[int, int]:
    """A gate between ``llmgrade watch`` and the grading processes that stages the submission again
    when it opens, so that notebooks are converted as saved (the worker imports only after that)."""
    ready_w, go_r = gate
    inner_r, inner_w = os.pipe()

    def forward() -> None:
        try:
            data = os.read(go_r, 1)
            if data:
                refresh()
                os.write(inner_w, data)
        except (OSError, SetupError):
            pass  # the run then ends without grading, as when the watch closes the gate
        finally:
            os.close(go_r)
            os.close(inner_w)

    threading.Thread(target=forward, daemon=True, name="llmgrade-restage").start()
    return ready_w, inner_r


def suite_files(chosen: list[Item]) -> list[str]:
    """Only the suite files of the chosen items' modules (``test_<module>_*.py``): a one-item check
    then imports and collects a fraction of the suites."""
    modules = sorted({item.module for item in chosen})
    files = [str(path) for module in modules for path in sorted(SUITES_DIR.glob(f"test_{module}_*.py"))]
    return files or [str(SUITES_DIR)]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_paced(proc: subprocess.Popen[bytes], time_limit_s: float, slowdown: list[float]) -> float:
    """Wait for ``proc`` up to ``time_limit_s`` times the slowdown reported so far (capped): a busy
    machine stretches the whole-submission limit as it stretches every per-call limit. Returns the
    limit in force; raises ``TimeoutExpired`` when it passes."""
    started = time.monotonic()
    exited = _exit_fd(proc)
    try:
        while True:
            allowed = time_limit_s * min(max(slowdown[0], 1.0), contract.MAX_SUBMISSION_SLOWDOWN)
            remaining = started + allowed - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, allowed)
            if exited is not None:  # wakes the moment the process ends
                select.select([exited], [], [], min(remaining, 1.0))
                if proc.poll() is not None:
                    return allowed
                continue
            try:  # Popen.wait polls, up to 50 ms late
                proc.wait(timeout=min(remaining, 1.0))
                return allowed
            except subprocess.TimeoutExpired:
                continue
    finally:
        if exited is not None:
            os.close(exited)


def _exit_fd(proc: subprocess.Popen[bytes]) -> int | None:
    """A descriptor that becomes readable when ``proc`` ends (Linux pidfd), or None where there is none."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(proc.pid))
    except OSError:  # an older kernel, or the process is already gone
        return None


def _read_progress(fd: int, progress: Progress | None, slowdown: list[float] | None = None) -> None:
    counter = contract.ProgressCounter()
    with os.fdopen(fd, "rb") as stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("slowdown "):
                if slowdown is not None:
                    try:
                        slowdown[0] = max(slowdown[0], float(line.split()[1]))
                    except (IndexError, ValueError):
                        pass
                continue
            counter.feed(line)
            if progress is not None:
                progress(counter.done, counter.total, line)
