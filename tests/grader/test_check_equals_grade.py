"""``llmgrade check ITEM`` gives exactly the verdict and points ``llmgrade grade`` gives that item.

For buggy submissions, each item's ``check`` result (grader.runner.commands.check_run, which grades
what the item needs of its dependencies) must equal its result in a grade of the whole set.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.runner.commands import check_items, check_run
from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
STACK = ["ch03.MultiHeadAttention", "ch04.GELU", "ch04.FeedForward", "ch04.LayerNorm",
         "ch04.TransformerBlock", "ch04.GPTModel"]
BUGS = {
    # a LayerNorm bug: TransformerBlock and GPTModel run it in their integration checks
    "layernorm-unbiased": ("ch04.LayerNorm", "ch04", "var = x.var(dim=-1, keepdim=True, unbiased=False)",
                           "var = x.var(dim=-1, keepdim=True, unbiased=True)"),
    # a causal mask built wrong in __init__, used by every model above it
    "mha-mask-in-init": ("ch03.MultiHeadAttention", "ch03",
                         'self.register_buffer("mask", torch.triu(torch.ones(context_length, '
                         'context_length), diagonal=1))',
                         'self.register_buffer("mask", torch.tril(torch.ones(context_length, '
                         'context_length), diagonal=-1))'),
}


def buggy(tmp_path: Path, module: str, find: str, replace: str, count: int = -1) -> Path:
    sub = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, sub, ignore=shutil.ignore_patterns("__pycache__"))
    path = sub / f"{module}.py"
    source = path.read_text("utf-8")
    assert find in source
    head, _, tail = source.rpartition(find)  # the last occurrence (MultiHeadAttention's mask)
    path.write_text(head + replace + tail, "utf-8")
    return sub


@pytest.mark.slow
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_check_gives_what_grade_gives(bug: str, tmp_path: Path) -> None:
    culprit, *edit = BUGS[bug]
    sub = buggy(tmp_path, *edit)
    graded = {item.id: item for item in grade_submission(sub, STACK).items}
    failing = [item for item in STACK if graded[item].status != "passed"]
    assert failing, f"{bug} should make at least one item fail"
    # the mistake is observed where the student's code runs it (a mask built in __init__ is kept, not
    # overwritten by the reference's weights) and charged once, to the item that has it: the
    # dependants' integration checks fail, blamed on it, and the dependants keep their points
    assert graded[culprit].status == "failed" and graded[culprit].points < graded[culprit].max_points
    for item in ("ch04.TransformerBlock", "ch04.GPTModel"):
        failed = [(c.name, c.blamed_on) for c in graded[item].checks if c.status != "passed"]
        assert graded[item].status == "passed" and failed and all(b == culprit for _, b in failed), (item, failed)
    for item in ("ch04.TransformerBlock", "ch04.GPTModel", *failing[:1]):
        (checked,) = check_run(sub, item).items
        want = graded[item]
        assert (checked.status, checked.points) == (want.status, want.points), item
        assert [(c.name, c.status, c.blamed_on) for c in checked.checks] == \
            [(c.name, c.status, c.blamed_on) for c in want.checks], item


@pytest.mark.slow
def test_a_kept_warm_check_that_grades_more_items_first_gives_the_same(tmp_path: Path) -> None:
    """A keeper's standby grades the item with what the last check of it also needed
    (grader/runner/keep_warm.py): items graded beyond those the item used change nothing for it."""
    sub = buggy(tmp_path, *BUGS["mha-mask-in-init"][1:])
    for item in ("ch03.MultiHeadAttention", "ch04.TransformerBlock"):
        (cold,) = check_run(sub, item).items
        run, graded = check_items(lambda ids: grade_submission(sub, ids), [item], first=STACK)
        (warm,) = run.items
        assert graded == STACK  # everything it used was already there: no second run
        assert (warm.status, warm.points) == (cold.status, cold.points), item
        assert [(c.name, c.status, c.blamed_on) for c in warm.checks] == \
            [(c.name, c.status, c.blamed_on) for c in cold.checks], item
