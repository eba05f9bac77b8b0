"""Parts of the reference-mutant matcher (grader/checking/mutants/) that grading variants cannot
show on their own: the operators' edits, and the time budget's timer never breaking an import."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from grader.checking.mutants import match
from grader.checking.mutants.generate import mutants_for
from grader.checking.mutants.operators import changes


def _edited(source: str, operator: str) -> list[str]:
    """Every version of ``source``'s function that ``operator`` proposes, as source text."""
    tree = ast.parse(textwrap.dedent(source)).body[0]
    found = []
    for change in changes(tree):
        if change.operator != operator:
            continue
        copy = ast.parse(textwrap.dedent(source)).body[0]
        nodes = list(ast.walk(copy))
        for index, edit in change.edits:
            edit(nodes[index])
        found.append(ast.unparse(copy))
    return found


def test_the_names_of_two_operands_are_exchanged_with_what_is_around_them_kept() -> None:
    edited = _edited("def f(queries, keys):\n    return queries @ keys.T\n", "swap_operands")
    assert any("return keys @ queries.T" in text for text in edited)  # a student's slip
    assert any("return keys.T @ queries" in text for text in edited)  # the plain swap stays


def test_a_comparison_is_reversed() -> None:
    edited = _edited("def f(a, b):\n    if a > b:\n        return a\n    return b\n", "flip_compare")
    assert edited == ["def f(a, b):\n    if a < b:\n        return a\n    return b"]


def test_a_dropped_keyword_is_quoted_at_its_own_line() -> None:
    source = "def f(x, y):\n    return g(x,\n             y=y,\n             z=1)\n"
    tree = ast.parse(source).body[0]
    lines = {c.params["keyword"]: c.lineno for c in changes(tree) if c.operator == "drop_keyword"}
    assert lines == {"y=y": 3, "z=1": 4}


def test_the_budget_never_stops_an_import_half_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module that computes for 0.4 s while it is imported, under a 0.05 s budget: the budget
    runs out after the import, and the module is whole (a half-imported one would break every
    later check that imports it)."""
    (tmp_path / "slow_to_import.py").write_text(textwrap.dedent("""
        import time
        end = time.process_time() + 0.4
        while time.process_time() < end:
            pass
        COMPLETE = True
    """), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_to_import", raising=False)
    with pytest.raises(match._OutOfTime):
        with match._deadline(0.05):
            import slow_to_import  # noqa: F401
            while True:  # the budget must still end what runs after the import
                pass
    assert sys.modules["slow_to_import"].COMPLETE is True


def test_a_passed_check_keeps_the_helper_mutants_it_does_not_tell_apart() -> None:
    """Checking a candidate against a check the student passed: helper mutants that answer that
    check as the reference does pass it too and stay candidates (left out only from the search
    over a failed check, which the reference's answers cannot reproduce)."""
    helpers = [m for m in mutants_for("appendix_d.train_model") if m.helper][:2]
    assert len(helpers) == 2

    def passed_check(student: object, ref: object) -> None:  # asks neither side anything
        return None

    kept, complete = match.matching(helpers, [], passed_check, "cpu", "appendix_d.train_model", 5.0)
    assert complete and kept == helpers
    searched, _ = match.matching(helpers, [], passed_check, "cpu", "appendix_d.train_model", 5.0,
                                 helpers_first=True)
    assert searched == []  # as the search over a failed check: they cannot be what failed it
