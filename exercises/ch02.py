# ch02.py: your exercises for "Working with text data" in "Build a Large Language Model (From
# Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check ch02.SimpleTokenizerV1`);
# `llmgrade list` shows every id.
#
"""Chapter 2: working with text data.

You build the book's two regex tokenizers, a sliding-window dataset of (input, target) token ids
and a data loader over it, then answer exercises 2.1 and 2.2. Where a GPT-2 tokenizer is needed,
use ``tiktoken.get_encoding("gpt2")`` as the book does (the grader makes it work offline).

``preprocess`` and ``build_vocab`` are given: use them to make vocabularies for your tokenizers.
"""

from __future__ import annotations

import re

import tiktoken
import torch
from torch.utils.data import DataLoader, Dataset

# ---------------------------------------------------------------------------------------------
# Given helpers (not graded)
# ---------------------------------------------------------------------------------------------


def preprocess(text):
    """Split ``text`` into words and punctuation like section 2.2 (whitespace is dropped).

    >>> preprocess("Hello, world. Is this-- a test?")
    ['Hello', ',', 'world', '.', 'Is', 'this', '--', 'a', 'test', '?']
    """
    result = re.split(r'([,.:;?_!"()\']|--|\s)', text)
    return [item.strip() for item in result if item.strip()]


def build_vocab(text, special_tokens=("<|endoftext|>", "<|unk|>")):
    """Map every distinct token of ``text`` (in sorted order) to an id, then add ``special_tokens``.

    >>> build_vocab("b a b")
    {'a': 0, 'b': 1, '<|endoftext|>': 2, '<|unk|>': 3}
    """
    all_tokens = sorted(set(preprocess(text)))
    all_tokens.extend(token for token in special_tokens if token not in all_tokens)
    return {token: integer for integer, token in enumerate(all_tokens)}


# ---------------------------------------------------------------------------------------------
# 2.3-2.4 Simple tokenizers
# ---------------------------------------------------------------------------------------------


class SimpleTokenizerV1:
    """A tokenizer that turns text into ids with a fixed vocabulary, and back.

    Book section: 2.3.
    Task: keep the vocabulary (a dict from token string to id) as ``self.str_to_int`` and its
    inverse as ``self.int_to_str``. ``encode`` splits the text the way section 2.2 does (on
    punctuation, ``--`` and whitespace, dropping empty pieces and whitespace) and maps every piece to
    its id; a word that is not in the vocabulary may raise ``KeyError``. ``decode`` does the reverse.
    Returns: ``encode`` a list of ints, ``decode`` a string.
    Hints:
    - Split with ``re.split(r'([,.:;?_!"()\\']|--|\\s)', text)``, or call the given ``preprocess``.
    - After joining the tokens with spaces, remove the space before punctuation with ``re.sub``.
    """

    def __init__(self, vocab):
        """Store the vocabulary as ``str_to_int`` and build the inverse map ``int_to_str``."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV1: Store the vocabulary as ``str_to_int`` and build the inverse map ``int_to_str``.")

    def encode(self, text):
        """Return the list of token ids of ``text``."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV1: Return the list of token ids of ``text``.")

    def decode(self, ids):
        """Return the text of the token ids ``ids``, with no space before punctuation."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV1: Return the text of the token ids ``ids``, with no space before punctuation.")


class SimpleTokenizerV2:
    """A simple tokenizer that maps words missing from its vocabulary to ``<|unk|>``.

    Book section: 2.4.
    Task: like ``SimpleTokenizerV1``, but ``encode`` replaces every token that is not in the
    vocabulary by the special token ``"<|unk|>"`` (which the vocabulary contains) before mapping to
    ids. ``"<|endoftext|>"`` is a token like any other here.
    Returns: ``encode`` a list of ints, ``decode`` a string.
    Hints:
    - ``build_vocab(text)`` already appends ``<|endoftext|>`` and ``<|unk|>`` to the vocabulary.
    """

    def __init__(self, vocab):
        """Store the vocabulary as ``str_to_int`` and build the inverse map ``int_to_str``."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV2: Store the vocabulary as ``str_to_int`` and build the inverse map ``int_to_str``.")

    def encode(self, text):
        """Return the token ids of ``text``, using the id of ``<|unk|>`` for unknown words."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV2: Return the token ids of ``text``, using the id of ``<|unk|>`` for unknown words.")

    def decode(self, ids):
        """Return the text of the token ids ``ids``, with no space before punctuation."""
        raise NotImplementedError("Exercise ch02.SimpleTokenizerV2: Return the text of the token ids ``ids``, with no space before punctuation.")


# ---------------------------------------------------------------------------------------------
# 2.6 Data sampling with a sliding window
# ---------------------------------------------------------------------------------------------


class GPTDatasetV1(Dataset):
    """A dataset of overlapping input/target chunks of token ids for next-token prediction.

    Book section: 2.6.
    Task: encode ``txt`` with ``tokenizer`` (allow the special token ``"<|endoftext|>"``), then
    slide a window of ``max_length`` tokens over the ids, moving ``stride`` tokens at a time. Each
    window is an input; its target is the same window shifted one token to the right. Keep them as
    lists of 1-D tensors in ``self.input_ids`` and ``self.target_ids``.
    Returns: item ``i`` is the pair ``(input_ids[i], target_ids[i])``, each of shape (max_length,).
    Hints:
    - Start windows at ``range(0, len(token_ids) - max_length, stride)``: every target then has a
      full ``max_length`` tokens.
    """

    def __init__(self, txt, tokenizer, max_length, stride):
        """Tokenize ``txt`` and fill ``self.input_ids`` and ``self.target_ids`` with the chunks."""
        raise NotImplementedError("Exercise ch02.GPTDatasetV1: Tokenize ``txt`` and fill ``self.input_ids`` and ``self.target_ids`` with the chunks.")

    def __len__(self):
        """Return the number of (input, target) pairs."""
        raise NotImplementedError("Exercise ch02.GPTDatasetV1: Return the number of (input, target) pairs.")

    def __getitem__(self, idx):
        """Return the pair ``(input_ids[idx], target_ids[idx])``."""
        raise NotImplementedError("Exercise ch02.GPTDatasetV1: Return the pair ``(input_ids[idx], target_ids[idx])``.")


def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True,
                         drop_last=True, num_workers=0):
    """Return a DataLoader over a ``GPTDatasetV1`` of ``txt``, using the GPT-2 tokenizer.

    Book section: 2.6.
    Task: build the GPT-2 BPE tokenizer with ``tiktoken.get_encoding("gpt2")``, wrap ``txt`` in a
    ``GPTDatasetV1`` and pass the remaining arguments to ``torch.utils.data.DataLoader``.
    Returns: a DataLoader whose batches are ``(inputs, targets)``, each of shape
    (batch_size, max_length).
    """
    raise NotImplementedError("Exercise ch02.create_dataloader_v1: Return a DataLoader over a ``GPTDatasetV1`` of ``txt``, using the GPT-2 tokenizer.")


# ---------------------------------------------------------------------------------------------
# Exercises
# ---------------------------------------------------------------------------------------------


def exercise_2_1_bpe_pieces(text="Akwirw ier"):
    """Return the GPT-2 BPE token ids of ``text`` and the text piece each id stands for.

    Exercise 2.1 (section 2.5): byte pair encoding splits an unknown word into known sub-word
    pieces. Encode ``text`` with ``tiktoken.get_encoding("gpt2")`` and decode every id on its own.
    Returns: ``(ids, pieces)``: a list of ints and a list of strings of the same length, whose
    concatenation is ``text``.
    """
    raise NotImplementedError("Exercise 2.1: Return the GPT-2 BPE token ids of ``text`` and the text piece each id stands for.")


def exercise_2_2_first_batch(txt, batch_size=4, max_length=2, stride=2):
    """Return the first (inputs, targets) batch of an unshuffled data loader over ``txt``.

    Exercise 2.2 (section 2.6): see how ``max_length`` and ``stride`` change the batches. Use
    your ``create_dataloader_v1`` with the given arguments and ``shuffle=False``.
    Returns: ``(inputs, targets)``, two tensors of shape (batch_size, max_length).
    """
    raise NotImplementedError("Exercise 2.2: Return the first (inputs, targets) batch of an unshuffled data loader over ``txt``.")
