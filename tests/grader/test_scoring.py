"""Points, statuses, load errors and blame from raw check outcomes."""

from __future__ import annotations

from typing import Any

from grader.catalog import BY_ID
from grader.runner.scoring import item_results, load_errors_from


def check(item: str, name: str, status: str, integration: bool = False) -> dict[str, Any]:
    return {"item": item, "name": name, "status": status, "integration": integration,
            "message": f"{name} {status}", "message_id": "", "diagnosis": None, "details": {}}


def test_points_are_the_share_of_passed_checks() -> None:
    (result,) = item_results([BY_ID["ch03.MultiHeadAttention"]], [
        check("ch03.MultiHeadAttention", "a", "passed"),
        check("ch03.MultiHeadAttention", "b", "failed"),
        check("ch03.MultiHeadAttention", "c", "passed"),
        check("ch03.MultiHeadAttention", "d", "passed"),
    ], [])
    assert result.status == "failed"
    assert result.points == 3.75
    assert result.message == "b failed"


def test_all_stubs_means_not_started_and_none_means_error() -> None:
    gelu, ff = BY_ID["ch04.GELU"], BY_ID["ch04.LayerNorm"]
    results = item_results([gelu, ff], [check("ch04.GELU", "a", "not_started"),
                                        check("ch04.GELU", "b", "not_started")], [])
    assert [r.status for r in results] == ["not_started", "error"]
    assert results[0].points == 0


def test_integration_failure_is_charged_to_the_failed_dependency() -> None:
    items = [BY_ID["ch04.FeedForward"], BY_ID["ch04.GELU"]]
    raw = [check("ch04.GELU", "values", "failed"),
           check("ch04.FeedForward", "core", "passed"),
           check("ch04.FeedForward", "with_your_gelu", "failed", integration=True)]
    ff, gelu = item_results(items, raw, [])
    assert gelu.status == "failed"
    assert ff.status == "passed" and ff.points == ff.max_points
    assert ff.checks[1].blamed_on == "ch04.GELU"


def test_integration_failure_counts_when_dependencies_pass() -> None:
    items = [BY_ID["ch04.FeedForward"], BY_ID["ch04.GELU"]]
    raw = [check("ch04.GELU", "values", "passed"),
           check("ch04.FeedForward", "core", "passed"),
           check("ch04.FeedForward", "with_your_gelu", "failed", integration=True)]
    ff, _ = item_results(items, raw, [])
    assert ff.status == "failed" and ff.points == ff.max_points / 2


def test_load_errors_are_reported_once_per_module_and_mark_items() -> None:
    errors = load_errors_from({
        "modules": {"ch03": {"kind": "syntax_error", "file": "/x/ch03.py", "line": 7,
                             "source_line": "def f(:", "message": "SyntaxError: invalid syntax"}},
        "missing": {"ch04.GELU": ["GELU"]},
    })
    assert [e.kind for e in errors] == ["syntax_error", "missing_name"]
    assert "ch03.py" in errors[0].message and "7" in errors[0].message and "def f(:" in errors[0].message
    results = item_results([BY_ID["ch03.MultiHeadAttention"], BY_ID["ch04.GELU"], BY_ID["ch04.LayerNorm"]],
                           [check("ch04.LayerNorm", "a", "passed")], errors)
    assert [r.status for r in results] == ["error", "error", "passed"]
    assert "GELU" in results[1].message


def test_extension_checks_are_reported_but_never_counted() -> None:
    raw = [check("ch05.generate", "greedy", "passed"),
           check("ch05.generate", "top_k", "passed"),
           {**check("ch05.generate", "extension_batch_of_two", "failed"), "extension": True}]
    (result,) = item_results([BY_ID["ch05.generate"]], raw, [])
    assert result.status == "passed" and result.points == result.max_points
    ext = result.checks[2]
    assert ext.status == "failed" and ext.details.get("extension") is True
    assert "not counted" in ext.message and "extension_batch_of_two failed" in ext.message
    # a passed extension earns nothing either: one failed counted check still halves the points
    raw = [check("ch05.generate", "greedy", "failed"), check("ch05.generate", "top_k", "passed"),
           {**check("ch05.generate", "extension_batch_of_two", "passed"), "extension": True}]
    (result,) = item_results([BY_ID["ch05.generate"]], raw, [])
    assert result.status == "failed" and result.points == result.max_points / 2


def test_book_problem_that_ran_your_failing_layernorm_is_charged_to_it() -> None:
    """One mistake, one charge: 5.4 ran the student's GPT stack (its other checks swap it for the
    reference's), so a LayerNorm bug is charged to ch04.LayerNorm, not to 5.4."""
    stack = ["ch04.GPTModel", "ch04.TransformerBlock", "ch04.LayerNorm"]
    items = [BY_ID["5.4"], BY_ID["ch04.LayerNorm"]]
    raw = [check("ch04.LayerNorm", "values", "failed"),
           {**check("5.4", "resumed", "passed"), "student_swaps": [["ch05.save_checkpoint", *stack]]},
           {**check("5.4", "with_your_code", "failed"), "student_swaps": [[]]}]
    ex54, layernorm = item_results(items, raw, [])
    assert layernorm.status == "failed"
    assert ex54.status == "passed" and ex54.points == ex54.max_points
    blamed = ex54.checks[1]
    assert blamed.blamed_on == "ch04.LayerNorm"
    assert blamed.message.startswith("Not counted against 5.4: 5.4 used your ")
    assert "Fix ch04.LayerNorm first" in blamed.message and "with_your_code failed" in blamed.message


def test_a_check_that_swapped_the_failing_dependency_is_still_counted() -> None:
    items = [BY_ID["5.4"], BY_ID["ch04.LayerNorm"]]
    raw = [check("ch04.LayerNorm", "values", "failed"),
           {**check("5.4", "resumed", "failed"), "student_swaps": [["ch04.LayerNorm"], ["ch04.LayerNorm"]]}]
    ex54, _ = item_results(items, raw, [])
    assert ex54.checks[0].blamed_on is None
    assert ex54.status == "failed" and ex54.points == 0
    # ... but one call without the swap is enough to have run the student's LayerNorm
    raw[1]["student_swaps"] = [["ch04.LayerNorm"], []]
    ex54, _ = item_results(items, raw, [])
    assert ex54.checks[0].blamed_on == "ch04.LayerNorm"


def test_a_check_that_never_called_the_student_is_not_blamed() -> None:
    items = [BY_ID["ch04.FeedForward"], BY_ID["ch04.GELU"]]
    raw = [check("ch04.GELU", "values", "failed"),
           {**check("ch04.FeedForward", "core", "failed"), "student_swaps": []}]
    ff, _ = item_results(items, raw, [])
    assert ff.checks[0].blamed_on is None and ff.status == "failed"


def test_a_dependency_reached_only_through_a_swapped_item_is_not_blamed() -> None:
    """TransformerBlock's unit checks swap FeedForward for the reference's, which uses the
    reference's GELU: a GELU bug is not what made them fail."""
    items = [BY_ID["ch04.TransformerBlock"], BY_ID["ch04.GELU"]]
    swap = ["ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm"]
    raw = [check("ch04.GELU", "values", "failed"),
           {**check("ch04.TransformerBlock", "forward", "failed"), "student_swaps": [swap]},
           {**check("ch04.TransformerBlock", "with_your_parts", "failed"), "student_swaps": [[]]}]
    block, _ = item_results(items, raw, [])
    assert block.checks[0].blamed_on is None
    assert block.checks[1].blamed_on == "ch04.GELU"  # the student's FeedForward ran the student's GELU
    assert block.status == "failed"


def test_a_declared_dependency_no_check_calls_is_not_blamed() -> None:
    """4.3 builds on GPTModel (declared) but its checks never call it (they swap only attention,
    feed-forward and LayerNorm): a GPTModel bug does not excuse a wrong 4.3 config."""
    items = [BY_ID["4.3"], BY_ID["ch04.GPTModel"]]
    swap = ["ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm"]
    raw = [check("ch04.GPTModel", "values", "failed"),
           {**check("4.3", "config", "failed"), "student_swaps": [[]]},
           {**check("4.3", "forward", "passed"), "student_swaps": [swap]}]
    ex43, _ = item_results(items, raw, [])
    assert ex43.checks[0].blamed_on is None and ex43.status == "failed"
