"""grader/submission_tree.py: the one reader of submission trees (issue 20)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from grader.authoring.workspace import content_hash
from grader.classroom.safezip import UnsafeZip, extract_zip
from grader.notebooks.staging import stage
from grader.submission_tree import Limits, read_tree, shown


def test_links_inside_are_read_others_refused_and_special_files_never_opened(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET", "utf-8")
    root = tmp_path / "sub"
    (root / "pkg").mkdir(parents=True)
    (root / "ch03.py").write_text("X = 1\n", "utf-8")
    (root / "alias.py").symlink_to("ch03.py")
    (root / "stolen.py").symlink_to(outside)
    (root / "dangling.py").symlink_to(tmp_path / "nothing")
    (root / "pkg" / "up").symlink_to("..", target_is_directory=True)
    os.mkfifo(root / "fifo.py")  # opening it for reading would block the grader
    tree = read_tree(root)
    assert {f.rel: f.data for f in tree.files} == {"alias.py": b"X = 1\n", "ch03.py": b"X = 1\n"}
    assert {(r.name, r.reason) for r in tree.refused} == {
        ("stolen.py", "outside"), ("dangling.py", "outside"), ("pkg/up", "loop"), ("fifo.py", "special")}
    assert tree.problem is None
    staged = stage(root)
    try:
        assert sorted(p.name for p in staged.folder.iterdir()) == ["__init__.py", "alias.py", "ch03.py"]
        assert not any(p.is_symlink() for p in staged.folder.rglob("*"))
    finally:
        staged.cleanup()


def test_caps_stop_reading_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "ch02.py").write_bytes(b"#" * 5000)
    (tmp_path / "ch03.py").write_bytes(b"X = 1\n")
    too_big = read_tree(tmp_path, Limits(max_bytes=4000, max_files=10))
    assert too_big.problem is not None and too_big.problem[0] == "trees.too_big"
    assert "ch02.py" in too_big.problem_text() and too_big.size <= 4001
    too_many = read_tree(tmp_path, Limits(max_files=1))
    assert too_many.problem is not None and too_many.problem[0] == "trees.too_many_files"
    assert Limits.from_env({"LLMGRADE_MAX_SUBMISSION_MB": "2", "LLMGRADE_MAX_SUBMISSION_FILES": "7"}) == Limits(2 * 2**20, 7)
    assert Limits.from_env({"LLMGRADE_MAX_SUBMISSION_MB": "lots"}) == Limits()


def test_any_bytes_in_a_name_are_kept_and_shown_escaped(tmp_path: Path) -> None:
    (tmp_path / "ch03.py").write_text("X = 1\n", "utf-8")
    (tmp_path / os.fsdecode(b"bad\xff.py")).write_bytes(b"Y = 2\n")
    folder = tmp_path / os.fsdecode(b"d\xe9j\xe0")
    folder.mkdir()
    (folder / "helper.py").write_bytes(b"Z = 3\n")
    tree = read_tree(tmp_path)
    # not importable by Python: named, not graded, never a crash
    assert [(r.name, r.reason) for r in tree.refused] == [("bad\\xff.py", "name"), ("d\\xe9j\\xe0/helper.py", "name")]
    assert [shown(f.rel) for f in tree.files] == ["ch03.py"]
    assert len(content_hash(tmp_path)) == 64  # used to raise UnicodeEncodeError
    assert shown("a\nb") == "a\\nb"  # no name can forge a line of output


def test_a_zip_whose_names_claim_utf8_and_are_not_is_refused_in_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "carol.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("caf\u00e9.py", b"X = 1\n")
    path.write_bytes(path.read_bytes().replace("caf\u00e9.py".encode("utf-8"), b"caf\xe9_.py"))
    with pytest.raises(UnsafeZip) as refused:
        extract_zip(path, tmp_path / "out")
    assert "UTF-8" in str(refused.value) and "carol.zip" in str(refused.value)


def test_a_zip_member_that_cannot_be_written_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "dave.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a", b"file")
        archive.writestr("a/b.py", b"X = 1\n")  # "a" is a file: the folder cannot be made
    with pytest.raises(UnsafeZip):
        extract_zip(path, tmp_path / "out")
