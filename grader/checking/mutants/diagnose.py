"""Name a mistake nobody wrote a diagnosis for: the reference mutant that reproduces it.

Called by the pytest hook (``grader/checking/fixtures.py``) when a check fails without a named
mistake. Only an exact match counts: the mutant must pass every failing check of the item so far
(the checks of an item run one after the other in one process, so the candidates left by its
earlier failing checks are all this one tries). One mutant left is named; two or three are said as
"one of"; none, or more, leave the check's own message. Hand-written diagnoses keep priority: a
failure that already names one never comes here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from grader.checking.failures import GradeFailure
from grader.checking.mutants.generate import Mutant, mutants_for
from grader.messages import Phrase, phrase
from grader.sandbox.parent import Answer

BUDGET_ENV = "LLMGRADE_MUTANT_BUDGET_S"
DEFAULT_BUDGET_S = 1.0  # per failing check: what naming the mistake may add to it
MOST_NAMED = 3  # more matches than this say nothing useful

# failures whose message already says what is wrong, or that no slip of the code explains; an
# exception of the student's own says its type, file and line, which a guessed mutant would hide
_ALREADY_SAID = {"module.buffer_wrong", "compare.keys_missing", "compare.keys_unexpected", "module.plain_tensor",
                 "check.student_raised"}
_NOT_A_SLIP = ("timeout", "memory", "skipped", "crashed", "exited", "too_large", "not_loaded", "bad_value")

# item id -> the mutants that matched every failing check of that item so far (this process)
_SURVIVORS: dict[str, list[Mutant]] = {}


def budget_s() -> float:
    try:
        return max(0.0, float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_S)))
    except ValueError:
        return DEFAULT_BUDGET_S


def name_mistake(failure: GradeFailure, item: str | None, calls: Sequence[Answer], ref: Any,
                 check: Callable[[Any, Any], None]) -> GradeFailure | None:
    """``failure`` said again with the mutant(s) that reproduce it, or None (no exact match)."""
    if item is None or failure.diagnosis is not None or not calls or failure.message_id.startswith("mutant.") \
            or failure.message_id in _ALREADY_SAID or any(word in failure.message_id for word in _NOT_A_SLIP):
        return None
    candidates = _SURVIVORS.get(item)
    if candidates is None:
        candidates = mutants_for(item)
    if not candidates:
        return None
    from grader.checking.mutants.match import matching  # imports torch: not at the worker's start-up

    found, complete = matching(candidates, calls, check, ref.device, item, budget_s(), base=ref)
    # A mutant not tried for lack of time stays a candidate of a later check only if it was tried
    # here; untried ones are dropped too (an exact match on every failing check is the rule).
    _SURVIVORS[item] = found
    if not found or len(found) > MOST_NAMED:
        return None
    del complete
    return _said_again(failure, found)


def forget(item: str) -> None:
    """The item's checks are over (its worker is stopped): its candidates are no longer needed."""
    _SURVIVORS.pop(item, None)


def change_phrase(mutant: Mutant) -> Phrase:
    params = {k: v for k, v in mutant.change.params.items() if k != "all"}
    key = f"mutant.change.{mutant.change.operator}"
    if mutant.change.params.get("all"):
        key += "_all"
    return phrase(key, **params)


def _said_again(failure: GradeFailure, found: list[Mutant]) -> GradeFailure:
    original = phrase(failure.message_id, **failure.params)
    details = {**failure.details, "mutants": [m.describe() for m in found]}
    if len(found) == 1:
        mutant = found[0]
        named = GradeFailure("mutant.one", message=original, change=change_phrase(mutant), line=mutant.line,
                             file=f"reference/{mutant.module}.py", lineno=mutant.change.lineno, details=details)
    else:
        changes = [phrase("mutant.change_at", change=change_phrase(m), line=m.line, lineno=m.change.lineno)
                   for m in found]
        named = GradeFailure("mutant.several", message=original,
                             changes=phrase(f"mutant.list{len(changes)}", **{f"c{i}": c for i, c in enumerate(changes)}),
                             file=f"reference/{found[0].module}.py", details=details)
    return named
