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

# failures whose message already says what is wrong, or that no slip of the code explains (an
# exception of the student's own keeps its type, file and line: the mutant is said after them)
_ALREADY_SAID = {"module.buffer_wrong", "compare.keys_missing", "compare.keys_unexpected", "module.plain_tensor"}
_NOT_A_SLIP = ("timeout", "memory", "skipped", "crashed", "exited", "too_large", "not_loaded", "bad_value")

# item id -> the mutants that matched every failing check of that item so far (this process)
_SURVIVORS: dict[str, list[Mutant]] = {}
# item id -> the checks of that item the student passed so far: (recorded answers, check body)
_PASSED: dict[str, list[tuple[list[Answer], Callable[[Any, Any], None]]]] = {}
# the items whose mutants were made in this process and may hold results (Mutant.memo)
_SEARCHED: set[str] = set()
# item id -> its failing checks whose time ran out before any mutant matched: a mutant found later
# must reproduce them too before it is named
_UNVERIFIED: dict[str, list[tuple[list[Answer], Callable[[Any, Any], None]]]] = {}


def budget_s() -> float:
    try:
        return max(0.0, float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_S)))
    except ValueError:
        return DEFAULT_BUDGET_S


def name_mistake(failure: GradeFailure, item: str | None, calls: Sequence[Answer], ref: Any,
                 check: Callable[[Any, Any], None]) -> GradeFailure | None:
    """``failure`` said again with the mutant(s) that reproduce it, or None (no exact match).

    A hand-written diagnosis keeps priority: mutants are only tried for its check when they already
    reproduced every earlier failing check of the item, and then both are said (the diagnosis is
    matched on this check's output alone; the mutants on all the evidence). A failing check whose
    time ran out before any mutant matched is kept, and a mutant found later is named only once it
    reproduces that check too. Of several mutants that match, those that would have failed a check
    the student passed are not the mistake."""
    if item is None or not calls or failure.message_id.startswith("mutant.") \
            or failure.message_id in _ALREADY_SAID or any(word in failure.message_id for word in _NOT_A_SLIP):
        return None
    candidates = _SURVIVORS.get(item)
    if failure.diagnosis is not None and not candidates:
        return None
    if candidates is None:
        candidates = mutants_for(item)
    _SEARCHED.add(item)
    if not candidates:
        return None
    from grader.checking.mutants.match import matching, spent  # imports torch: not at the worker's start-up

    end = spent() + budget_s()
    found, complete = matching(candidates, calls, check, ref.device, item, budget_s(), base=ref,
                               helpers_first=True)
    if not found and not complete:
        _UNVERIFIED.setdefault(item, []).append((list(calls), check))
        return None
    # A mutant not tried for lack of time is dropped: an exact match on every failing check is the rule.
    _SURVIVORS[item] = found
    if found and _UNVERIFIED.get(item):
        found, verified = _consistent(item, found, _UNVERIFIED[item], ref, end)
        if not verified:
            return None
        _UNVERIFIED.pop(item)
        _SURVIVORS[item] = found
    if len(found) > 1:
        found, _ = _consistent(item, found, _PASSED.get(item, []), ref, end, narrow_only=True)
        _SURVIVORS[item] = found
    if not found or len(found) > MOST_NAMED:
        return None
    return _said_again(failure, found)


def passed(item: str | None, calls: Sequence[Answer], check: Callable[[Any, Any], None]) -> None:
    """Keep a check the student passed (its recorded answers and its body): evidence against the
    mutants that would have failed it."""
    if item is not None and calls:
        _PASSED.setdefault(item, []).append((list(calls), check))


def _consistent(item: str, found: list[Mutant], evidence: Sequence[tuple[list[Answer], Callable[[Any, Any], None]]],
                ref: Any, end: float, narrow_only: bool = False) -> tuple[list[Mutant], bool]:
    """Of ``found``, the mutants under which each of these checks passes on the student's answers
    (a failing check: the mutant reproduces it; a passing one: it would have passed too), and
    whether time allowed every check. ``narrow_only``: stop once one mutant is left."""
    from grader.checking.mutants.match import matching, spent

    for calls, check in evidence:
        left = end - spent()
        if narrow_only and len(found) <= 1:
            break
        if left <= 0:
            return found, False
        consistent, complete = matching(found, calls, check, ref.device, item, left, base=ref)
        if not complete:
            return found, False
        found = consistent
    return found, True


def forget(item: str) -> None:
    """The item's checks are over (its worker is stopped): its candidates are no longer needed."""
    _SURVIVORS.pop(item, None)
    _PASSED.pop(item, None)
    _UNVERIFIED.pop(item, None)
    if item in _SEARCHED:  # (an item that never failed never had its mutants made: not now either)
        _SEARCHED.discard(item)
        for mutant in mutants_for(item):
            mutant.memo.clear()


def change_phrase(mutant: Mutant) -> Phrase:
    params = {k: v for k, v in mutant.change.params.items() if k != "all"}
    key = f"mutant.change.{mutant.change.operator}"
    if mutant.change.params.get("all"):
        key += "_all"
    return phrase(key, **params)


def _said_again(failure: GradeFailure, found: list[Mutant]) -> GradeFailure:
    """The failure's own message, then the mutant(s); a hand-written diagnosis stays, said last."""
    original = phrase(failure.message_id, **failure.params)
    # the check's own message id stays in the details: the student's exception is still the failure
    details = {**failure.details, "mutants": [m.describe() for m in found], "named_from": failure.message_id}
    raised = failure.message_id == "check.student_raised"
    if len(found) == 1:
        mutant = found[0]
        return GradeFailure("mutant.raised" if raised else "mutant.one", message=original,
                            change=change_phrase(mutant), line=mutant.line, file=f"reference/{mutant.module}.py",
                            lineno=mutant.change.lineno, diagnosis=failure.diagnosis, details=details)
    changes = [phrase("mutant.change_at", change=change_phrase(m), line=m.line, lineno=m.change.lineno)
               for m in found]
    return GradeFailure("mutant.raised_several" if raised else "mutant.several", message=original,
                        changes=phrase(f"mutant.list{len(changes)}", **{f"c{i}": c for i, c in enumerate(changes)}),
                        file=f"reference/{found[0].module}.py", diagnosis=failure.diagnosis, details=details)
