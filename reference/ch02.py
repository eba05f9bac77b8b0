"""Chapter 2: working with text data.

Leaf to root: the book's two regex tokenizers (with the small helpers that build their
vocabulary), the sliding-window dataset and its data loader, then the chapter's exercises. The
GPT-2 BPE tokenizer they use works offline: :mod:`reference.gpt2_tokenizer` (re-exported here).
"""

from __future__ import annotations

import re

import tiktoken
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .gpt2_tokenizer import (ENDOFTEXT, ENDOFTEXT_ID, GPT2_FILES, GPT2_PAT_STR, get_gpt2_tokenizer,
                             prepare_tiktoken_cache)

# ---------------------------------------------------------------------------------------------
# 2.2-2.4 A simple regex tokenizer
# ---------------------------------------------------------------------------------------------

# Split on punctuation, double dashes and whitespace; the capture group keeps the separators.
_SPLIT_RE = re.compile(r'([,.:;?_!"()\']|--|\s)')
# Decoding joins tokens with spaces; remove the space the join put before punctuation.
_DECODE_RE = re.compile(r'\s+([,.:;?!"()\'])')

UNK = "<|unk|>"


def preprocess(text: str) -> list[str]:
    """Split ``text`` into the book's word and punctuation tokens (whitespace dropped)."""
    return [item.strip() for item in _SPLIT_RE.split(text) if item.strip()]


def build_vocab(
    text: str, special_tokens: tuple[str, ...] = (ENDOFTEXT, UNK)
) -> dict[str, int]:
    """Map each distinct token of ``text`` (sorted) to an id, then append ``special_tokens``."""
    all_tokens = sorted(set(preprocess(text)))
    all_tokens.extend(t for t in special_tokens if t not in all_tokens)
    return {token: integer for integer, token in enumerate(all_tokens)}


class SimpleTokenizerV1:
    """Encode with a fixed vocabulary; an unknown word raises KeyError (section 2.3)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.str_to_int = vocab
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text: str) -> list[int]:
        return [self.str_to_int[s] for s in preprocess(text)]

    def decode(self, ids: list[int]) -> str:
        text = " ".join(self.int_to_str[i] for i in ids)
        return _DECODE_RE.sub(r"\1", text)


class SimpleTokenizerV2:
    """Like V1, but unknown words become ``<|unk|>`` (section 2.4)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        if UNK not in vocab:
            raise ValueError(f"the vocabulary needs a {UNK} token for unknown words")
        self.str_to_int = vocab
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text: str) -> list[int]:
        tokens = [s if s in self.str_to_int else UNK for s in preprocess(text)]
        return [self.str_to_int[s] for s in tokens]

    def decode(self, ids: list[int]) -> str:
        text = " ".join(self.int_to_str[i] for i in ids)
        return _DECODE_RE.sub(r"\1", text)


# ---------------------------------------------------------------------------------------------
# 2.6 Data sampling with a sliding window
# ---------------------------------------------------------------------------------------------


class GPTDatasetV1(Dataset[tuple[Tensor, Tensor]]):
    """Overlapping chunks of ``max_length`` token ids; the target is the input shifted by one."""

    def __init__(self, txt: str, tokenizer: tiktoken.Encoding, max_length: int, stride: int) -> None:
        self.input_ids: list[Tensor] = []
        self.target_ids: list[Tensor] = []
        token_ids = tokenizer.encode(txt, allowed_special={ENDOFTEXT})
        # Stop before the last window: its target would run one token past the end.
        for i in range(0, len(token_ids) - max_length, stride):
            input_chunk = token_ids[i : i + max_length]
            target_chunk = token_ids[i + 1 : i + max_length + 1]
            self.input_ids.append(torch.tensor(input_chunk))
            self.target_ids.append(torch.tensor(target_chunk))

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, idx: int) -> tuple[Tensor, Tensor]:
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader_v1(
    txt: str,
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
) -> DataLoader[tuple[Tensor, Tensor]]:
    """A DataLoader of (inputs, targets) batches, each of shape (batch_size, max_length)."""
    tokenizer = get_gpt2_tokenizer()
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
    )


# ---------------------------------------------------------------------------------------------
# Exercises
# ---------------------------------------------------------------------------------------------


def exercise_2_1_bpe_pieces(text: str = "Akwirw ier") -> tuple[list[int], list[str]]:
    """Exercise 2.1: the BPE ids of ``text`` and the string each id decodes to on its own."""
    tokenizer = get_gpt2_tokenizer()
    ids = tokenizer.encode(text)
    pieces = [tokenizer.decode([i]) for i in ids]
    return ids, pieces


def exercise_2_2_first_batch(
    txt: str, batch_size: int = 4, max_length: int = 2, stride: int = 2
) -> tuple[Tensor, Tensor]:
    """Exercise 2.2: the first (inputs, targets) batch of an unshuffled loader over ``txt``."""
    dataloader = create_dataloader_v1(
        txt, batch_size=batch_size, max_length=max_length, stride=stride, shuffle=False
    )
    inputs, targets = next(iter(dataloader))
    return inputs, targets
