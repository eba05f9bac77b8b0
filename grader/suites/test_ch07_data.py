"""Hidden checks for instruction data (section 7.3): ch07.InstructionDataset, ch07.custom_collate_fn,
problem 7.2 (masking the instruction) and problem 7.3 (loaders for a larger data set)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch07 import collate_mistakes
from grader.messages import phrase

INSTRUCTION_DATASET = component("ch07", "InstructionDataset", section="7.3", title="Pre-tokenized instruction data",
                                points=2, depends=("ch07.format_input",))
CUSTOM_COLLATE_FN = component("ch07", "custom_collate_fn", section="7.3",
                              title="Padding, shifted targets and -100 masking", points=3)
EX72 = problem("7.2", "ch07", section="7.3", title="Instruction and input masking", points=2,
               symbols=("InstructionDatasetMasked", "custom_collate_fn_masked"), depends=("ch07.custom_collate_fn", "ch07.format_input"))
EX73 = problem("7.3", "ch07", section="7.3", title="Preparing a large Alpaca-style dataset", points=1,
               symbols=("exercise_7_3_prepare_loaders",), depends=("ch07.custom_collate_fn", "ch07.partition_data", "ch07.InstructionDataset"))

DATA = [
    {"instruction": "Rewrite the sentence in the passive voice.", "input": "The chef cooks the meal.",
     "output": "The meal is cooked by the chef."},
    {"instruction": "Name a primary color.", "input": "", "output": "Blue."},
    {"instruction": "Give the plural of 'mouse'.", "input": "", "output": "Mice."},
    {"instruction": "Convert to Celsius.", "input": "212 F", "output": "100 C"},
]


def _dataset(student: Any, ref: Any, data: list[dict[str, str]], *, tokenizer: str = "gpt2",
             masked: bool = False, swap: tuple[str, ...] = ()) -> None:
    name = "InstructionDatasetMasked" if masked else "InstructionDataset"
    inputs = dict(data=data, tokenizer=tokenizer, masked=masked)
    what = f"{name}({len(data)} entries, {tokenizer} tokenizer)"
    expected = ref.run("ch07.instruction_dataset", **inputs)
    got = student.run("ch07.instruction_dataset", swap=swap, what=what, **inputs)
    expect_equal(got["len"], expected["len"], f"len({what})")
    for i, (g, e) in enumerate(zip(got["items"], expected["items"])):
        expect_equal(g, e, phrase("what.token_ids_prompt_n_n", what=what, i=i)
                     if not masked else f"{what}[{i}] (instruction_length, token ids)")


# ---- InstructionDataset ------------------------------------------------------------------------


@INSTRUCTION_DATASET
def test_items_are_encoded_prompt_and_response(student, ref):
    _dataset(student, ref, DATA, swap=("ch07.format_input",))


@INSTRUCTION_DATASET
def test_uses_the_given_tokenizer(student, ref):
    _dataset(student, ref, DATA[1:3], tokenizer="chars", swap=("ch07.format_input",))


@INSTRUCTION_DATASET
def test_single_entry(student, ref):
    _dataset(student, ref, DATA[3:], swap=("ch07.format_input",))


@INSTRUCTION_DATASET
@pytest.mark.integration
def test_with_your_format_input(student, ref):
    _dataset(student, ref, DATA)


# ---- custom_collate_fn -------------------------------------------------------------------------

BOOK_BATCH = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]


def _collate(student: Any, ref: Any, batch: list[list[int]], *, name: str = "custom_collate_fn",
             swap: tuple[str, ...] = (), **kwargs: Any) -> None:
    inputs = dict(module="ch07", name=name, args=[batch], kwargs=kwargs)
    what = f"{name}({batch if len(str(batch)) < 60 else '...'}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    expected = ref.run("call", **inputs)
    got = student.run("call", swap=swap, what=what, **inputs)
    if not (isinstance(got, list) and len(got) == 2):
        raise GradeFailure("ch07.collate_format", what=what)
    wrong = None
    if name == "custom_collate_fn":
        plain = {k: v for k, v in kwargs.items() if k != "device"}
        wrong = collate_mistakes(batch, plain.get("pad_token_id", 50256), plain.get("ignore_index", -100),
                                 plain.get("allowed_max_length"))
    expect_tensor(got[0], expected[0], f"{what} inputs", token_dim=1, mistakes=wrong and wrong["inputs"])
    expect_tensor(got[1], expected[1], f"{what} targets", token_dim=1, mistakes=wrong and wrong["targets"])


@CUSTOM_COLLATE_FN
def test_book_example(student, ref):
    _collate(student, ref, BOOK_BATCH)


@CUSTOM_COLLATE_FN
def test_first_pad_kept_later_pads_masked(student, ref):
    _collate(student, ref, [[11, 12], [13, 14, 15, 16, 17, 18], [19], [20, 21, 22, 23, 24, 25, 26]])


@CUSTOM_COLLATE_FN
def test_custom_pad_and_ignore_ids(student, ref):
    _collate(student, ref, [[3, 4, 5], [6], [7, 8]], pad_token_id=0, ignore_index=-1)


@CUSTOM_COLLATE_FN
def test_allowed_max_length_truncates(student, ref):
    _collate(student, ref, [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10]], allowed_max_length=4)


@CUSTOM_COLLATE_FN
def test_batch_of_one(student, ref):
    _collate(student, ref, [[31, 32, 33, 34]])


@CUSTOM_COLLATE_FN
def test_device_argument(student, ref):
    _collate(student, ref, BOOK_BATCH, device="cpu")


# ---- 7.2 ---------------------------------------------------------------------------------------

MASKED_BATCH = [[4, [1, 2, 3, 4, 5, 6, 7]], [2, [8, 9, 10]], [1, [11, 12]]]


@EX72
def test_masked_dataset_items(student, ref):
    _dataset(student, ref, DATA, masked=True, swap=("ch07.format_input",))


@EX72
def test_masked_collate_hides_the_instruction(student, ref):
    inputs = dict(module="ch07", name="custom_collate_fn_masked", args=[MASKED_BATCH], kwargs={})
    what = "custom_collate_fn_masked([(4, 7 ids), (2, 3 ids), (1, 2 ids)])"
    expected = ref.run("call", **inputs)
    got = student.run("call", swap=("ch07.custom_collate_fn",), what=what, **inputs)
    if not (isinstance(got, list) and len(got) == 2):
        raise GradeFailure("ch07.collate_format", what=what)
    expect_tensor(got[0], expected[0], f"{what} inputs", token_dim=1)
    off_by_one = expected[1].clone()
    for row, (n, _) in enumerate(MASKED_BATCH):
        off_by_one[row, :n] = -100
    expect_tensor(got[1], expected[1], f"{what} targets", token_dim=1,
                  mistakes={"ch07_masked_instruction_off_by_one": off_by_one})


@EX72
def test_masked_collate_truncates(student, ref):
    _collate(student, ref, MASKED_BATCH, name="custom_collate_fn_masked", swap=("ch07.custom_collate_fn",),
             allowed_max_length=3)


@EX72
def test_masked_pipeline(student, ref):
    expected = ref.run("ch07.masked_pipeline", data=DATA)
    got = student.run("ch07.masked_pipeline", swap=("ch07.custom_collate_fn", "ch07.format_input"),
                      what="custom_collate_fn_masked(InstructionDatasetMasked items)", data=DATA)
    expect_tensor(got[1], expected[1], phrase("what.masked_targets_example_entries"), token_dim=1)


@EX72
@pytest.mark.integration
def test_masked_with_your_collate(student, ref):
    expected = ref.run("ch07.masked_pipeline", data=DATA, allowed_max_length=40)
    got = student.run("ch07.masked_pipeline", what=phrase("what.masked_pipeline_with_your_code"), data=DATA,
                      allowed_max_length=40)
    expect_tensor(got[0], expected[0], phrase("what.masked_pipeline_inputs"), token_dim=1)
    expect_tensor(got[1], expected[1], phrase("what.masked_pipeline_targets"), token_dim=1)


# ---- 7.3 ---------------------------------------------------------------------------------------

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()
BIG = [{"instruction": f"Spell the word {WORDS[i % 13]} backwards.", "input": "" if i % 4 else WORDS[(i * 7) % 13],
        "output": WORDS[i % 13][::-1] + "."} for i in range(41)]  # 34 train, 4 test, 3 validation
SWAP_73 = ("ch07.custom_collate_fn", "ch07.partition_data", "ch07.InstructionDataset", "ch07.format_input")
LOADER_ARGS = dict(data=BIG, batch_size=4, allowed_max_length=24)


def _loaders(student: Any, ref: Any, swap: tuple[str, ...] = SWAP_73) -> tuple[dict[str, Any], dict[str, Any]]:
    expected = ref.run("ch07.prepare_loaders", **LOADER_ARGS)
    got = student.run("ch07.prepare_loaders", swap=swap, time_limit_s=15,
                      what="exercise_7_3_prepare_loaders(41 entries, batch_size=4, allowed_max_length=24)",
                      **LOADER_ARGS)
    return got, expected


def _batches(got: dict[str, Any], expected: dict[str, Any], name: str) -> None:
    expect_equal(len(got[name]["batches"]), len(expected[name]["batches"]), phrase("what.number_batches_2", name=name))
    for b, (g, e) in enumerate(zip(got[name]["batches"], expected[name]["batches"])):
        expect_tensor(g[0], e[0], phrase("what.batch_inputs", what=name, b=b), token_dim=1)
        expect_tensor(g[1], e[1], phrase("what.batch_targets", what=name, b=b), token_dim=1)


@EX73
def test_split_sizes(student, ref):
    got, expected = _loaders(student, ref)
    sizes = [got[k]["dataset_len"] for k in ("train", "val", "test")]
    expect_equal(sizes, [expected[k]["dataset_len"] for k in ("train", "val", "test")],
                 phrase("what.data_set_sizes_train_validation"))


@EX73
def test_validation_and_test_batches(student, ref):
    got, expected = _loaders(student, ref)
    for name in ("val", "test"):
        expect_equal(got[name]["drop_last"], False, f"{name} loader drop_last")
        _batches(got, expected, name)


@EX73
def test_training_loader_shuffles_and_drops_last(student, ref):
    got, expected = _loaders(student, ref)
    expect_equal(got["train"]["sampler"], "RandomSampler", phrase("what.training_loader_sampler_shuffle_true"))
    expect_equal(got["train"]["drop_last"], True, phrase("what.training_loader_drop_last"))
    expect_equal(got["train"]["batch_size"], 4, phrase("what.training_loader_batch_size"))
    expect_equal(len(got["train"]["batches"]), len(expected["train"]["batches"]), phrase("what.number_training_batches"))


@EX73
def test_training_order_from_the_seeded_generator(student, ref):
    got, expected = _loaders(student, ref)
    _batches(got, expected, "train")


@EX73
@pytest.mark.integration
def test_with_your_collate(student, ref):
    got, expected = _loaders(student, ref, swap=("ch07.partition_data", "ch07.InstructionDataset",
                                                 "ch07.format_input"))
    _batches(got, expected, "val")
