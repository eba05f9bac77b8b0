"""Through the real CLI: every item passes on solutions/ and none passes on the generated stubs.

With ``LLMGRADE_SOLUTIONS_COVERAGE`` set (scripts/test.sh does), the worker measures which lines of
solutions/ the hidden suites execute; the script reports that coverage afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.catalog import ITEMS
from grader.authoring.stubs import build_stubs

ROOT = Path(__file__).resolve().parents[2]


def llmgrade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT, timeout=900)


def grade_json(submission: Path, out: Path, *extra: str,
               env: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = llmgrade("grade", "--submission", str(submission), "--json", str(out), "--no-record", *extra,
                      env=env)
    assert out.exists(), result.stdout + result.stderr
    return result.returncode, json.loads(out.read_text("utf-8"))


@pytest.mark.slow
def test_every_item_passes_on_the_solutions(tmp_path: Path) -> None:
    submission = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("__pycache__"))
    env = {}
    coverage_file = os.environ.get("LLMGRADE_SOLUTIONS_COVERAGE")
    if coverage_file:
        env["LLMGRADE_WORKER_COVERAGE"] = coverage_file
    code, data = grade_json(submission, tmp_path / "out.json", "--time-scale", "4", env=env)
    failing = {i["id"]: i["message"] for i in data["items"] if i["status"] != "passed"}
    assert failing == {}
    assert code == 0
    assert {i["id"] for i in data["items"]} == {item.id for item in ITEMS}
    assert data["score"] == data["max_score"] == sum(item.points for item in ITEMS)


@pytest.mark.slow
def test_no_item_passes_on_the_stubs(tmp_path: Path) -> None:
    stubs = tmp_path / "exercises"
    build_stubs(ROOT / "solutions", stubs)
    code, data = grade_json(stubs, tmp_path / "out.json")
    assert code == 1
    passed = [i["id"] for i in data["items"] if i["status"] == "passed" or i["points"] > 0]
    assert passed == []
    assert all(i["status"] == "not_started" for i in data["items"]), \
        {i["id"]: i["status"] for i in data["items"] if i["status"] != "not_started"}
    assert data["score"] == 0
