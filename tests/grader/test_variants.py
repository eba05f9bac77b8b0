"""Each buggy variant of the solutions fails the right item with the right diagnosis; each correct
alternative passes. Runs the real grader (worker process and all) on patched copies of solutions/.

To keep the suite fast, variants are packed into batches: one submission per batch carries several
variants, each for a different item and each editing only its own item's code, and one grading run
grades exactly those items. Every variant's own expectation is still asserted separately.
"""

from __future__ import annotations

from typing import Any

import ast
import difflib
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

import tests.grader.variants as variants_pkg
from grader.messages import _load, has
from grader.catalog import BY_ID
from grader.runner.run import grade_submission
from grader.checking.mutants.diagnose import BUDGET_ENV
from tests.grader.variants import Variant, mutants_named, named

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
# CPU seconds per failing check for the mistakes that a reference mutant must name: above the
# default (1 s), so that a slower machine names the same ones; bench/bench_named_rate.py measures
# what the default budget names and costs.
NAMING_BUDGET_S = 3.0


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


def touched(variant: Variant, before: str | None = None) -> set[str]:
    """The top-level names of ``before`` (default: solutions/<module>.py) that the edit changes."""
    before = pristine(variant.module) if before is None else before
    after = apply(variant, before)
    spans = [(node.lineno, node.end_lineno or node.lineno, getattr(node, "name", "<module>"))
             for node in ast.parse(before).body]
    changed: set[int] = set()
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            changed.update(range(i1 + 1, max(i2, i1 + 1) + 1))
    return {name for start, end, name in spans if any(start <= line <= end for line in changed)} or {"<module>"}


def dependencies(item: str) -> set[str]:
    seen: set[str] = set()
    stack = list(BY_ID[item].depends)
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(BY_ID[dep].depends)
    return seen


def compatible(variant: Variant, members: list[Variant], independent: bool = False) -> bool:
    """Variants share a run only when none can change what another one is graded on. ``independent``:
    also none of an item that another one depends on (so no failure can be charged to a member)."""
    for other in members:
        if other.item == variant.item or (other.mutant is None) != (variant.mutant is None):
            return False  # (mistakes named by a mutant run with their own budget: NAMING_BUDGET_S)
        if independent and (other.item in dependencies(variant.item) or variant.item in dependencies(other.item)):
            return False
        # A correct alternative must not be graded next to a bug in one of its dependencies.
        if variant.passes and not other.passes and other.item in dependencies(variant.item):
            return False
        if other.passes and not variant.passes and variant.item in dependencies(other.item):
            return False
    return True


def batches(variants: list[Variant], independent: bool = False) -> list[list[Variant]]:
    """Greedy packing of variants that edit only their own item's code into shared runs; a
    variant that edits anything else (a helper, another item's code) is graded alone."""
    packed: list[tuple[list[Variant], dict[str, str]]] = []
    for variant in variants:
        if not touched(variant) <= set(BY_ID[variant.item].names):
            packed.append(([variant], {}))
            continue
        for members, sources in packed:
            if not sources or not compatible(variant, members, independent):
                continue
            before = sources.get(variant.module, pristine(variant.module))
            try:
                # Applied to the batch's source, it must still edit only its own item's code.
                if not touched(variant, before) <= set(BY_ID[variant.item].names):
                    continue
                after = apply(variant, before)
            except ValueError:
                continue
            members.append(variant)
            sources[variant.module] = after
            break
        else:
            packed.append(([variant], {variant.module: apply(variant, pristine(variant.module))}))
    return [members for members, _ in packed]


BATCHES = batches(all_variants())


def test_every_variant_is_a_real_edit_of_its_items_module() -> None:
    """Each variant's snippet is in solutions/<module>.py, the edit changes the code and leaves valid
    Python, and it names a catalog item of that module and, if any, a diagnosis that exists."""
    variants = all_variants()
    ids = [v.id for v in variants]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    problems: list[str] = []
    for variant in variants:
        item = BY_ID.get(variant.item)
        if item is None or item.module != variant.module:
            problems.append(f"{variant.id}: {variant.item} is not an item of module {variant.module}")
            continue
        try:
            after = apply(variant, pristine(variant.module))
        except ValueError:
            problems.append(f"{variant.id}: its snippet is not in solutions/{variant.module}.py")
            continue
        if after == pristine(variant.module):
            problems.append(f"{variant.id}: the edit changes nothing")
        try:
            ast.parse(after)
        except SyntaxError as error:
            problems.append(f"{variant.id}: the edited module is not valid Python ({error})")
        if variant.passes and variant.diagnosis is not None:
            problems.append(f"{variant.id}: a correct alternative cannot carry a diagnosis")
        elif variant.diagnosis is not None and not has(f"diagnosis.{variant.diagnosis}"):
            problems.append(f"{variant.id}: diagnosis {variant.diagnosis} is not in the message catalog")
    assert problems == []


def named_diagnoses() -> set[str]:
    """Every named mistake: the ``diagnosis.<id>`` message ids of the English catalog."""
    return {key.removeprefix("diagnosis.") for key in _load("en") if key.startswith("diagnosis.")}


def test_every_named_diagnosis_is_proven_by_a_variant() -> None:
    # a diagnosis that only an extension check reports (the book's code makes that mistake) is
    # proven by a book-form variant that passes with that extension check failing
    proven = {name for v in all_variants() for name in (v.diagnosis, v.extension) if name is not None}
    assert len(named_diagnoses()) > 100  # the scan really read the diagnoses
    assert sorted(named_diagnoses() - proven) == []


def _grade(batch: list[Variant], submission: Path) -> dict[str, Any]:
    """Grade the model answers with every variant of ``batch`` applied; the results by item id."""
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    for variant in batch:
        path = submission / f"{variant.module}.py"
        path.write_text(apply(variant, path.read_text("utf-8")), "utf-8")
    run = grade_submission(submission, [v.item for v in batch], time_scale=3.0)
    return {item.id: item for item in run.items}


def _blamed_on_a_neighbour(batch: list[Variant], results: dict[str, Any]) -> list[Variant]:
    """The variants whose item used another member's buggy item, which took the charge (issue 10's
    blame rule): their verdicts say nothing about them."""
    members = {v.item for v in batch}
    return [v for v in batch if any(c.blamed_on in members - {v.item} for c in results[v.item].checks)]


def _verdicts(batch: list[Variant], tmp_path: Path) -> dict[str, Any]:
    """Each variant's item result, by variant id. A variant whose failures were charged to another
    member is graded again without the items it depends on: those variants are packed again into
    runs where no member depends on another (one run for several of them), and one that is still
    charged to a neighbour there is graded alone."""
    results = _grade(batch, tmp_path / "submission")
    verdicts = {v.id: results[v.item] for v in batch}
    for n, again in enumerate(batches(_blamed_on_a_neighbour(batch, results), independent=True)):
        regraded = _grade(again, tmp_path / f"again-{n}")
        for variant in again:
            verdicts[variant.id] = regraded[variant.item]
        for variant in _blamed_on_a_neighbour(again, regraded):
            verdicts[variant.id] = _grade([variant], tmp_path / f"alone-{variant.id}")[variant.item]
    return verdicts


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: "+".join(v.id for v in b)[:120])
def test_variants_are_graded_as_expected(batch: list[Variant], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if any(v.mutant is not None for v in batch):
        monkeypatch.setenv(BUDGET_ENV, str(NAMING_BUDGET_S))
    verdicts = _verdicts(batch, tmp_path)
    problems: list[str] = []
    for variant in batch:
        result = verdicts[variant.id]
        if variant.passes:
            if result.status != "passed":
                problems.append(f"{variant.id}: a correct alternative got {result.status}: {result.message}")
            # a reference mutant that reproduces the failure says so after the check's own message
            extension = {name for c in result.checks if c.status == "failed" and c.details.get("extension")
                         for name in (c.diagnosis, c.message_id, c.details.get("named_from"))}
            if variant.extension is not None and variant.extension not in extension:
                problems.append(f"{variant.id}: expected an extension check to report {variant.extension}, "
                                f"got {extension}")
            continue
        if result.status != "failed":
            problems.append(f"{variant.id}: expected {variant.item} to fail, got {result.status}")
            continue
        if variant.diagnosis is not None:
            diagnoses = {c.diagnosis for c in result.checks if c.status == "failed"}
            if variant.diagnosis not in diagnoses:
                problems.append(f"{variant.id}: expected diagnosis {variant.diagnosis}, got {diagnoses}")
        if variant.points is not None and abs(result.points - variant.points) > 1e-9:
            problems.append(f"{variant.id}: expected {variant.points} points, got {result.points}")
        if variant.message_id is not None:
            ids = {c.message_id for c in result.checks if c.status == "failed"}
            if variant.message_id not in ids:
                problems.append(f"{variant.id}: expected a failure {variant.message_id}, got {ids}")
        if variant.mutant is not None and not named(variant, result):
            problems.append(f"{variant.id}: expected the mutant {variant.mutant} to be named, got "
                            f"{[(m.get('operator'), m.get('line')) for m in mutants_named(result)]} in "
                            f"{[c.message for c in result.checks if c.status == 'failed'][:2]}")
    assert problems == []
