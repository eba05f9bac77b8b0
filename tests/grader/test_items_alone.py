"""Every catalog item checked alone (``llmgrade check ID``) on solutions/ and on the book author's
package, for the items it implements: each passes with full marks, as in a full grade. An item
checked alone gets a fresh worker holding only its own reference view, a fork server warmed for one
item, no runners: whatever differs from a full grade shows here (issue 19: ``check 5.1`` on the
model answers was once called a use of the answer key)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.catalog import ITEMS, MODULES
from grader.runner.commands import check_run
from tests.grader.test_book_package import package_dir, top_level_names

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def _check_each(submission: Path, item_ids: list[str]) -> dict[str, str]:
    """``{item: what went wrong}`` for every item that is not passed with full marks alone."""
    def one(item_id: str) -> tuple[str, str]:
        run = check_run(submission, item_id, time_scale=3.0)
        (result,) = run.items
        if result.status == "passed" and result.points == result.max_points and run.status == "complete":
            return item_id, ""
        failed = [f"{c.name}: {c.message[:300]}" for c in result.checks if c.status != "passed"]
        return item_id, f"{result.status} {result.points}/{result.max_points} {result.message[:300]} {failed}"

    with ThreadPoolExecutor(max_workers=2) as pool:  # two cold checks at a time keep both cores busy
        return {item_id: why for item_id, why in pool.map(one, item_ids) if why}


@pytest.mark.slow
def test_every_item_alone_on_the_model_answers() -> None:
    assert _check_each(SOLUTIONS, [item.id for item in ITEMS]) == {}


@pytest.mark.slow
def test_every_item_the_book_package_implements_alone(tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    submission.mkdir()
    for module in MODULES:
        shutil.copyfile(package_dir() / f"{module}.py", submission / f"{module}.py")
    names = {module: top_level_names(submission / f"{module}.py") for module in MODULES}
    implemented = [item.id for item in ITEMS if set(item.symbols) <= names[item.module]]
    assert len(implemented) >= 30
    assert _check_each(submission, implemented) == {}
