"""Grading a whole class: ``llmgrade grade-class SUBMISSIONS``.

Each entry of SUBMISSIONS is one student's submission, a folder or a ``.zip``; the entry's name
without ``.zip`` is the student id. A zip is extracted (safely) just before it is graded, into a
private folder of its own that only its worker is shown, and removed right after: no extracted
submission waits on disk for a neighbour to edit. The content hash recorded is the engine's hash of
the files it graded. Submissions are graded in
parallel by a thread pool (every grade call starts its own worker subprocesses), each with a time
limit, and every outcome is recorded in the gradebook from the main thread. A submission whose
content hash equals its latest recorded one is skipped unless ``force`` (a run that timed out is
always graded again). A broken submission (bad zip, setup error, a hang, a crash) is recorded with a
clear status and never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TextIO

from grader import __version__, catalog
from grader.errors import SetupError
from grader.runner.options import GradeOptions
from grader.runner.contract import MAX_SUBMISSION_SLOWDOWN
from grader.classroom.gradebook import DEFAULT_DB, Gradebook
from grader.messages import current_lang, t
from grader.results import GradeRun, ItemResult, RunStatus, installed_torch_version
from grader.classroom.cluster import LOCAL_PREFIX, is_cluster_loss, is_killed_worker, open_pool as open_cluster, pack
from grader.classroom.safezip import UnsafeZip, extract_zip
from grader.submission_tree import Limits, shown

DEFAULT_TIME_LIMIT_S = 600.0  # the engine's own default (grader.runner.run.DEFAULT_SUBMISSION_TIME_LIMIT_S)
# How long past its time limit a grade call may run before it is given up on (the engine enforces
# the limit itself; this is a safety net for a call that never returns).
GRACE_S = 30.0

GradeFn = Callable[..., GradeRun]
State = Literal["graded", "skipped", "broken", "lost"]


def _default_grade_fn(threads: int, limits: Limits | None = None) -> GradeFn:
    """The real engine, with ``threads`` torch threads per process: parallel submissions must not
    oversubscribe the cores (2 jobs x 2 processes x 2 threads on 2 cores is several times slower)."""
    from functools import partial

    from grader.runner.run import grade_submission

    return partial(grade_submission, threads=threads, limits=limits)


@dataclass
class Outcome:
    student: str
    state: State
    status: str = ""
    score: float = 0.0
    max_score: float = 0.0
    message: str = ""


@dataclass
class ClassSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    duration_s: float = 0.0

    def _with(self, state: State) -> list[str]:
        return [o.student for o in self.outcomes if o.state == state]

    @property
    def graded(self) -> list[str]:
        return self._with("graded")

    @property
    def skipped(self) -> list[str]:
        return self._with("skipped")

    @property
    def broken(self) -> list[str]:
        return self._with("broken")

    @property
    def lost(self) -> list[str]:
        """Not graded because the cluster went away: nothing recorded, the next run grades them."""
        return self._with("lost")

    @property
    def ok(self) -> bool:
        return not self.broken and not self.lost


def broken_run(submission: Path, digest: str, status: RunStatus, error: str) -> GradeRun:
    """A run for a submission that could not be graded: every catalog item is an error, 0 points."""
    items = [ItemResult(item.id, item.module, item.title, item.kind, 0.0, float(item.points),
                        "error", hidden=item.hidden) for item in catalog.ITEMS]
    return GradeRun(tool_version=__version__, torch_version=installed_torch_version(),
                    python_version=platform.python_version(), device="none",
                    submission=shown(submission), submission_hash=digest,
                    started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), duration_s=0.0,
                    items=items, status=status, error=error, lang=current_lang())


def submission_root(folder: Path) -> Path:
    """The folder that holds the ``.py`` files (or notebooks): descend through single wrapper folders
    (never through a link: the tree reader decides what of a link is read)."""
    root = folder
    try:
        for _ in range(5):
            if any(root.glob("*.py")) or any(root.glob("*.ipynb")):
                return root
            subdirs = [p for p in root.iterdir() if not p.is_symlink() and p.is_dir()
                       and not p.name.startswith((".", "__MACOSX", "__pycache__"))]
            if len(subdirs) != 1:
                return root
            root = subdirs[0]
    except OSError:  # an unreadable folder: graded as it is, and the tree reader says what it could not read
        return root
    return root


@dataclass(frozen=True)
class Entry:
    """One entry of the class folder: the student id (shown escaped), the path, and why it is refused
    without being read (``None``: graded)."""

    student: str
    path: Path
    refused: str | None = None


def find_entries(submissions_dir: Path) -> list[Entry]:
    """Every folder or ``.zip`` entry, sorted by name; an entry that is itself a symbolic link is
    refused (it would grade another student's files, or anything else, as this student's)."""
    if not submissions_dir.is_dir():
        raise SetupError("classroom.no_folder", path=shown(submissions_dir))
    entries = []
    for path in sorted(submissions_dir.iterdir(), key=lambda p: os.fsencode(p.name)):
        if path.name.startswith("."):
            continue
        is_zip = path.suffix.lower() == ".zip"
        student = shown(path.name[:-4] if is_zip else path.name)
        if path.is_symlink():
            entries.append(Entry(student, path, t("trees.student_link", path=shown(path))))
        elif path.is_dir():
            entries.append(Entry(student, path))
        elif is_zip and path.is_file():
            entries.append(Entry(student, path))
    if not entries:
        raise SetupError("classroom.empty", path=shown(submissions_dir))
    return entries


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return _refusal_hash(path)


def _refusal_hash(path: Path) -> str:
    """A stand-in content hash for an entry that was not read (a link, an unreadable file)."""
    return hashlib.sha256(b"not read\0" + os.fsencode(path.name)).hexdigest()


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and path.is_file() and not path.is_symlink()


@contextlib.contextmanager
def graded_copy(source: Path, scratch: Path) -> Iterator[Path]:
    """The folder to grade for ``source``: a zip extracted now into a new private folder (mode 0700,
    removed on leaving), or a folder's submission root as it is."""
    if not _is_zip(source):
        yield submission_root(source)
        return
    folder = Path(tempfile.mkdtemp(prefix="zip-", dir=scratch))
    try:
        yield submission_root(extract_zip(source, folder / "submission"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _digest(source: Path, scratch: Path, limits: Limits | None) -> str:
    """The content hash of ``source`` as it is now (a zip is extracted for it and removed again)."""
    with graded_copy(source, scratch) as root:
        return _content_hash(root, limits)


class _Progress:
    """One line per finished submission: count, outcome, failures so far and an estimate of the time left."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream, self.total, self.done, self.failures = stream, total, 0, 0
        self.started = time.monotonic()
        self.slow_done, self.slow_time = 0, 0.0  # submissions really graded (skips take no time)

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.state in ("broken", "lost"):
            self.failures += 1
        if outcome.state != "skipped":
            self.slow_done += 1
        if self.stream is None:
            return
        if outcome.state == "graded":
            line = t("classroom.progress.graded", done=self.done, total=self.total,
                     student=outcome.student, score=outcome.score, max_score=outcome.max_score)
        elif outcome.state == "lost":
            line = t("cluster.progress.lost", done=self.done, total=self.total,
                     student=outcome.student, message=outcome.message)
        elif outcome.state == "skipped":
            line = t("classroom.progress.skipped", done=self.done, total=self.total,
                     student=outcome.student)
        else:
            line = t("classroom.progress.broken", done=self.done, total=self.total,
                     student=outcome.student, message=outcome.message)
        left = self.total - self.done
        if left and self.slow_done:
            seconds = (time.monotonic() - self.started) / self.slow_done * left
            if seconds < 60:  # "about 1 min" would overstate the wait several times over
                line += " " + t("classroom.progress.eta_short", failures=self.failures)
            else:
                line += " " + t("classroom.progress.eta", failures=self.failures, minutes=round(seconds / 60))
        print(line, file=self.stream, flush=True)


def _content_hash(root: Path, limits: Limits | None = None) -> str:
    """The engine's content hash (imported when first needed)."""
    from grader.authoring.workspace import content_hash as hash_of

    return hash_of(root, limits)


def grade_class(submissions_dir: Path, db: Path, jobs: int | None = None, force: bool = False,
                time_limit_s: float = DEFAULT_TIME_LIMIT_S, grade_fn: GradeFn | None = None,
                progress: TextIO | None = sys.stderr, grace_s: float = GRACE_S,
                items: Sequence[str] = (), cluster: str | None = None,
                allow_unisolated: bool = False, limits: Limits | None = None,
                options: GradeOptions = GradeOptions()) -> ClassSummary:
    """Grade every submission in ``submissions_dir`` and record the runs in the gradebook ``db``.

    ``grade_fn(folder, items=..., time_limit_s=...)`` grades one submission folder (default: the
    engine's ``grade_submission``); ``items`` limits grading to those ids/chapters (default: all).
    ``cluster`` (a Dask scheduler address or ``local:N``) grades on a Dask cluster instead of the
    local thread pool (:mod:`grader.classroom.cluster`); every result is still recorded here. Each
    Dask worker refuses to grade without its OS sandbox unless ``allow_unisolated``. ``limits``: the
    caps on each submission (:mod:`grader.submission_tree`; default: the environment's, else 50 MiB
    and 2,000 files). A student who cannot be graded (a link, a bad zip, a submission over a cap,
    anything else) is recorded with the reason and never stops the others. Interrupted (Ctrl-C, or
    SIGTERM under :func:`grader.runner.run.terminate_as_interrupt`), it ends every grading process
    it started and leaves nothing behind. ``options``:
    the device, extra suites and time scale, as ``llmgrade grade`` takes them (a remote Dask worker
    needs the suites folder at the same path).
    """
    options.check()
    started = time.monotonic()
    entries = find_entries(submissions_dir)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    grade = grade_fn if grade_fn is not None else _default_grade_fn(max(1, (os.cpu_count() or 1) // workers),
                                                                     limits)
    summary = ClassSummary()
    report = _Progress(progress, len(entries))
    seen: set[str] = set()

    with Gradebook(db) as book, \
            tempfile.TemporaryDirectory(prefix="llmgrade-class-", ignore_cleanup_errors=True) as tmp:

        def finish(student: str, run: GradeRun, digest: str, state: State, message: str) -> None:
            try:  # one run that cannot be recorded must not stop the class or lose the others
                book.record(student, run, content_hash=digest)
            except (sqlite3.Error, SetupError, ValueError) as exc:
                state, message = "broken", t("classroom.not_recorded", student=student, error=str(exc))
            outcome = Outcome(student, state, run.status, run.score, run.max_score, message)
            summary.outcomes.append(outcome)
            report(outcome)

        def skip_or_refuse(student: str, path: Path, digest: str, message: str) -> None:
            if not force and book.latest_hash(student) == digest:
                summary.outcomes.append(Outcome(student, "skipped"))
                report(summary.outcomes[-1])
                return
            finish(student, broken_run(path, digest, "setup_error", message), digest, "broken", message)

        todo: list[tuple[str, Path, str]] = []
        for entry in entries:
            student, path = entry.student, entry.path
            if student in seen:
                outcome = Outcome(student, "broken", "setup_error",
                                  message=t("classroom.duplicate", student=student, path=shown(path)))
                summary.outcomes.append(outcome)
                report(outcome)
                continue
            seen.add(student)
            if entry.refused is not None:  # never read: its digest is its name's
                skip_or_refuse(student, path, _refusal_hash(path), entry.refused)
                continue
            try:
                digest = _digest(path, Path(tmp), limits)
            except UnsafeZip as exc:
                skip_or_refuse(student, path, _file_hash(path), str(exc))
                continue
            except Exception as exc:  # anything else about this one entry: recorded, the class goes on
                message = str(exc) if isinstance(exc, SetupError) else t(
                    "classroom.crashed", student=student, error=f"{type(exc).__name__}: {exc}")
                skip_or_refuse(student, path, _file_hash(path) if _is_zip(path) else _refusal_hash(path), message)
                continue
            if (not force and book.latest_hash(student) == digest
                    and book.latest_status(student) != "interrupted"):
                summary.outcomes.append(Outcome(student, "skipped"))
                report(summary.outcomes[-1])
                continue
            todo.append((student, path if _is_zip(path) else submission_root(path), digest))

        starts: dict[str, float] = {}
        # The engine stretches its own limit on a busy machine (grader.checking.pace); the watchdog,
        # there for a grade function that never returns, must not cut it short.
        watchdog_s = time_limit_s * (MAX_SUBMISSION_SLOWDOWN if grade_fn is None else 1.0) + grace_s

        graded_hashes: dict[str, str] = {}  # the hash of the very files each student was graded on

        def job(student: str, source: Path) -> GradeRun:
            starts[student] = time.monotonic()
            with graded_copy(source, Path(tmp)) as root:  # a zip: extracted now, removed after
                graded_hashes[student] = _content_hash(root, limits)
                return grade(root, items=items, time_limit_s=time_limit_s, **options.kwargs())

        def packed(student: str, source: Path) -> Any:
            with graded_copy(source, Path(tmp)) as root:  # the Dask worker grades this archive
                graded_hashes[student] = _content_hash(root, limits)
                return pack(root, limits)

        dask_pool = open_cluster(cluster) if cluster is not None and todo else None
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmgrade-class")
        pending: dict[Future[Any], tuple[str, Path, str]] = {}
        interrupted = False
        try:
            for student, root, digest in todo:
                if dask_pool is not None:
                    try:
                        archive = packed(student, root)
                    except Exception as exc:  # over a cap, a bad zip: this student only
                        finish(student, broken_run(root, digest, "setup_error", str(exc)), digest, "broken", str(exc))
                        continue
                    # The engine on each Dask worker enforces the time limit itself.
                    pending[dask_pool.submit(archive, items, time_limit_s, allow_unisolated,
                                             limits)] = (student, root, digest)
                else:
                    pending[pool.submit(job, student, root)] = (student, root, digest)
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    student, root, digest = pending.pop(future)
                    try:
                        result = future.result()
                        run = result if isinstance(result, GradeRun) else GradeRun.from_dict(result)
                    except Exception as exc:  # a crash in one submission must not stop the others
                        if dask_pool is not None and is_cluster_loss(exc):  # nothing to record
                            outcome = Outcome(student, "lost", message=f"{type(exc).__name__}: {exc}")
                            summary.outcomes.append(outcome)
                            report(outcome)
                            continue
                        if dask_pool is not None and is_killed_worker(exc):
                            message = t("cluster.killed_workers", student=student)
                        elif isinstance(exc, SetupError):
                            message = str(exc)
                        else:
                            message = t("classroom.crashed", student=student,
                                        error=f"{type(exc).__name__}: {exc}")
                        finish(student, broken_run(root, digest, "setup_error", message), digest,
                               "broken", message)
                        continue
                    state: State = "graded" if run.status == "complete" else "broken"
                    # The hash of what was graded (the zip may have changed since the scan).
                    finish(student, run, graded_hashes.get(student, digest), state, run.error)
                now = time.monotonic()
                for future, (student, root, digest) in list(pending.items()):
                    began = starts.get(student)
                    if began is not None and now - began > watchdog_s:
                        del pending[future]
                        message = t("classroom.timeout", student=student, seconds=time_limit_s)
                        finish(student, broken_run(root, digest, "interrupted", message), digest,
                               "broken", message)
        except BaseException:
            interrupted = True
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if interrupted:  # Ctrl-C, SIGTERM: end the grading processes, let their runs clean up
                from grader.runner.run import stop_running

                stop_running()
                pool.shutdown(wait=True)
            if dask_pool is not None:
                dask_pool.close()
    summary.duration_s = time.monotonic() - started
    return summary


def grade_class_cli(submissions_dir: Path, db: Path | None = None, jobs: int | None = None,
                    force: bool = False, cluster: str | None = None,
                    allow_unisolated: bool = False, limits: Limits | None = None,
                    options: GradeOptions = GradeOptions()) -> tuple[str, bool]:
    """``llmgrade grade-class``: grade, then the summary sentence(s) and whether all were graded.

    Other people's code is graded only in the OS sandbox unless ``allow_unisolated``.
    """
    from grader.runner.run import terminate_as_interrupt
    from grader.sandbox.policy import probe

    remote = cluster is not None and not cluster.startswith(LOCAL_PREFIX)
    isolation = probe()
    if not isolation.sandboxed and not remote:  # remote Dask workers check their own sandbox
        if not allow_unisolated:
            raise SetupError("sandbox.class_needs_sandbox", reason=isolation.reason)
        print(t("sandbox.not_isolated", reason=isolation.reason), file=sys.stderr)
    db_path = db if db is not None else DEFAULT_DB
    with terminate_as_interrupt():
        # --time-scale stretches each submission's limit as it does in ``grade``.
        summary = grade_class(submissions_dir, db_path, jobs=jobs, force=force, cluster=cluster,
                              allow_unisolated=allow_unisolated, limits=limits, options=options,
                              time_limit_s=DEFAULT_TIME_LIMIT_S * options.time_scale)
    lines = [t("classroom.summary", graded=len(summary.graded), skipped=len(summary.skipped),
               broken=len(summary.broken), seconds=round(summary.duration_s, 1), db=db_path)]
    if summary.broken:
        lines.append(t("classroom.summary.broken", students=", ".join(summary.broken)))
        lines += [t("trees.student_not_graded", student=o.student, reason=o.message)
                  for o in summary.outcomes if o.state == "broken" and o.message]
    if summary.lost:
        lines.append(t("cluster.summary.lost", students=", ".join(summary.lost)))
    return "\n".join(lines), summary.ok
