"""Hidden checks for ch06.create_balanced_dataset, ch06.SpamDataset and problem 6.1 (sections 6.2-6.3).

The rows are our own short SMS-like texts; CSV files are written by the recipe (``ch06.spam_dataset``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.book_forms import book_balanced, book_split
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.messages import phrase

CREATE_BALANCED_DATASET = component("ch06", "create_balanced_dataset", section="6.2",
                                    title="Balancing and splitting the spam data", points=1,
                                    symbols=("create_balanced_dataset", "random_split"))
SPAM_DATASET = component("ch06", "SpamDataset", section="6.3", title="A padded text-classification dataset", points=2)
EX61 = problem("6.1", "ch06", section="6.3", title="Padding to the full context length", points=1,
               symbols=("exercise_6_1_full_context_dataset",), depends=("ch06.SpamDataset",))

WORDS = "free prize call now win cash meet lunch later home ok see you soon reply stop txt".split()


def _rows(n_ham: int, n_spam: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n_ham + n_spam):
        spam = i % 3 == 1 and sum(r["Label"] == "spam" for r in rows) < n_spam
        if sum(r["Label"] == "ham" for r in rows) >= n_ham:
            spam = True
        text = " ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(2 + i % 4))
        rows.append({"Label": "spam" if spam else "ham", "Text": f"{text} #{i}"})
    return rows


ROWS = _rows(14, 5)


# ---- create_balanced_dataset / random_split ------------------------------------------------
# The book passes a pandas DataFrame and fixes random_state=123; the exercise passes a list of
# dicts and adds a ``seed=`` keyword. Either form is graded on the book's calling convention
# (``create_balanced_dataset(rows)``, ``random_split(rows, train_frac, validation_frac)``); other
# seeds are an extension check.


def _form(student: Any, name: str) -> str:
    """Which form the student's function takes ("dataframe" or "list"), tried on well-formed rows."""
    args = [] if name == "create_balanced_dataset" else [0.7, 0.1]
    return str(student.run("ch06.rows_call", what=name, name=name, rows=ROWS, args=args)["form"])


def _rows_call(student: Any, ref: Any, name: str, rows: list[dict[str, str]], *args: Any,
               **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """The student's result in their form, and the expected value for that form."""
    form = _form(student, name)
    got = student.run("ch06.rows_call", what=name, name=name, rows=rows, args=list(args), kwargs=kwargs, form=form)
    if form == "dataframe" and not kwargs:
        expected: Any = book_balanced(rows) if name == "create_balanced_dataset" else book_split(rows, *args)
    else:
        reference = ref.run("ch06.call_or_error", module="ch06", name=name, args=[rows, *args], kwargs=kwargs)
        expected = reference.get("value")
    if "error" in got and expected is not None:
        message = got["message"]
        if "frame_error" in got:
            message = phrase("ch06.raised_in_both_forms", message=message, frame_type=got["frame_error"]["error"],
                        frame_message=got["frame_error"]["message"])
        raise GradeFailure("ch06.raised", what=name, type=got["error"], message=message)
    if form == "dataframe" and got.get("value") is None and "error" not in got:
        raise GradeFailure("ch06.not_list", what=f"{name}(df)", got=got.get("returned"))
    return got, expected


@CREATE_BALANCED_DATASET
def test_balanced_class_counts(student, ref):
    got, _ = _rows_call(student, ref, "create_balanced_dataset", ROWS)
    rows = got["value"]
    if not isinstance(rows, list):
        raise GradeFailure("ch06.not_list", what="create_balanced_dataset(rows)", got=type(rows).__name__)
    labels = [r.get("Label") if isinstance(r, dict) else None for r in rows]
    counts = {"ham": labels.count("ham"), "spam": labels.count("spam")}
    expect_equal(counts, {"ham": 5, "spam": 5}, phrase("what.create_balanced_dataset_rows_rows"))
    spam = [r for r in ROWS if r["Label"] == "spam"]
    expect_equal([r for r in rows if r["Label"] == "spam"], spam,
                 "create_balanced_dataset(rows): the spam rows (all kept, in order)")
    ham_texts = {r["Text"] for r in ROWS if r["Label"] == "ham"}
    strange = [r for r in rows if r["Label"] == "ham" and r["Text"] not in ham_texts]
    expect_equal(strange, [], phrase("what.create_balanced_dataset_rows_ham"))


def _expect_same_rows(student: Any, ref: Any, name: str, rows: list[dict[str, str]], args: list[float],
                      what: str, **kwargs: Any) -> None:
    got, expected = _rows_call(student, ref, name, rows, *args, **kwargs)
    expect_equal(got["value"], expected, what)


@CREATE_BALANCED_DATASET
def test_balanced_sampling_is_deterministic(student, ref):
    _expect_same_rows(student, ref, "create_balanced_dataset", ROWS, [],
                      "create_balanced_dataset(rows) (ham sampled with random.Random(123).sample, or with "
                      "df.sample(n, random_state=123) as in the book, then the spam rows)")


@CREATE_BALANCED_DATASET
@pytest.mark.extension
def test_balanced_sampling_takes_a_seed(student, ref):
    """Beyond the book, which fixes random_state=123: the exercise's ``seed=`` keyword."""
    _expect_same_rows(student, ref, "create_balanced_dataset", ROWS, [],
                      "create_balanced_dataset(rows, seed=7) (ham sampled with random.Random(seed).sample)", seed=7)


@CREATE_BALANCED_DATASET
def test_too_few_ham_rows_raise(student, ref):
    form = _form(student, "create_balanced_dataset")
    got = student.run("ch06.rows_call", what="create_balanced_dataset", name="create_balanced_dataset",
                      rows=_rows(2, 4), form=form)
    if got.get("error") != "ValueError":
        raise GradeFailure("ch06.expected_error", what="create_balanced_dataset(2 ham, 4 spam rows)",
                           error="ValueError", got=got.get("error") or repr(got.get("value"))[:120])


@CREATE_BALANCED_DATASET
def test_random_split_sizes(student, ref):
    rows = _rows(10, 10) + _rows(3, 0)  # 23 rows: int(16.1)=16, int(2.3)=2, 5 for testing
    got, expected = _rows_call(student, ref, "random_split", rows, 0.7, 0.1)
    value = got["value"]
    if not (isinstance(value, list) and len(value) == 3):
        raise GradeFailure("ch06.not_triple", what="random_split(rows, 0.7, 0.1)")
    expect_equal([len(part) for part in value], [len(part) for part in expected],  # the reference's [16, 2, 5]
                 "random_split(23 rows, 0.7, 0.1): sizes of (train, validation, test)")
    flat = sorted(r["Text"] for part in value for r in part)
    # the reference's three parts hold every row exactly once
    expect_equal(flat, sorted(r["Text"] for part in expected for r in part),
                 phrase("what.random_split_every_row_exactly"))


@CREATE_BALANCED_DATASET
def test_random_split_is_deterministic(student, ref):
    _expect_same_rows(student, ref, "random_split", _rows(8, 8), [0.7, 0.1],
                      "random_split(rows, 0.7, 0.1) (random.Random(123).shuffle of a copy, or "
                      "df.sample(frac=1, random_state=123) as in the book)")


@CREATE_BALANCED_DATASET
@pytest.mark.extension
def test_random_split_takes_a_seed(student, ref):
    """Beyond the book, which fixes random_state=123: the exercise's ``seed=`` keyword."""
    _expect_same_rows(student, ref, "random_split", _rows(8, 8), [0.7, 0.1],
                      "random_split(rows, 0.7, 0.1, seed=5) (random.Random(seed).shuffle of a copy)", seed=5)


@CREATE_BALANCED_DATASET
def test_random_split_leaves_input_untouched(student, ref):
    rows = _rows(6, 6)
    got, _ = _rows_call(student, ref, "random_split", rows, 0.5, 0.25)
    expect_equal(got["rows_after"], rows, phrase("what.rows_given_to_random_split"))


# ---- SpamDataset ---------------------------------------------------------------------------

CSV_ROWS = [
    [0, "Ok lar... Joking wif u oni"],
    [1, "WINNER!! You have been selected to receive a prize, call 09061701461 now"],
    [0, "See you at 5"],
    [1, 'Free entry: text "WIN" to 87121, T&C apply'],
    [0, "I'll be home soon,\nsave me some dinner"],
]


def _stack_items(items: Any, what: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    ids, labels = [], []
    for i, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 2 and all(type(t) is torch.Tensor for t in item)):
            raise GradeFailure("ch06.item_format", what=what, index=i)
        ids.append(item[0])
        labels.append(item[1])
    return ids, labels


def _check_dataset(student: Any, ref: Any, what: str, diagnose_truncation: bool = False, **inputs: Any) -> None:
    expected = ref.run("ch06.spam_dataset", **inputs)
    got = student.run("ch06.spam_dataset", what=what, **inputs)
    expect_equal(got["len"], expected["len"], f"len({what})")
    ids, labels = _stack_items(got["items"], what)
    eids, elabels = _stack_items(expected["items"], what)
    for i, (g, e) in enumerate(zip(ids, eids)):
        if diagnose_truncation and g.dim() == 1 and g.shape[0] > e.shape[0]:
            raise GradeFailure("compare.shape", what=phrase("what.item_token_ids", what=what, i=i), expected=list(e.shape),
                               got=list(g.shape), diagnosis="ch06_dataset_not_truncated")
        expect_tensor(g, e, phrase("what.item_token_ids", what=what, i=i), token_dim=0)
        expect_tensor(labels[i], elabels[i], phrase("what.item_label", what=what, i=i))
    expect_equal(got["max_length"], expected["max_length"], f"{what}.max_length")


@SPAM_DATASET
def test_pads_to_the_longest_text(student, ref):
    _check_dataset(student, ref, "SpamDataset(csv, gpt2 tokenizer)", rows=CSV_ROWS, tokenizer="gpt2")


@SPAM_DATASET
def test_truncates_to_max_length(student, ref):
    _check_dataset(student, ref, "SpamDataset(csv, tokenizer, max_length=12, pad_token_id=0)",
                   diagnose_truncation=True, rows=CSV_ROWS, tokenizer="chars", max_length=12, pad_token_id=0)


@SPAM_DATASET
def test_pads_up_to_a_larger_max_length(student, ref):
    rows = [[1, "win"], [0, "hi there"]]
    _check_dataset(student, ref, "SpamDataset(csv, tokenizer, max_length=14, pad_token_id=0)",
                   rows=rows, tokenizer="chars", max_length=14, pad_token_id=0)


@SPAM_DATASET
def test_default_pad_token_is_endoftext(student, ref):
    rows = [[0, "a"], [1, "a much longer message"]]
    _check_dataset(student, ref, "SpamDataset(csv, gpt2 tokenizer, max_length=8)", rows=rows,
                   tokenizer="gpt2", max_length=8)


@SPAM_DATASET
def test_batches_stack_with_the_default_collate(student, ref):
    inputs = dict(rows=CSV_ROWS, tokenizer="chars", pad_token_id=0, batch=True)
    expected = ref.run("ch06.spam_dataset", **inputs)
    got = student.run("ch06.spam_dataset", what="DataLoader(SpamDataset(...), batch_size=5)", **inputs)
    if not (isinstance(got["batch"], list) and len(got["batch"]) == 2):
        raise GradeFailure("ch06.item_format", what=phrase("what.dataloader_batch_spamdataset"), index=0)
    expect_tensor(got["batch"][0], expected["batch"][0], phrase("what.batch_token_ids_all_texts"), token_dim=1)
    expect_tensor(got["batch"][1], expected["batch"][1], phrase("what.batch_labels"))


# ---- 6.1 --------------------------------------------------------------------------------------


def _check_full_context(student: Any, ref: Any, context_length: int, swap: tuple[str, ...]) -> None:
    inputs = dict(rows=CSV_ROWS, tokenizer="gpt2", context_length=context_length)
    what = f"exercise_6_1_full_context_dataset(csv, tokenizer, {context_length})"
    expected = ref.run("ch06.spam_dataset", **inputs)
    got = student.run("ch06.spam_dataset", swap=swap, what=what, **inputs)
    expect_equal(got["max_length"], context_length, f"{what}.max_length")
    expect_equal(got["len"], expected["len"], f"len({what})")
    ids, labels = _stack_items(got["items"], what)
    eids, elabels = _stack_items(expected["items"], what)
    for i, (g, e) in enumerate(zip(ids, eids)):
        expect_tensor(g, e, phrase("what.item_token_ids", what=what, i=i), token_dim=0)
        expect_tensor(labels[i], elabels[i], phrase("what.item_label", what=what, i=i))


@EX61
def test_pads_to_the_full_context_length(student, ref):
    _check_full_context(student, ref, 40, ("ch06.SpamDataset",))


@EX61
def test_truncates_to_a_short_context(student, ref):
    _check_full_context(student, ref, 6, ("ch06.SpamDataset",))


@EX61
@pytest.mark.integration
def test_with_your_spam_dataset(student, ref):
    _check_full_context(student, ref, 32, ())
