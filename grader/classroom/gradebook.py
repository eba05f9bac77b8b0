"""The gradebook: every grading run, kept in SQLite (stdlib ``sqlite3``).

One *submission* row (student id, content hash, time recorded) per recorded run, one *run* row (tool,
device and torch versions, start time, duration, score, status) and one *item_results* row per item.
``record`` writes all three in one transaction, so an interrupted write leaves nothing behind.

The schema is versioned: ``MIGRATIONS`` lists the steps in order and ``PRAGMA user_version`` holds how
many were applied; ``PRAGMA application_id`` marks the file as an llmgrade gradebook, so a foreign
SQLite file is refused instead of altered. The database runs in WAL mode with a busy timeout, so several
processes (parallel grading) can write to it at once.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.errors import SetupError
from grader.results import SCHEMA, SCHEMA_VERSION, GradeRun, SchemaError

APPLICATION_ID = 0x4C4C4D47  # "LLMG"
DEFAULT_DB = Path(".llmgrade") / "gradebook.sqlite"
BUSY_TIMEOUT_S = 60.0

# Each migration is a list of statements, applied in one transaction; never edit a released step.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            student_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            submitted_at TEXT NOT NULL
        )""",
        "CREATE INDEX submissions_by_student ON submissions (student_id, id)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            submission_id INTEGER NOT NULL UNIQUE REFERENCES submissions (id) ON DELETE CASCADE,
            tool_version TEXT NOT NULL,
            torch_version TEXT NOT NULL,
            python_version TEXT NOT NULL,
            device TEXT NOT NULL,
            submission TEXT NOT NULL,
            started_at TEXT NOT NULL,
            duration_s REAL NOT NULL,
            score REAL NOT NULL,
            max_score REAL NOT NULL,
            status TEXT NOT NULL,
            error TEXT NOT NULL,
            load_errors TEXT NOT NULL
        )""",
        """CREATE TABLE item_results (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            module TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            points REAL NOT NULL,
            max_points REAL NOT NULL,
            diagnosis TEXT,
            message TEXT NOT NULL,
            duration_s REAL NOT NULL,
            hidden INTEGER NOT NULL,
            checks TEXT NOT NULL,
            PRIMARY KEY (run_id, item_id)
        )""",
    ),
    (  # 2: which machine (and Dask worker) graded a run (grade-class --cluster)
        "ALTER TABLE runs ADD COLUMN graded_by TEXT NOT NULL DEFAULT ''",
    ),
    # 3: the language each run's messages were written in (issue 11); older runs were English.
    ("ALTER TABLE runs ADD COLUMN lang TEXT NOT NULL DEFAULT 'en'",),
    (  # 4: how each run's student code was isolated (docs/security.md); "" for runs before
        "ALTER TABLE runs ADD COLUMN isolation TEXT NOT NULL DEFAULT ''",
    ),
    # 5: how each chapter notebook of the submission was graded (docs/notebooks.md); none before
    ("ALTER TABLE runs ADD COLUMN notebooks TEXT NOT NULL DEFAULT '[]'",),
    # 6: where the submission's files name the grader's own code (a note, results schema 3); none before
    ("ALTER TABLE runs ADD COLUMN grader_code TEXT NOT NULL DEFAULT '[]'",),
    # 7: what of the submission was not read (grader/submission_tree.py: links out, special files)
    ("ALTER TABLE runs ADD COLUMN refused TEXT NOT NULL DEFAULT '[]'",),
    # 7: the run's error quotes the grading log (private suites): shown to the instructor only
    ("ALTER TABLE runs ADD COLUMN error_private INTEGER NOT NULL DEFAULT 0",),
)
SCHEMA_LEVEL = len(MIGRATIONS)

History = list[tuple[str, float, float]]


class GradebookError(SetupError):
    """A gradebook file that cannot be used (corrupt, foreign, too new); names the file."""


def default_path(workspace: Path) -> Path:
    return workspace / DEFAULT_DB


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Gradebook:
    """``Gradebook(path)`` opens (creating or migrating) the gradebook at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise GradebookError("gradebook.is_folder", path=self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise GradebookError("gradebook.cannot_open", path=self.path, reason=exc) from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self._db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise GradebookError("gradebook.corrupt", path=self.path, reason=exc) from exc
        except GradebookError:
            self._db.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pragma(self, name: str) -> int:
        row = self._db.execute(f"PRAGMA {name}").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            app_id, level = self._pragma("application_id"), self._pragma("user_version")
            if app_id == 0 and level == 0:
                tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise GradebookError("gradebook.foreign", path=self.path)
                self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            elif app_id != APPLICATION_ID:
                raise GradebookError("gradebook.foreign", path=self.path)
            if level > SCHEMA_LEVEL:
                raise GradebookError("gradebook.too_new", path=self.path, found=level,
                                     supported=SCHEMA_LEVEL)
            for step in MIGRATIONS[level:]:
                for statement in step:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_LEVEL}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @property
    def schema_level(self) -> int:
        return self._pragma("user_version")

    # -- writing -------------------------------------------------------------------------------
    def record(self, student_id: str, run: GradeRun, content_hash: str | None = None) -> int:
        """Store one grading run of ``student_id``; returns the run's row id.

        Everything is written in one transaction: on any error nothing of this run is kept.
        """
        digest = content_hash if content_hash is not None else run.submission_hash
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO submissions (student_id, content_hash, submitted_at) VALUES (?, ?, ?)",
                (student_id, digest, _now()))
            cur = self._db.execute(
                "INSERT INTO runs (submission_id, tool_version, torch_version, python_version,"
                " device, submission, started_at, duration_s, score, max_score, status, error,"
                " load_errors, graded_by, lang, isolation, notebooks, grader_code, refused, error_private)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cur.lastrowid, run.tool_version, run.torch_version, run.python_version,
                 run.device, run.submission, run.started_at, run.duration_s, run.score,
                 run.max_score, run.status, run.error,
                 json.dumps([asdict(e) for e in run.load_errors], ensure_ascii=False), run.graded_by,
                 run.lang, run.isolation, json.dumps([asdict(n) for n in run.notebooks], ensure_ascii=False),
                 json.dumps([asdict(n) for n in run.grader_code], ensure_ascii=False),
                 json.dumps([asdict(n) for n in run.refused], ensure_ascii=False), int(run.error_private)))
            run_id = cur.lastrowid
            assert run_id is not None
            for position, item in enumerate(run.items):
                checks = json.dumps([asdict(c) for c in item.checks], ensure_ascii=False)
                self._db.execute(
                    "INSERT INTO item_results (run_id, position, item_id, module, title, kind,"
                    " status, points, max_points, diagnosis, message, duration_s, hidden, checks)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, position, item.id, item.module, item.title, item.kind, item.status,
                     item.points, item.max_points, item.diagnosis, item.message,
                     item.duration_s, int(item.hidden), checks))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return run_id

    # -- reading -------------------------------------------------------------------------------
    def students(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT student_id FROM submissions ORDER BY student_id")
        return [str(r[0]) for r in rows]

    def _latest_run_id(self, student_id: str) -> int | None:
        row = self._db.execute(
            "SELECT runs.id FROM runs JOIN submissions ON submissions.id = runs.submission_id"
            " WHERE student_id = ? ORDER BY submissions.id DESC LIMIT 1", (student_id,)).fetchone()
        return None if row is None else int(row[0])

    def latest(self, student_id: str) -> GradeRun | None:
        """The most recently recorded run of ``student_id``, or None."""
        run_id = self._latest_run_id(student_id)
        return None if run_id is None else self.run(run_id)

    def latest_all(self) -> dict[str, GradeRun]:
        """The latest run of every student, by student id (sorted)."""
        runs: dict[str, GradeRun] = {}
        for student in self.students():
            run = self.latest(student)
            if run is not None:
                runs[student] = run
        return runs

    def latest_hash(self, student_id: str) -> str | None:
        row = self._db.execute(
            "SELECT content_hash FROM submissions WHERE student_id = ? ORDER BY id DESC LIMIT 1",
            (student_id,)).fetchone()
        return None if row is None else str(row[0])

    def latest_status(self, student_id: str) -> str | None:
        run_id = self._latest_run_id(student_id)
        if run_id is None:
            return None
        row = self._db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(row[0])

    def history(self, student_id: str) -> History:
        """``(started_at, score, max_score)`` of every run of ``student_id``, oldest first."""
        rows = self._db.execute(
            "SELECT started_at, score, max_score FROM runs"
            " JOIN submissions ON submissions.id = runs.submission_id"
            " WHERE student_id = ? ORDER BY submissions.id", (student_id,))
        return [(str(r[0]), float(r[1]), float(r[2])) for r in rows]

    def runs(self, student_id: str) -> list[GradeRun]:
        """Every recorded run of ``student_id``, oldest first."""
        rows = self._db.execute(
            "SELECT runs.id FROM runs JOIN submissions ON submissions.id = runs.submission_id"
            " WHERE student_id = ? ORDER BY submissions.id", (student_id,))
        return [self.run(int(r[0])) for r in rows.fetchall()]

    def run(self, run_id: int) -> GradeRun:
        """The run with row id ``run_id`` rebuilt as a ``GradeRun``."""
        row = self._db.execute(
            "SELECT tool_version, torch_version, python_version, device, submission,"
            " content_hash, started_at, duration_s, status, error, load_errors, graded_by, lang, isolation,"
            " notebooks, grader_code, refused, error_private FROM runs JOIN submissions ON submissions.id = runs.submission_id"
            " WHERE runs.id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        keys = ("tool_version", "torch_version", "python_version", "device", "submission",
                "submission_hash", "started_at", "duration_s", "status", "error")
        data: dict[str, Any] = dict(zip(keys, row[:10]))
        try:
            data["load_errors"] = json.loads(row[10])
            data["graded_by"] = row[11]
            data["lang"] = str(row[12])
            data["isolation"] = str(row[13])
            data["notebooks"] = json.loads(row[14])
            data["grader_code"] = json.loads(row[15])
            data["refused"] = json.loads(row[16])
            data["error_private"] = bool(row[17])
            data["items"] = [
                {"id": r[0], "module": r[1], "title": r[2], "kind": r[3], "status": r[4],
                 "points": r[5], "max_points": r[6], "diagnosis": r[7], "message": r[8],
                 "duration_s": r[9], "hidden": bool(r[10]), "checks": json.loads(r[11])}
                for r in self._db.execute(
                    "SELECT item_id, module, title, kind, status, points, max_points, diagnosis,"
                    " message, duration_s, hidden, checks FROM item_results WHERE run_id = ?"
                    " ORDER BY position", (run_id,))
            ]
            data.update(schema=SCHEMA, schema_version=SCHEMA_VERSION)
            return GradeRun.from_dict(data)
        except (ValueError, SchemaError) as exc:
            raise GradebookError("gradebook.bad_row", path=self.path, run=run_id,
                                 reason=exc) from exc
