"""Each buggy variant of the solutions fails the right item with the right diagnosis; each correct
alternative passes. Runs the real grader (worker process and all) on a patched copy of solutions/."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

import tests.grader.variants as variants_pkg
from grader.run import grade_submission
from tests.grader.variants import Variant

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def _all_variants() -> list[Variant]:
    found: list[Variant] = []
    for info in pkgutil.iter_modules(variants_pkg.__path__):
        module = importlib.import_module(f"{variants_pkg.__name__}.{info.name}")
        found.extend(getattr(module, "VARIANTS", []))
    return found


def apply(variant: Variant, target: Path) -> None:
    path = target / f"{variant.module}.py"
    source = path.read_text("utf-8")
    occurrences = source.count(variant.find)
    assert occurrences >= 1, f"variant {variant.id}: snippet not found in solutions/{variant.module}.py"
    if variant.count == -1:  # the last occurrence (e.g. MultiHeadAttention's copy of a line)
        head, sep, tail = source.rpartition(variant.find)
        source = head + variant.replace + tail
    elif variant.count == 0:
        source = source.replace(variant.find, variant.replace)
    else:
        source = source.replace(variant.find, variant.replace, variant.count)
    path.write_text(source, "utf-8")


@pytest.mark.parametrize("variant", _all_variants(), ids=lambda v: v.id)
def test_variant_is_graded_as_expected(variant: Variant, tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    apply(variant, submission)
    run = grade_submission(submission, [variant.item])
    (result,) = run.items
    if variant.passes:
        assert result.status == "passed", result.checks
        return
    assert result.status == "failed", f"{variant.id}: expected a failure, got {result.status}"
    if variant.diagnosis is not None:
        diagnoses = {check.diagnosis for check in result.checks if check.status == "failed"}
        assert variant.diagnosis in diagnoses, f"{variant.id}: diagnoses given were {diagnoses}"
