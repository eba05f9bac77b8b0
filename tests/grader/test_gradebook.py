"""The SQLite gradebook: round trips, history, migrations, atomic writes, concurrent writers."""

from __future__ import annotations

import dataclasses

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from grader.classroom import gradebook as gb_module
from grader.classroom.gradebook import Gradebook, GradebookError
from grader.results import CheckResult

from .fake_runs import fake_run, with_load_error


def test_record_and_latest_round_trip(tmp_path: Path) -> None:
    run = with_load_error(fake_run(seed=1, digest="abc"))
    with Gradebook(tmp_path / "gb.sqlite") as book:
        run_id = book.record("alice", run)
        assert run_id > 0
        back = book.latest("alice")
    assert back is not None
    assert back.to_dict() == run.to_dict()
    assert back.items[0].checks == run.items[0].checks


def test_history_students_and_hash(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        assert book.students() == [] and book.latest("bob") is None
        assert book.latest_hash("bob") is None and book.history("bob") == []
        book.record("bob", fake_run(seed=0, started_at="2025-01-01T00:00:00+00:00", digest="h1"))
        book.record("bob", fake_run(seed=2, started_at="2025-01-02T00:00:00+00:00", digest="h2"))
        book.record("alice", fake_run(seed=1), content_hash="given")
        assert book.students() == ["alice", "bob"]
        assert book.latest_hash("bob") == "h2" and book.latest_hash("alice") == "given"
        history = book.history("bob")
        assert [h[0] for h in history] == ["2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"]
        assert history[1][1:] == (fake_run(seed=2).score, fake_run(seed=2).max_score)
        assert book.latest_status("bob") == "complete"
        assert set(book.latest_all()) == {"alice", "bob"}


def test_schema_version_wal_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "gb.sqlite"
    Gradebook(path).close()
    with Gradebook(path) as book:
        assert book.schema_level == len(gb_module.MIGRATIONS)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == gb_module.APPLICATION_ID
    con.close()


def test_migrations_apply_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gb.sqlite"
    with Gradebook(path) as book:
        book.record("alice", fake_run())
    extra = gb_module.MIGRATIONS + (("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",),)
    monkeypatch.setattr(gb_module, "MIGRATIONS", extra)
    monkeypatch.setattr(gb_module, "SCHEMA_LEVEL", len(extra))
    with Gradebook(path) as book:
        assert book.schema_level == len(extra)
        assert book.students() == ["alice"]
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    con.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gb.sqlite"
    Gradebook(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(GradebookError) as info:
        Gradebook(path)
    assert str(path) in str(info.value) and "99" in str(info.value)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gb.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(GradebookError) as info:
        Gradebook(path)
    assert str(path) in str(info.value) and "--db" in str(info.value)


def test_foreign_sqlite_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(GradebookError) as info:
        Gradebook(path)
    assert "not an llmgrade gradebook" in str(info.value) and str(path) in str(info.value)
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["customers"]
    con.close()


def test_folder_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GradebookError, match="is a folder"):
        Gradebook(tmp_path)


def test_failure_midway_leaves_nothing(tmp_path: Path) -> None:
    run = fake_run(seed=0)
    broken = [i for i in run.items if i.checks][3]
    broken.checks.append(CheckResult("bad", "failed", details={"not json": {1, 2}}))
    with Gradebook(tmp_path / "gb.sqlite") as book:
        with pytest.raises(TypeError):
            book.record("carol", run)
        assert book.students() == []
        assert book.latest("carol") is None
        book.record("dave", fake_run(seed=1))  # the connection is still usable
        assert book.students() == ["dave"]
    con = sqlite3.connect(tmp_path / "gb.sqlite")
    counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("submissions", "runs", "item_results")]
    con.close()
    assert counts == [1, 1, len(run.items)]


def _writer(args: tuple[str, int]) -> int:
    path, worker = args
    with Gradebook(Path(path)) as book:
        for k in range(5):
            book.record(f"student{worker}", fake_run(seed=k, digest=f"{worker}-{k}"))
    return worker


def test_concurrent_writers_from_processes(tmp_path: Path) -> None:
    path = tmp_path / "gb.sqlite"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        assert sorted(pool.map(_writer, [(str(path), w) for w in range(4)])) == [0, 1, 2, 3]
    with Gradebook(path) as book:
        assert book.students() == [f"student{w}" for w in range(4)]
        for w in range(4):
            assert len(book.history(f"student{w}")) == 5
            assert book.latest_hash(f"student{w}") == f"{w}-4"
            run = book.latest(f"student{w}")
            assert run is not None and len(run.items) == len(fake_run().items)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_a_gradebook_from_before_graded_by_migrates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A level-1 gradebook (no graded_by column) opens, keeps its runs and reads them with graded_by ''."""
    path = tmp_path / "old.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(gb_module, "MIGRATIONS", gb_module.MIGRATIONS[:1])
        patch.setattr(gb_module, "SCHEMA_LEVEL", 1)
        with Gradebook(path) as book:
            assert book.schema_level == 1
    con = sqlite3.connect(path)  # a run as an llmgrade of level 1 wrote it
    with con:
        con.execute("INSERT INTO submissions VALUES (1, 'alice', 'h1', '2026-01-01T00:00:00+00:00')")
        con.execute("INSERT INTO runs VALUES (1, 1, '0.1.0', '2.13.0', '3.11.7', 'cpu', 'sub',"
                    " '2026-01-01T00:00:00+00:00', 1.0, 0.0, 0.0, 'complete', '', '[]')")
    con.close()
    with Gradebook(path) as book:
        assert book.schema_level == gb_module.SCHEMA_LEVEL
        run = book.latest("alice")
        assert run is not None and run.graded_by == "" and run.isolation == ""
        book.record("bob", dataclasses.replace(fake_run(), graded_by="node7 tcp://10.0.0.7:40000",
                                               isolation="bwrap+seccomp+cgroup"))
        bob = book.latest("bob")
        assert bob is not None and bob.graded_by == "node7 tcp://10.0.0.7:40000"
        assert bob.isolation == "bwrap+seccomp+cgroup"
