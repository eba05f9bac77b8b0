"""Hidden checks for prompts and plain-data helpers of chapter 7: ch07.format_input, problem 7.1,
ch07.partition_data and ch07.extract_response (sections 7.2 and 7.7). Entries are our own."""

from __future__ import annotations

from typing import Any

import pytest

from grader.checking.compare import expect_equal
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch07 import expect_text
from grader.messages import phrase

WITH_INPUT = {"instruction": "Rewrite the sentence in the passive voice.", "input": "The chef cooks the meal.",
              "output": "The meal is cooked by the chef."}

FORMAT_INPUT = component("ch07", "format_input", section="7.2", title="Alpaca-style prompt formatting", points=1)
PARTITION_DATA = component("ch07", "partition_data", section="7.2", title="Train, test and validation splits", points=1)
EXTRACT_RESPONSE = component("ch07", "extract_response", section="7.7", title="Extracting the model's response",
                             points=1)
EX71 = problem("7.1", "ch07", section="7.2", title="Changing prompt styles (Phi-3)", points=1,
               symbols=("format_input_phi",))
NO_INPUT = {"instruction": "Name a primary color.", "input": "", "output": "Blue."}
MULTILINE = {"instruction": "Translate to German:\n  keep the line breaks", "input": "Good morning,\nmy friend! (café)",
             "output": "Guten Morgen,\nmein Freund!"}


def _call(student: Any, ref: Any, name: str, *args: Any, swap: tuple[str, ...] = ()) -> tuple[Any, Any]:
    inputs = dict(module="ch07", name=name, args=list(args), kwargs={})
    expected = ref.run("call", **inputs)
    got = student.run("call", swap=swap, what=name, **inputs)
    return got, expected


# ---- format_input ------------------------------------------------------------------------------


def _format(student: Any, ref: Any, entry: dict[str, str], name: str = "format_input") -> None:
    got, expected = _call(student, ref, name, entry)
    wrong = {}
    if not entry["input"]:
        sep = "\n\n### Input:\n" if name == "format_input" else "\n"
        wrong["ch07_format_empty_input_section"] = expected + sep
    expect_text(got, expected, f"{name}({{'instruction': {entry['instruction'][:20]!r}..., "
                               f"'input': {entry['input'][:16]!r}...}})", mistakes=wrong)


@FORMAT_INPUT
def test_prompt_with_input(student, ref):
    _format(student, ref, WITH_INPUT)


@FORMAT_INPUT
def test_prompt_without_input(student, ref):
    _format(student, ref, NO_INPUT)


@FORMAT_INPUT
def test_multiline_text_kept_verbatim(student, ref):
    _format(student, ref, MULTILINE)


# ---- 7.1 ---------------------------------------------------------------------------------------


@EX71
def test_phi_prompt_with_input(student, ref):
    _format(student, ref, WITH_INPUT, "format_input_phi")


@EX71
def test_phi_prompt_without_input(student, ref):
    _format(student, ref, NO_INPUT, "format_input_phi")


@EX71
def test_phi_multiline(student, ref):
    _format(student, ref, MULTILINE, "format_input_phi")


# ---- partition_data ----------------------------------------------------------------------------


def _data(n: int) -> list[dict[str, str]]:
    return [{"instruction": f"Task {i}", "input": "" if i % 3 else f"x{i}", "output": str(i)} for i in range(n)]


def _partition(student: Any, ref: Any, n: int, *fractions: float) -> None:
    data = _data(n)
    inputs = dict(module="ch07", name="partition_data", args=[data, *fractions], kwargs={})
    what = phrase("what.partition_data_entries", n=n, fractions=''.join(', ' + str(f) for f in fractions))
    expected = ref.run("call", **inputs)
    got = student.run("call", what=what, **inputs)
    if not (isinstance(got, list) and len(got) == 3):
        raise GradeFailure("ch06.not_triple", what=what)
    sizes = [len(part) if isinstance(part, list) else None for part in got]
    exp_sizes = [len(part) for part in expected]
    diagnosis = ("ch07_partition_test_val_swapped" if sizes == [exp_sizes[0], exp_sizes[2], exp_sizes[1]]
                 and exp_sizes[1] != exp_sizes[2] else None)
    expect_equal(sizes, exp_sizes, phrase("what.sizes_train_test_validation", what=what), diagnosis=diagnosis)
    for name, part, exp in zip(("train", "test", "validation"), got, expected):
        expect_equal(part, exp, phrase("what.entries_in_order_no_shuffling", what=what, name=name))


@PARTITION_DATA
def test_book_sizes(student, ref):
    """1,100 entries: 935 train, 110 test, 55 validation."""
    _partition(student, ref, 1100)


@PARTITION_DATA
def test_rounding_down(student, ref):
    _partition(student, ref, 7)
    _partition(student, ref, 27)


@PARTITION_DATA
def test_other_fractions(student, ref):
    _partition(student, ref, 20, 0.5, 0.2)


# ---- extract_response --------------------------------------------------------------------------

PROMPT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\nName a primary color.")


@EXTRACT_RESPONSE
def test_answer_after_the_response_header(student, ref):
    got, expected = _call(student, ref, "extract_response", PROMPT + "\n\n### Response:\nBlue.", PROMPT)
    expect_text(got, expected, "extract_response(prompt + '\\n\\n### Response:\\nBlue.', prompt)")


@EXTRACT_RESPONSE
def test_whitespace_stripped(student, ref):
    got, expected = _call(student, ref, "extract_response", PROMPT + "\n\n### Response:\n  Red, yellow and blue.\n\n ",
                          PROMPT)
    expect_text(got, expected, phrase("what.extract_response_with_surrounding_whitespace"))


@EXTRACT_RESPONSE
def test_without_a_response_header(student, ref):
    got, expected = _call(student, ref, "extract_response", PROMPT + " Green", PROMPT)
    expect_text(got, expected, "extract_response(prompt + ' Green', prompt)")


@EXTRACT_RESPONSE
def test_prompt_is_cut_by_length(student, ref):
    """The prompt is cut off by its length, even when the model output repeats it."""
    text = PROMPT + "\n\n### Response:\n" + PROMPT[-21:]
    got, expected = _call(student, ref, "extract_response", text, PROMPT)
    expect_text(got, expected, phrase("what.extract_response_whose_answer_repeats"))
