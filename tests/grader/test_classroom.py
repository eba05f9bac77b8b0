"""Class grading: folders and zips, skips by content hash, broken submissions, time limits, jobs."""

from __future__ import annotations

import io
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest

from grader.classroom.grade_class import grade_class, submission_root
from grader.errors import SetupError
from grader.classroom.gradebook import Gradebook
from grader.results import GradeRun
from grader.classroom.safezip import UnsafeZip, extract_zip

from .fake_runs import fake_run, write_submission


def fake_grade(root: Path, items: object = (), time_limit_s: float | None = None) -> GradeRun:
    """Behaves according to the submission's ch02.py: SETUP, CRASH, HANG or a normal run."""
    text = (root / "ch02.py").read_text("utf-8") if (root / "ch02.py").exists() else ""
    if "SETUP" in text:
        raise SetupError("workspace.missing_folder", path=str(root))
    if "CRASH" in text:
        raise RuntimeError("boom")
    if "HANG" in text:
        time.sleep(3)
    return fake_run(seed=len(text), submission=str(root))


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


@pytest.fixture
def class_dir(tmp_path: Path) -> Path:
    subs = tmp_path / "subs"
    write_submission(subs / "alice", "x = 1\n")
    write_submission(subs / "bob", "y = 22\n")
    write_submission(subs / "carol", "# SETUP\n")
    write_submission(subs / "dave", "# CRASH\n")
    make_zip(subs / "erin.zip", {"erin/ch02.py": b"z = 333\n", "erin/ch03.py": b"w = 1\n"})
    make_zip(subs / "frank.zip", {"../../evil.py": b"x = 1\n"})
    (subs / "gina.zip").write_bytes(b"PK this is not a zip")
    (subs / "notes.txt").write_text("not a submission", encoding="utf-8")
    (subs / ".hidden").mkdir()
    return subs


def statuses(db: Path) -> dict[str, str | None]:
    with Gradebook(db) as book:
        return {s: book.latest_status(s) for s in book.students()}


def test_grades_everything_and_records_broken_ones(class_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "gb.sqlite"
    stream = io.StringIO()
    summary = grade_class(class_dir, db, jobs=2, grade_fn=fake_grade, progress=stream)
    assert sorted(summary.graded) == ["alice", "bob", "erin"]
    assert sorted(summary.broken) == ["carol", "dave", "frank", "gina"]
    assert not summary.ok and summary.skipped == []
    assert statuses(db) == {"alice": "complete", "bob": "complete", "carol": "setup_error",
                            "dave": "setup_error", "erin": "complete", "frank": "setup_error",
                            "gina": "setup_error"}
    assert not (tmp_path / "evil.py").exists() and not (class_dir.parent / "evil.py").exists()
    out = stream.getvalue()
    assert out.count("\n") == 7 and "[7/7]" in out
    assert "would be written outside the submission folder" in out
    assert "could not be read" in out and "internal error (RuntimeError: boom)" in out
    with Gradebook(db) as book:
        erin = book.latest("erin")
        carol = book.latest("carol")
    assert erin is not None and erin.score == fake_run(seed=len("z = 333\n")).score
    assert carol is not None and carol.score == 0 and str(class_dir / "carol") in carol.error
    assert all(i.status == "error" for i in carol.items)


@pytest.mark.parametrize("per_submission_s, expected", [
    (5.0, "less than a minute left"),  # 3 left x 5 s: never "about 1 min"
    (30.0, "about 2 min left"),        # 3 left x 30 s
    (200.0, "about 10 min left"),      # 3 left x 200 s
])
def test_progress_estimates_the_time_left(monkeypatch: pytest.MonkeyPatch, per_submission_s: float,
                                          expected: str) -> None:
    """Each finished submission prints the time left: time per graded one x the ones still to grade."""
    import grader.classroom.grade_class as module

    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = module._Progress(stream, 4)
    for student in ("ann", "ben", "cat", "dan"):
        clock[0] += per_submission_s
        progress(module.Outcome(student, "graded", "complete", 90.0, 132.0))
    first, *_, last = stream.getvalue().splitlines()
    assert first == f"[1/4] ann: 90.0 of 132.0 points. (0 not graded so far; {expected}.)"
    assert last == "[4/4] dan: 90.0 of 132.0 points."


def test_rerun_skips_unchanged_and_force_regrades(class_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "gb.sqlite"
    grade_class(class_dir, db, jobs=2, grade_fn=fake_grade, progress=None)
    write_submission(class_dir / "bob", "y = 'changed'\n")
    again = grade_class(class_dir, db, jobs=2, grade_fn=fake_grade, progress=None)
    assert again.graded == ["bob"]
    assert sorted(again.skipped) == ["alice", "carol", "dave", "erin", "frank", "gina"]
    assert again.broken == []
    forced = grade_class(class_dir, db, jobs=2, force=True, grade_fn=fake_grade, progress=None)
    assert len(forced.graded) == 3 and len(forced.broken) == 4
    with Gradebook(db) as book:
        assert len(book.history("bob")) == 3 and len(book.history("alice")) == 2


def test_rezipped_identical_content_is_skipped(tmp_path: Path) -> None:
    subs, db = tmp_path / "subs", tmp_path / "gb.sqlite"
    subs.mkdir()
    make_zip(subs / "ann.zip", {"ch02.py": b"a = 1\n"})
    assert grade_class(subs, db, grade_fn=fake_grade, progress=None).graded == ["ann"]
    make_zip(subs / "ann.zip", {"sub/ch02.py": b"a = 1\n"})  # new zip, same content
    assert grade_class(subs, db, grade_fn=fake_grade, progress=None).skipped == ["ann"]


@pytest.mark.load_sensitive  # a wall-clock bound: never next to test_load's busy loops
def test_hang_is_stopped_and_others_finish(tmp_path: Path) -> None:
    subs, db = tmp_path / "subs", tmp_path / "gb.sqlite"
    write_submission(subs / "hung", "# HANG\n")
    write_submission(subs / "ok", "x = 1\n")
    began = time.monotonic()
    summary = grade_class(subs, db, jobs=2, time_limit_s=0.2, grace_s=0.3, grade_fn=fake_grade,
                          progress=None)
    assert time.monotonic() - began < 2.5
    assert summary.graded == ["ok"] and summary.broken == ["hung"]
    assert statuses(db)["hung"] == "interrupted"
    with Gradebook(db) as book:
        run = book.latest("hung")
    assert run is not None and "time limit of 0.2 seconds" in run.error
    # an interrupted run is graded again even though its content did not change
    again = grade_class(subs, db, jobs=2, time_limit_s=10, grade_fn=fake_grade, progress=None)
    assert again.graded == ["hung"] and again.skipped == ["ok"]


def test_jobs_run_in_parallel(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for k in range(4):
        write_submission(subs / f"s{k}", f"x = {k}\n")
    lock, active, peak = threading.Lock(), [0], [0]

    def slow_grade(root: Path, items: object = (), time_limit_s: float | None = None) -> GradeRun:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return fake_run()

    grade_class(subs, tmp_path / "a.sqlite", jobs=2, grade_fn=slow_grade, progress=None)
    assert peak[0] == 2
    peak[0] = 0
    grade_class(subs, tmp_path / "b.sqlite", jobs=1, grade_fn=slow_grade, progress=None)
    assert peak[0] == 1


def test_duplicate_student_and_bad_folders(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    write_submission(subs / "amy", "x = 1\n")
    make_zip(subs / "amy.zip", {"ch02.py": b"x = 2\n"})
    summary = grade_class(subs, tmp_path / "gb.sqlite", grade_fn=fake_grade, progress=None)
    assert summary.graded == ["amy"] and summary.broken == ["amy"]
    with pytest.raises(SetupError, match="does not exist"):
        grade_class(tmp_path / "nope", tmp_path / "gb.sqlite", grade_fn=fake_grade)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SetupError, match="holds no student folders"):
        grade_class(tmp_path / "empty", tmp_path / "gb.sqlite", grade_fn=fake_grade)


def test_submission_root_descends_wrappers(tmp_path: Path) -> None:
    write_submission(tmp_path / "a" / "exercises")
    (tmp_path / "a" / "__MACOSX").mkdir()
    assert submission_root(tmp_path / "a") == tmp_path / "a" / "exercises"
    write_submission(tmp_path / "b")
    assert submission_root(tmp_path / "b") == tmp_path / "b"


@pytest.mark.parametrize("members, symlink, key", [
    ({"/abs.py": b"x"}, None, "zip.traversal"),
    ({"a/../../up.py": b"x"}, None, "zip.traversal"),
    ({"C:/win.py": b"x"}, None, "zip.traversal"),
    ({"ok.py": b"x"}, "link.py", "zip.symlink"),
    ({"bomb.py": b"0" * 5_000_000}, None, "zip.bomb"),
])
def test_unsafe_zips_are_refused(tmp_path: Path, members: dict[str, bytes], symlink: str | None,
                                 key: str) -> None:
    archive = make_zip(tmp_path / "s.zip", members, symlink)
    with pytest.raises(UnsafeZip) as info:
        extract_zip(archive, tmp_path / "out")
    assert info.value.message_id == key and str(archive) in str(info.value)
    assert not any((tmp_path / "out").rglob("*.py"))


def test_zip_limits(tmp_path: Path) -> None:
    many = make_zip(tmp_path / "many.zip", {f"f{i}.py": b"x" for i in range(5)})
    with pytest.raises(UnsafeZip, match="holds 5 files"):
        extract_zip(many, tmp_path / "o1", max_files=4)
    big = make_zip(tmp_path / "big.zip", {"a.py": bytes(range(256)) * 40})
    with pytest.raises(UnsafeZip, match="expands to more than"):
        extract_zip(big, tmp_path / "o2", max_total_bytes=5000)
    good = make_zip(tmp_path / "good.zip", {"d/a.py": b"x = 1\n", "d/": b""})
    assert (extract_zip(good, tmp_path / "o3") / "d" / "a.py").read_text() == "x = 1\n"
