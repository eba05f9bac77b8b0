"""Each buggy variant of the solutions fails the right item with the right diagnosis; each correct
alternative passes. Runs the real grader (worker process and all) on patched copies of solutions/.

To keep the suite fast, variants are packed into batches: one submission per batch carries several
variants, each for a different item (and with edits that do not overlap), and one grading run
grades exactly those items. Every variant's own expectation is still asserted separately.
"""

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


def all_variants() -> list[Variant]:
    found: list[Variant] = []
    for info in pkgutil.iter_modules(variants_pkg.__path__):
        module = importlib.import_module(f"{variants_pkg.__name__}.{info.name}")
        found.extend(getattr(module, "VARIANTS", []))
    return found


def apply(variant: Variant, source: str) -> str:
    """``source`` with the variant's edit; ``ValueError`` when its snippet is not there."""
    if variant.find not in source:
        raise ValueError(variant.id)
    if variant.count == -1:  # the last occurrence (e.g. MultiHeadAttention's copy of a line)
        head, _, tail = source.rpartition(variant.find)
        return head + variant.replace + tail
    if variant.count == 0:
        return source.replace(variant.find, variant.replace)
    return source.replace(variant.find, variant.replace, variant.count)


def pristine(module: str) -> str:
    return (SOLUTIONS / f"{module}.py").read_text("utf-8")


def batches(variants: list[Variant]) -> list[list[Variant]]:
    """Greedy packing: distinct items per batch, edits that still apply after the others."""
    packed: list[tuple[list[Variant], dict[str, str]]] = []
    for variant in variants:
        apply(variant, pristine(variant.module))  # a snippet missing from solutions/ is a test bug
        for members, sources in packed:
            if any(m.item == variant.item for m in members):
                continue
            before = sources.get(variant.module, pristine(variant.module))
            try:
                after = apply(variant, before)
            except ValueError:
                continue
            # The edit must not change the snippets of variants already in the batch.
            if any(m.module == variant.module and m.replace and m.replace not in after for m in members):
                continue
            members.append(variant)
            sources[variant.module] = after
            break
        else:
            packed.append(([variant], {variant.module: apply(variant, pristine(variant.module))}))
    return [members for members, _ in packed]


BATCHES = batches(all_variants())


def test_every_variant_snippet_exists_and_ids_are_unique() -> None:
    variants = all_variants()
    ids = [v.id for v in variants]
    assert len(ids) == len(set(ids))
    assert sum(len(b) for b in BATCHES) == len(variants)


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: "+".join(v.id for v in b)[:120])
def test_variants_are_graded_as_expected(batch: list[Variant], tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    for variant in batch:
        path = submission / f"{variant.module}.py"
        path.write_text(apply(variant, path.read_text("utf-8")), "utf-8")
    run = grade_submission(submission, [v.item for v in batch], time_scale=3.0)
    results = {item.id: item for item in run.items}
    problems: list[str] = []
    for variant in batch:
        result = results[variant.item]
        if variant.passes:
            if result.status != "passed":
                problems.append(f"{variant.id}: a correct alternative got {result.status}: {result.message}")
            continue
        if result.status != "failed":
            problems.append(f"{variant.id}: expected {variant.item} to fail, got {result.status}")
            continue
        if variant.diagnosis is not None:
            diagnoses = {c.diagnosis for c in result.checks if c.status == "failed"}
            if variant.diagnosis not in diagnoses:
                problems.append(f"{variant.id}: expected diagnosis {variant.diagnosis}, got {diagnoses}")
    assert problems == []
