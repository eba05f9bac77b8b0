"""A hang costs its item once: once an item's code has not finished in time, a later check of an
item that builds on it runs with it swapped for the reference's (and is charged to it) instead of
waiting on the same hang again (grader/sandbox/parent.py ``Student.broken``, scoring's
``forced_swaps``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_dependents_of_a_hanging_item_do_not_wait_on_it_again(tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    ch03 = submission / "ch03.py"
    ch03.write_text(ch03.read_text("utf-8") + "\n\ndef _hang(self, x):\n    while True:\n        pass\n\n\n"
                    "MultiHeadAttention.forward = _hang\n", "utf-8")

    run = grade_submission(submission, ["ch03.MultiHeadAttention", "ch04.TransformerBlock", "ch04.GPTModel"])

    items = {item.id: item for item in run.items}
    timeouts = [(item.id, c.name) for item in run.items for c in item.checks
                if c.details.get("kind") == "timeout" and "skipped" not in c.message_id]
    assert timeouts == [("ch03.MultiHeadAttention", timeouts[0][1])], timeouts  # waited on once
    assert items["ch03.MultiHeadAttention"].status == "failed"
    for dependent in ("ch04.TransformerBlock", "ch04.GPTModel"):
        item = items[dependent]
        forced = [c for c in item.checks if c.details.get("forced_swaps")]
        assert forced, f"{dependent} ran no check with the hanging MultiHeadAttention swapped out"
        # counted for the dependent (its own code passed with the reference's attention), and said so
        assert all(c.details["forced_swaps"] == ["ch03.MultiHeadAttention"] and c.blamed_on is None
                   and c.status == "passed" and f"ran {dependent}" in c.message for c in forced
                   if not c.details.get("extension")), [(c.name, c.message) for c in forced]
        assert item.status == "passed", [(c.name, c.status, c.message[:120]) for c in item.checks]
