"""The answer-key tripwire does not mistake a library's own look-ups for the student's use of the key.

``inspect.getmodule`` reads ``__class__`` and ``__file__`` of every loaded module, reference modules
included; torch calls it while the student's code is on the stack when it registers lazily imported
operators (the first model built on the meta device, the first ``torch.optim`` step). Graded alone,
in a fresh worker, the model answers of those items must pass (tests/redteam/test_key_watch.py:
any other read of a reference module is still refused).
"""

from __future__ import annotations

from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_items_graded_alone_are_not_taken_for_the_answer_key() -> None:
    # GPTModel builds the book-size model on the meta device; 5.4 runs the student's AdamW loop.
    for item in ("ch04.GPTModel", "5.4"):
        (graded,) = grade_submission(SOLUTIONS, [item]).items
        summary = [(c.name, c.status, c.message[:200]) for c in graded.checks if c.status != "passed"]
        assert (graded.status, graded.points) == ("passed", graded.max_points), (item, summary)

