"""grade-class extracts each zip just before it is graded, into a private folder removed right after,
and records the hash of the files that were graded (issue 9)."""

from __future__ import annotations

from pathlib import Path

from grader.authoring.workspace import content_hash
from grader.classroom.grade_class import grade_class
from grader.classroom.gradebook import Gradebook
from grader.classroom.safezip import extract_zip
from grader.results import GradeRun

from .fake_runs import fake_run
from .test_classroom import make_zip


def class_folder(root: Path) -> Path:
    return next(p for p in root.parents if p.name.startswith("llmgrade-class-"))


def expected_hash(archive: Path, tmp: Path) -> str:
    return content_hash(extract_zip(archive, tmp / f"check-{archive.stem}") / archive.stem)


def test_a_neighbour_editing_extracted_folders_changes_nothing(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    make_zip(subs / "ann.zip", {"ann/ch02.py": b"a = 1\n"})
    make_zip(subs / "bob.zip", {"bob/ch02.py": b"b = 2\n", "bob/ch03.py": b"c = 3\n"})
    seen: dict[str, tuple[Path, str, str, list[str]]] = {}

    def hostile(root: Path, items: object = (), time_limit_s: float | None = None) -> GradeRun:
        # With the grader's own file access (more than a sandboxed worker has), edit every other
        # submission's extracted file that exists while this one is graded.
        others = [p for p in class_folder(root).rglob("*.py") if not p.is_relative_to(root)]
        for path in others:
            path.write_text("raise SystemExit('BROKEN')\n", "utf-8")
        seen[root.name] = (root, (root / "ch02.py").read_text("utf-8"), content_hash(root), [str(p) for p in others])
        return fake_run(seed=0, submission=str(root), digest=content_hash(root))

    db = tmp_path / "gb.sqlite"
    summary = grade_class(subs, db, jobs=1, grade_fn=hostile, progress=None)
    assert summary.graded == ["ann", "bob"]
    assert seen["ann"][3] == []  # bob's zip was not extracted yet while ann was graded
    assert seen["bob"][1] == "b = 2\n"
    assert not seen["ann"][0].exists() and not seen["bob"][0].exists()  # removed once graded
    with Gradebook(db) as book:
        assert book.latest_hash("bob") == seen["bob"][2] == expected_hash(subs / "bob.zip", tmp_path)


def test_the_recorded_hash_is_of_the_files_graded(tmp_path: Path) -> None:
    """A zip replaced after the class was scanned but before it was graded: the record is of what
    was graded, not of what the scan saw."""
    subs = tmp_path / "subs"
    subs.mkdir()
    make_zip(subs / "ann.zip", {"ann/ch02.py": b"a = 1\n"})
    make_zip(subs / "bob.zip", {"bob/ch02.py": b"b = 2\n"})
    graded: dict[str, str] = {}

    def swapping(root: Path, items: object = (), time_limit_s: float | None = None) -> GradeRun:
        graded[root.name] = content_hash(root)
        if root.name == "ann":  # bob hands in again while the class is being graded
            make_zip(subs / "bob.zip", {"bob/ch02.py": b"b = 'second version'\n"})
        return fake_run(seed=0, submission=str(root))

    db = tmp_path / "gb.sqlite"
    grade_class(subs, db, jobs=1, grade_fn=swapping, progress=None)
    second = expected_hash(subs / "bob.zip", tmp_path)
    with Gradebook(db) as book:
        assert book.latest_hash("bob") == graded["bob"] == second
        assert book.latest_hash("ann") == graded["ann"] == expected_hash(subs / "ann.zip", tmp_path)
    # Graded again unchanged: the recorded hash matches the zip, so bob is skipped.
    assert grade_class(subs, db, jobs=1, grade_fn=swapping, progress=None).skipped == ["ann", "bob"]
