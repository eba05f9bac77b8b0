"""Hidden checks for exercises 2.1 (BPE pieces of unknown words) and 2.2 (loader strides)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from grader.checking.checks import call_function
from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import problem
from grader.checking.failures import GradeFailure
from reference.ch02 import create_dataloader_v1 as ref_loader
from grader.messages import phrase

EX21 = problem("2.1", "ch02", section="2.5", title="Byte pair encoding of unknown words", points=1,
               symbols=("exercise_2_1_bpe_pieces",))
EX22 = problem("2.2", "ch02", section="2.6", title="Data loaders with different strides and context sizes", points=1,
               symbols=("exercise_2_2_first_batch",), depends=("ch02.create_dataloader_v1",))

# ---- 2.1 ----------------------------------------------------------------------------------

BOOK_IDS = [33901, 86, 343, 86, 220, 959]
BOOK_PIECES = ["Ak", "w", "ir", "w", " ", "ier"]


def _pieces(student: Any, ref: Any, args: list[Any]) -> tuple[list[Any], list[Any]]:
    got, expected = call_function(student, ref, "ch02", "exercise_2_1_bpe_pieces", args,
                                  what="exercise_2_1_bpe_pieces")
    if not (isinstance(got, list) and len(got) == 2):
        raise GradeFailure("ch02.pair_expected", what="exercise_2_1_bpe_pieces", got=type(got).__name__)
    return got, expected


@EX21
def test_book_word_ids(student, ref):
    got, expected = _pieces(student, ref, [])
    expect_equal(got[0], BOOK_IDS, phrase("what.exercise_bpe_pieces_ids_akwirw"))


@EX21
def test_book_word_pieces(student, ref):
    got, expected = _pieces(student, ref, [])
    expect_equal(got[1], BOOK_PIECES, phrase("what.exercise_bpe_pieces_pieces_akwirw"))


@EX21
def test_other_unknown_words(student, ref):
    text = "Zorblax quentifies plimmers"
    got, expected = _pieces(student, ref, [text])
    expect_equal(got[0], expected[0], f"exercise_2_1_bpe_pieces({text!r}) ids")
    expect_equal(got[1], expected[1], f"exercise_2_1_bpe_pieces({text!r}) pieces")
    expect_equal("".join(got[1]), text, phrase("what.pieces_joined_together"))


# ---- 2.2 ----------------------------------------------------------------------------------

TEXT = ("A small boat drifted past the pier while the fisherman counted his nets. Seven nets, he "
        "said, and one more for luck. The harbor bell rang twice, and the gulls went quiet.")
SWAP = ("ch02.create_dataloader_v1",)


def _first_batch(student: Any, ref: Any, kwargs: dict[str, Any], swap: tuple[str, ...] = SWAP) -> None:
    what = "exercise_2_2_first_batch(txt, " + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"
    got, expected = call_function(student, ref, "ch02", "exercise_2_2_first_batch", [TEXT], kwargs,
                                  swap=swap, seed=11, what=what)
    if not (isinstance(got, list) and len(got) == 2):
        raise GradeFailure("ch02.pair_expected", what=what, got=type(got).__name__)
    @functools.cache
    def shuffled() -> list[Any]:
        """What the first batch would be with shuffle left on (the loader's default), same seed; only
        once a comparison fails (the reference's loader loads the tokenizer: a second)."""
        torch.manual_seed(11)
        return list(next(iter(ref_loader(TEXT, shuffle=True, **kwargs))))

    for k, part in enumerate(("inputs", "targets")):
        expect_tensor(got[k], expected[k], f"{what} {part}", token_dim=None,
                      mistakes=lambda k=k: {"ch02_first_batch_shuffled": shuffled()[k]})


@EX22
def test_max_length_2_stride_2(student, ref):
    _first_batch(student, ref, dict(batch_size=4, max_length=2, stride=2))


@EX22
def test_max_length_8_stride_2(student, ref):
    _first_batch(student, ref, dict(batch_size=4, max_length=8, stride=2))


@EX22
def test_max_length_4_stride_1_batch_3(student, ref):
    _first_batch(student, ref, dict(batch_size=3, max_length=4, stride=1))


@EX22
@pytest.mark.integration
def test_first_batch_with_your_loader(student, ref):
    _first_batch(student, ref, dict(batch_size=4, max_length=8, stride=2), swap=())
