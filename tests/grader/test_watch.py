"""``llmgrade watch``: a warm standby grades the code as saved, never code imported before the save."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun
from grader.runner.watch import Standby, snapshot, watch

ROOT = Path(__file__).resolve().parents[2]
GELU_RIGHT = "return 0.5 * x * (1 + torch.tanh("
GELU_WRONG = "return 0.4 * x * (1 + torch.tanh("


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")


def test_each_save_is_graded_by_a_warm_standby_that_imports_it_fresh(tmp_path: Path) -> None:
    work = _work(tmp_path)
    _edit(work / "ch04.py", GELU_RIGHT, GELU_WRONG)
    seen: list[GradeRun] = []
    saves: list[str] = []

    def save() -> None:  # called once the next standby is warm: its worker has not read ch04.py yet
        wrong, right = (GELU_WRONG, GELU_RIGHT) if len(saves) % 2 == 0 else (GELU_RIGHT, GELU_WRONG)
        _edit(work / "ch04.py", wrong, right)
        saves.append(right)

    count = watch(work, ["CH04.gelu"], seen.append, checks=3, on_wait=save, poll_s=0.05)
    assert count == 3 and len(saves) == 2
    assert [run.items[0].status for run in seen] == ["failed", "passed", "failed"]
    assert all(run.items[0].id == "ch04.GELU" for run in seen)


def test_a_cancelled_standby_grades_nothing(tmp_path: Path) -> None:
    standby = Standby(_work(tmp_path), ["ch04.GELU"], None, 1.0)
    assert standby.wait_ready(120)
    standby.cancel()
    assert not standby._thread.is_alive()
    assert standby.result is None or all(not item.checks for item in standby.result.items)  # nothing ran


def test_snapshot_sees_python_files_only(tmp_path: Path) -> None:
    (tmp_path / "ch02.py").write_text("x = 1\n")
    (tmp_path / ".llmgrade").mkdir()
    (tmp_path / ".llmgrade" / "x.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert list(snapshot(tmp_path)) == ["ch02.py"]


def test_watch_unknown_item_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["watch", "ch03.MHA", "--submission", str(_work(tmp_path))])
    assert result.exit_code == 2 and "did you mean ch03.MultiHeadAttention?" in result.stderr


@pytest.mark.parametrize("name", ["watch"])
def test_watch_help_has_an_example(name: str) -> None:
    assert "Example:\n    llmgrade watch" in CliRunner().invoke(main, [name, "--help"]).output
