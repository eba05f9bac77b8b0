"""Hidden checks for ch02.GPTDatasetV1 and ch02.create_dataloader_v1 (book section 2.6).

The text is our own (not the book's data); the GPT-2 tokenizer the dataset is given comes from
``reference.ch02``.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch02_data import window_mistakes
from grader.recipes.support import CharTokenizer
from reference.ch02 import get_gpt2_tokenizer
from grader.messages import phrase

GPTDATASET_V1 = component("ch02", "GPTDatasetV1", section="2.6", title="Sliding-window input/target pairs", points=3)
CREATE_DATALOADER_V1 = component("ch02", "create_dataloader_v1", section="2.6", title="A DataLoader over GPTDatasetV1",
                                 points=2, depends=("ch02.GPTDatasetV1",))

TEXT = ("The old keeper climbed the stairs each evening. He lit the lamp, wiped the glass, and watched "
        "the ships pass in the dark. <|endoftext|> In the morning the keeper slept, and the gulls argued "
        "over breakfast on the rocks below.")
WORDS = ("river stone lantern quiet harbor seven maple copper window thunder ember violet orchard "
         "meadow signal paper cobalt").split()
# About 800 GPT-2 tokens of deterministic pseudo-text: enough for the loader's default 256/128 windows.
LONG_TEXT = " ".join(WORDS[(i * 7 + i // 5) % len(WORDS)] + ("." if i % 9 == 8 else "") for i in range(600))


def _ids(text: str) -> list[int]:
    return list(get_gpt2_tokenizer().encode(text, allowed_special={"<|endoftext|>"}))


def _char_ids(text: str) -> list[int]:
    return list(CharTokenizer().encode(text))


def _stack(items: list[Any], index: int, what: str, max_length: int) -> torch.Tensor:
    parts = []
    for k, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 2 and all(type(t) is torch.Tensor for t in item)):
            raise GradeFailure("ch02.dataset_item_format", what=what, index=k, got=type(item).__name__)
        parts.append(item[index])
    if not parts:
        return torch.zeros(0, max_length, dtype=torch.long)
    lengths = sorted({tuple(p.shape) for p in parts})
    if len(lengths) > 1:
        last = list(parts[-1].shape)
        diagnosis = "ch02_window_range_one_too_long" if last and last[0] == max_length - 1 else None
        raise GradeFailure("ch02.dataset_ragged", what=what, shapes=[list(s) for s in lengths],
                           diagnosis=diagnosis)
    return torch.stack(parts)


def _check_dataset(student: Any, ref: Any, txt: str, max_length: int, stride: int,
                   tokenizer: str = "gpt2") -> None:
    inputs = dict(txt=txt, max_length=max_length, stride=stride, tokenizer=tokenizer)
    what = f"GPTDatasetV1(max_length={max_length}, stride={stride})"
    expected = ref.run("ch02.dataset", **inputs)
    got = student.run("ch02.dataset", what=what, **inputs)
    if "error" in got:
        raise GradeFailure("ch02.dataset_special_token", what=what, message=got["message"].splitlines()[0],
                           diagnosis="ch02_endoftext_not_allowed")
    @functools.cache
    def wrong() -> dict[str, Any]:  # only once a comparison fails: tokenizing here takes a second
        ids = _ids(txt) if tokenizer == "gpt2" else _char_ids(txt)
        return window_mistakes(ids, max_length, stride)

    x = _stack(got["items"], 0, f"{what} inputs", max_length)
    y = _stack(got["items"], 1, f"{what} targets", max_length)
    ex = _stack(expected["items"], 0, "reference", max_length)
    ey = _stack(expected["items"], 1, "reference", max_length)
    expect_tensor(x, ex, phrase("what.inputs_one_row_per_window", what=what), token_dim=0,
                  mistakes=lambda: wrong()["inputs"])
    expect_tensor(y, ey, phrase("what.targets_one_row_per_window", what=what), token_dim=0,
                  mistakes=lambda: wrong()["targets"])
    expect_equal(got["len"], expected["len"], f"len({what})")


# ---- GPTDatasetV1 -------------------------------------------------------------------------


@GPTDATASET_V1
def test_windows_with_stride_one(student, ref):
    _check_dataset(student, ref, TEXT, max_length=4, stride=1)


@GPTDATASET_V1
def test_windows_without_overlap(student, ref):
    _check_dataset(student, ref, TEXT, max_length=4, stride=4)


@GPTDATASET_V1
def test_overlapping_windows(student, ref):
    _check_dataset(student, ref, TEXT, max_length=6, stride=3)


@GPTDATASET_V1
def test_endoftext_is_allowed(student, ref):
    """<|endoftext|> must be encoded as the special token 50256 (allowed_special)."""
    _check_dataset(student, ref, "Good night. <|endoftext|> Good morning, sea!", max_length=3, stride=2)


@GPTDATASET_V1
def test_uses_the_given_tokenizer(student, ref):
    _check_dataset(student, ref, "abcdefghij klmnop", max_length=5, stride=2, tokenizer="chars")


@GPTDATASET_V1
def test_text_shorter_than_one_window(student, ref):
    _check_dataset(student, ref, "Too short.", max_length=8, stride=1)


# ---- create_dataloader_v1 -----------------------------------------------------------------

SWAP = ("ch02.GPTDatasetV1",)


def _loader(student: Any, ref: Any, txt: str, kwargs: dict[str, Any], *, seed: int = 0,
            swap: tuple[str, ...] = SWAP) -> tuple[dict[str, Any], dict[str, Any]]:
    what = "create_dataloader_v1(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
    expected = ref.run("ch02.dataloader", txt=txt, kwargs=kwargs, seed=seed)
    got = student.run("ch02.dataloader", swap=swap, what=what, txt=txt, kwargs=kwargs, seed=seed)
    expect_equal(len(got["batches"]), len(expected["batches"]), phrase("what.number_batches", what=what))
    for b, (g, e) in enumerate(zip(got["batches"], expected["batches"])):
        if not (isinstance(g, list) and len(g) == 2):
            raise GradeFailure("ch02.batch_format", what=what, index=b)
        expect_tensor(g[0], e[0], phrase("what.batch_inputs", what=what, b=b), token_dim=None)
        expect_tensor(g[1], e[1], phrase("what.batch_targets", what=what, b=b), token_dim=None)
    return got, expected


@CREATE_DATALOADER_V1
def test_unshuffled_batches(student, ref):
    _loader(student, ref, TEXT, dict(batch_size=2, max_length=4, stride=4, shuffle=False))


@CREATE_DATALOADER_V1
def test_drop_last_false_keeps_partial_batch(student, ref):
    _loader(student, ref, TEXT, dict(batch_size=3, max_length=5, stride=5, shuffle=False, drop_last=False))


@CREATE_DATALOADER_V1
def test_shuffled_batches(student, ref):
    kwargs = dict(batch_size=2, max_length=4, stride=2, shuffle=True)
    expected = ref.run("ch02.dataloader", txt=TEXT, kwargs=kwargs, seed=5)
    got = student.run("ch02.dataloader", swap=SWAP, what="create_dataloader_v1(shuffle=True)", txt=TEXT,
                      kwargs=kwargs, seed=5)
    unshuffled = ref.run("ch02.dataloader", txt=TEXT, kwargs={**kwargs, "shuffle": False}, seed=5)
    first = got["batches"][0][0] if got["batches"] else None
    if (type(first) is torch.Tensor and first.shape == unshuffled["batches"][0][0].shape
            and torch.equal(first, unshuffled["batches"][0][0])):
        raise GradeFailure("ch02.loader_not_shuffled", what="create_dataloader_v1(shuffle=True)",
                           diagnosis="ch02_shuffle_ignored")
    expect_equal(got["sampler"], expected["sampler"], phrase("what.create_dataloader_v_shuffle_true"))
    expect_equal(len(got["batches"]), len(expected["batches"]), phrase("what.create_dataloader_v_shuffle_true_2"))
    for b, (g, e) in enumerate(zip(got["batches"], expected["batches"])):
        expect_tensor(g[0], e[0], phrase("what.batch_inputs", what="create_dataloader_v1(shuffle=True, seed=5)", b=b), token_dim=None)
        expect_tensor(g[1], e[1], phrase("what.batch_targets", what="create_dataloader_v1(shuffle=True, seed=5)", b=b), token_dim=None)


@CREATE_DATALOADER_V1
def test_passes_loader_arguments(student, ref):
    kwargs = dict(batch_size=3, max_length=4, stride=3, shuffle=False, drop_last=False, num_workers=0)
    got, expected = _loader(student, ref, TEXT, kwargs)
    for key in ("batch_size", "drop_last", "num_workers", "sampler", "dataset_len"):
        expect_equal(got[key], expected[key], phrase("what.create_dataloader_v_loader", key=key))


@CREATE_DATALOADER_V1
def test_default_arguments(student, ref):
    """With only the text: batch 4, windows of 256 tokens every 128, shuffled, last batch dropped."""
    got, expected = _loader(student, ref, LONG_TEXT, {}, seed=3)
    for key in ("batch_size", "drop_last", "sampler"):
        expect_equal(got[key], expected[key], phrase("what.create_dataloader_v_txt_loader", key=key))


@CREATE_DATALOADER_V1
@pytest.mark.integration
def test_batches_with_your_dataset(student, ref):
    _loader(student, ref, TEXT, dict(batch_size=2, max_length=4, stride=1, shuffle=False), swap=())
