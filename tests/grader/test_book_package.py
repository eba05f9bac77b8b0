"""The book author's published package (``llms-from-scratch``, the book's own code) graded as a
submission: its chapter modules copied into a folder as a student would copy them, nothing added.

Every item whose names the package defines scores full marks; every item it lacks is reported as
missing, each once (status ``error``, one missing-name load error naming it). The package is a
test dependency: ``pip install --no-deps llms-from-scratch==1.0.19`` (README set-up).
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

import pytest

from grader.catalog import ITEMS, MODULES
from grader.results import GradeRun
from grader.runner.run import grade_submission

PACKAGE = "llms_from_scratch"
# The book's forms that differ from the exercises (BOOK_FACTS): these items must be among those graded.
BOOK_FORMS = {"ch04.GPTModel", "ch05.load_weights_into_gpt", "appendix_d.find_highest_gradient",
              "appendix_d.train_model", "ch06.create_balanced_dataset", "ch06.classify_review",
              "appendix_e.LoRALayer", "appendix_e.LinearWithLoRA", "appendix_e.replace_linear_with_lora"}


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations, (
        "The author's package is not installed; install it with "
        "`pip install --no-deps llms-from-scratch==1.0.19` (see the README's set-up).")
    return Path(next(iter(spec.submodule_search_locations)))


def top_level_names(path: Path) -> set[str]:
    """Names a module defines or imports at the top level (what ``hasattr`` will find)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[GradeRun, dict[str, set[str]]]:
    source = package_dir()
    submission = tmp_path_factory.mktemp("book-package") / "submission"
    submission.mkdir()
    for module in MODULES:
        shutil.copyfile(source / f"{module}.py", submission / f"{module}.py")
    names = {module: top_level_names(submission / f"{module}.py") for module in MODULES}
    return grade_submission(submission, time_scale=3.0), names


@pytest.mark.slow
def test_every_item_the_package_implements_scores_full_marks(graded: tuple[GradeRun, dict[str, set[str]]]) -> None:
    run, names = graded
    implemented = {item.id for item in ITEMS if set(item.symbols) <= names[item.module]}
    assert BOOK_FORMS <= implemented
    results = {result.id: result for result in run.items}
    assert sorted(results) == sorted(item.id for item in ITEMS)
    short = {item_id: f"{results[item_id].status} {results[item_id].points}/{results[item_id].max_points}: "
                      f"{results[item_id].message}"
             for item_id in sorted(implemented)
             if results[item_id].status != "passed" or results[item_id].points != results[item_id].max_points}
    assert short == {}
    assert run.status == "complete"


@pytest.mark.slow
def test_every_item_the_package_lacks_is_reported_missing_once(graded: tuple[GradeRun, dict[str, set[str]]]) -> None:
    run, names = graded
    lacking = {item.id: [s for s in item.symbols if s not in names[item.module]] for item in ITEMS}
    lacking = {item_id: absent for item_id, absent in lacking.items() if absent}
    assert lacking, "the package implements every item: this test no longer shows anything"
    assert [e for e in run.load_errors if e.kind != "missing_name"] == []
    reported = sorted(tuple(e.names) for e in run.load_errors)
    assert reported == sorted(tuple(absent) for absent in lacking.values())
    results = {result.id: result for result in run.items}
    for item_id, absent in lacking.items():
        assert results[item_id].status == "error" and results[item_id].points == 0
        assert item_id in results[item_id].message and absent[0] in results[item_id].message


@pytest.mark.slow
def test_the_books_deviations_show_as_extension_checks(graded: tuple[GradeRun, dict[str, set[str]]]) -> None:
    """Stricter behaviour than the book is shown (a failed extension check), never counted."""
    run, _ = graded
    results = {result.id: result for result in run.items}
    for item_id in ("appendix_d.find_highest_gradient", "appendix_d.train_model", "ch06.classify_review",
                    "ch06.create_balanced_dataset", "appendix_e.LinearWithLoRA",
                    "appendix_e.replace_linear_with_lora"):
        failed = [c.name for c in results[item_id].checks if c.status == "failed"]
        assert failed and all(c.details.get("extension") for c in results[item_id].checks if c.status == "failed"), \
            (item_id, failed)
