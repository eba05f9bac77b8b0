"""Without the OS sandbox (forced here with LLMGRADE_SANDBOX=off): grade still runs and says once
that the code is not isolated, the results record it, and grade-class refuses unless told."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun
from grader.sandbox import policy

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(policy.OFF_ENV, "off")
    policy.probe.cache_clear()
    yield
    monkeypatch.undo()
    policy.probe.cache_clear()


def test_grade_without_the_sandbox_warns_once_and_records_it(tmp_path: Path, no_sandbox: None) -> None:
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch04.GELU", "--submission", str(SOLUTIONS), "--no-record",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("not isolated") == 1
    assert "LLMGRADE_SANDBOX=off" in result.output
    assert GradeRun.read(out).isolation == "none"


def test_grade_class_refuses_without_the_sandbox_unless_allowed(tmp_path: Path, no_sandbox: None) -> None:
    classroom = tmp_path / "class"
    (classroom / "alice").mkdir(parents=True)
    shutil.copy(SOLUTIONS / "ch04.py", classroom / "alice" / "ch04.py")
    db = tmp_path / "gradebook.sqlite"
    refused = CliRunner().invoke(main, ["grade-class", str(classroom), "--db", str(db)])
    assert refused.exit_code == 2
    assert "--allow-unisolated" in refused.output and "Traceback" not in refused.output
    assert not db.exists()


def test_the_sandbox_is_recorded_when_it_is_used(tmp_path: Path) -> None:
    isolation = policy.probe()
    if not isolation.sandboxed:
        pytest.skip(f"the OS sandbox is not available here: {isolation.reason}")
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch04.GELU", "--submission", str(SOLUTIONS), "--no-record",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "not isolated" not in result.output
    assert GradeRun.read(out).isolation.startswith("bwrap")
