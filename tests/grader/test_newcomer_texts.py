"""Issue 22, findings 8 and 10: text said once, numbers as the terminal writes them, singular
grammar; through ``llmgrade export`` and ``llmgrade report`` (the pages in headless Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.classroom.gradebook import Gradebook
from grader.cli import main
from grader.messages import t
from grader.results import CheckResult

from .fake_runs import fake_run
from .test_browser import render_in_browser


def _run_with_a_diagnosed_failure():  # type: ignore[no-untyped-def]
    run = fake_run(statuses={item.id: "passed" for item in catalog.ITEMS})
    item = next(i for i in run.items if i.id == "ch03.CausalAttention")
    likely = t("diagnosis.mask_not_applied")
    said = f"CausalAttention output differs from the reference. {likely}"
    item.status, item.points, item.diagnosis = "failed", 1.0, "mask_not_applied"
    item.checks = [CheckResult("forward", "failed", message=said, message_id="check.differs",
                               diagnosis="mask_not_applied"),
                   CheckResult("eval_mode_disables_dropout", "failed", message=said, message_id="check.other"),
                   CheckResult("shape", "passed")]
    return run


def test_gradescope_says_the_likely_mistake_once_and_one_point_in_the_singular(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ann", _run_with_a_diagnosed_failure())
    result = CliRunner().invoke(main, ["export", "--format", "gradescope", "--db", str(tmp_path / "gb.sqlite"),
                                       "--out", str(tmp_path / "gs")])
    assert result.exit_code == 0, result.output
    tests = json.loads(next((tmp_path / "gs").rglob("results.json")).read_text("utf-8"))["tests"]
    causal = next(test for test in tests if test["number"] == "ch03.CausalAttention")["output"]
    assert causal.count("Likely mistake") == 1, causal
    assert "2 checks (forward, eval_mode_disables_dropout)" in causal  # one group, not listed again
    one_point = next(test for test in tests if test["number"] == "ch04.GELU")["output"]
    assert one_point.startswith("1 of 1 point."), one_point


@pytest.mark.slow
def test_reports_write_scores_as_the_terminal_does(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ann", _run_with_a_diagnosed_failure())
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "gb.sqlite"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert "1 student page." in result.output and "student pages" not in result.output
    page = next((tmp_path / "site" / "students").glob("ann*.html"))
    dom, console = render_in_browser(page, tmp_path / "profile")
    assert console == []
    assert ".0 of" not in dom and ".0 points" not in dom and ".0 /" not in dom, dom[:3000]
    assert "130 of 132 points" in dom
    index, console = render_in_browser(tmp_path / "site" / "index.html", tmp_path / "profile")
    assert console == [] and "130 / 132" in index and "132.0" not in index
