"""Buggy and alternative versions of the solutions, each a small text edit of one solution module.

A ``Variant`` names the module, an exact snippet of ``solutions/<module>.py`` and its replacement,
the item it affects, and what grading must say: ``diagnosis`` (a named mistake the failure must
carry; ``points`` and ``message_id`` pin the score and the failure's message), or ``passes=True`` for a
correct alternative implementation that must still pass. A variant that does what the book does where
the exercise asks for more passes, and names in ``extension`` the diagnosis its failed extension check
(shown, not counted) must carry.
``mutant`` names the reference mutant that must reproduce a mistake nobody wrote a diagnosis for
(``unanticipated.py``). Add variants to the file of your chapter; ``tests/grader/test_variants.py`` runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    id: str
    module: str
    find: str
    replace: str
    item: str
    diagnosis: str | None = None
    passes: bool = False
    extension: str | None = None  # with passes=True: the diagnosis of a failed extension check
    count: int = 1  # occurrences of ``find`` to replace from the start (0: all, -1: only the last)
    points: float | None = None  # the item's points the grade must give, when stated
    message_id: str | None = None  # a failed check of the item must carry this message id, when stated
    # a mistake with no hand-written diagnosis: (operator, a piece of the reference line) of the
    # reference mutant that a failed check of the item must name (grader/checking/mutants/)
    mutant: tuple[str, str] | None = None


def mutants_named(result: Any) -> list[dict[str, Any]]:
    """The reference mutants that an item result's failed checks name (``details["mutants"]``)."""
    found = []
    for check in result.checks:
        if check.status == "failed":
            found.extend(m for m in (check.details or {}).get("mutants", []) if isinstance(m, dict))
    return found


def named(variant: Variant, result: Any) -> bool:
    """Whether a failed check of ``result`` says what ``variant``'s mistake is: its hand-written
    diagnosis, or the reference mutant it expects (the operator, and the piece of the reference
    line in the quoted line or in what the change says)."""
    failed = [c for c in result.checks if c.status == "failed"]
    if variant.diagnosis is not None:
        return any(c.diagnosis == variant.diagnosis for c in failed)
    if variant.mutant is None:
        return False
    operator, fragment = variant.mutant
    return any(m.get("operator") == operator and any(fragment in str(v) for v in m.values())
               for m in mutants_named(result))
