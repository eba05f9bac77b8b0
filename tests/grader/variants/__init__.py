"""Buggy and alternative versions of the solutions, each a small text edit of one solution module.

A ``Variant`` names the module, an exact snippet of ``solutions/<module>.py`` and its replacement,
the item it affects, and what grading must say: ``diagnosis`` (a named mistake the failure must
carry), or ``passes=True`` for a correct alternative implementation that must still pass.
Add variants to the file of your chapter; ``tests/grader/test_variants.py`` runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    id: str
    module: str
    find: str
    replace: str
    item: str
    diagnosis: str | None = None
    passes: bool = False
    count: int = 1  # occurrences of ``find`` to replace from the start (0: all, -1: only the last)
