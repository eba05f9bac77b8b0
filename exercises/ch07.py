# ch07.py: your exercises for "Fine-tuning to follow instructions" in "Build a Large Language Model
# (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check ch07.format_input`);
# `llmgrade list` shows every id.
#
"""Chapter 7: Fine-tuning to follow instructions.

You will format instruction data as Alpaca-style prompts, split it, pre-tokenize it, write the
collate function that pads, shifts and masks the targets, extract a model's response from its
output, and combine several sampled answers by majority vote. Problems 7.1-7.4 come last.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset

from appendix_e import replace_linear_with_lora
from ch05 import calc_loss_batch, generate

# The text between the prompt and the answer in the Alpaca template (section 7.2).
RESPONSE_PREFIX = "\n\n### Response:\n"
# Its Phi-3 counterpart (exercise 7.1).
PHI_RESPONSE_PREFIX = "\n<|assistant|>:\n"


def format_input(entry):
    """Return the Alpaca-style prompt for one entry (instruction, and input if any).

    Book section: 7.2.
    Task: ``entry`` is a dict with "instruction", "input" and "output". Build
    "Below is an instruction that describes a task. Write a response that appropriately
    completes the request." followed by "\\n\\n### Instruction:\\n" and the instruction, then,
    only when the input is not empty, "\\n\\n### Input:\\n" and the input.
    Returns: the prompt string (without the response part).
    """
    raise NotImplementedError("Exercise ch07.format_input: Return the Alpaca-style prompt for one entry (instruction, and input if any).")


def partition_data(data, train_frac=0.85, test_frac=0.1):
    """Split the entries, in order, into (train, test, validation) lists like the book.

    Book section: 7.2.
    Task: no shuffling: the first ``int(n * train_frac)`` entries are for training, the next
    ``int(n * test_frac)`` for testing, and the rest for validation.
    Returns: ``(train_data, test_data, val_data)``, three lists (note the order).
    """
    raise NotImplementedError("Exercise ch07.partition_data: Split the entries, in order, into (train, test, validation) lists like the book.")


class InstructionDataset(Dataset):
    """Pre-tokenized instruction data: one list of token ids per entry.

    Book section: 7.3.
    Task: for every entry encode ``format_input(entry) + RESPONSE_PREFIX + entry["output"]``
    once, in ``__init__``, and keep the lists in ``self.encoded_texts``; keep ``data`` in
    ``self.data``.
    Returns (``__getitem__``): the list of token ids of entry ``index`` (not a tensor: the
    collate function pads it).
    """

    def __init__(self, data, tokenizer):
        """Store the data and encode every entry's full text (prompt, response prefix, output)."""
        raise NotImplementedError("Exercise ch07.InstructionDataset: Store the data and encode every entry's full text (prompt, response prefix, output).")

    def __getitem__(self, index):
        """Return the token id list of entry ``index``."""
        raise NotImplementedError("Exercise ch07.InstructionDataset: Return the token id list of entry ``index``.")

    def __len__(self):
        """Return the number of entries."""
        raise NotImplementedError("Exercise ch07.InstructionDataset: Return the number of entries.")


def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None,
                      device="cpu"):
    """Pad a batch of token lists and return ``(inputs, targets)`` with masked padding.

    Book section: 7.3 (the final version of the collate function).
    Task: let ``L`` be the longest item length + 1. For each item: append one ``pad_token_id``
    (it doubles as the <|endoftext|> token), pad with ``pad_token_id`` to length ``L``, take
    ``inputs`` = all but the last token and ``targets`` = all but the first (shifted by one).
    In each target row keep the first ``pad_token_id`` and replace every later one by
    ``ignore_index``. Then, if ``allowed_max_length`` is given, truncate both to that length.
    Returns: two ``(batch, L - 1)`` tensors (or shorter after truncation) on ``device``.
    Example: items ``[0, 1, 2, 3, 4]`` and ``[5, 6]`` give targets ``[1, 2, 3, 4, 50256]`` and
    ``[6, 50256, -100, -100, -100]``.
    Hints:
    - ``torch.nonzero(targets == pad_token_id)`` lists the pad positions.
    """
    raise NotImplementedError("Exercise ch07.custom_collate_fn: Pad a batch of token lists and return ``(inputs, targets)`` with masked padding.")


def extract_response(response_text, input_text):
    """Return the model's answer: the text after the prompt, without "### Response:".

    Book section: 7.7.
    Task: ``response_text`` is the decoded output of ``generate``, which starts with the prompt
    ``input_text``. Drop the prompt, remove the "### Response:" marker and strip whitespace.
    Returns: the answer string.
    """
    raise NotImplementedError("Exercise ch07.extract_response: Return the model's answer: the text after the prompt, without \"### Response:\".")


def sample_answers(model, idx, num_samples, max_new_tokens, context_size, temperature=1.0,
                   top_k=None, eos_id=None):
    """Sample ``num_samples`` answers to one prompt and return the new tokens of each.

    Book section: 7.8 (inference-time scaling).
    Task: ``idx`` holds one prompt, shape ``(1, num_tokens)`` (accept ``(num_tokens,)`` too;
    raise ``ValueError`` for a batch of several prompts). Call the chapter-5 ``generate`` once
    per sample, one after the other, with batch size 1 and the given settings, and keep only
    the tokens after the prompt, cut before the first ``eos_id`` if there is one.
    Returns: a list of ``num_samples`` lists of token ids.
    Hints:
    - Sampling uses the global RNG: the caller seeds it for reproducible answers.
    """
    raise NotImplementedError("Exercise ch07.majority_vote: Sample ``num_samples`` answers to one prompt and return the new tokens of each.")


def majority_vote(answers):
    """Return the most frequent answer; on a tie, the tied answer that appears first.

    Book section: 7.8 (inference-time scaling).
    Task: ``answers`` is a non-empty sequence of answers: strings, or token id lists (which are
    not hashable: compare them by content). Raise ``ValueError`` for an empty sequence.
    Returns: one of the given answer objects.
    Hints:
    - ``collections.Counter`` over ``tuple(answer)`` for lists.
    """
    raise NotImplementedError("Exercise ch07.majority_vote: Return the most frequent answer; on a tie, the tied answer that appears first.")


# ---- Problems ---------------------------------------------------------------------------------


def format_input_phi(entry):
    """Return the Phi-3 style prompt: "<|user|>\\n" + instruction (+ "\\n" + input if any).

    Book section: 7.2 (exercise 7.1, "Changing prompt styles").
    Task: same role as ``format_input`` with the Phi-3 template. As in the book's solution the
    response is appended later after ``PHI_RESPONSE_PREFIX`` ("\\n<|assistant|>:\\n"), so it is
    not part of this string.
    Returns: the prompt string.
    """
    raise NotImplementedError("Exercise 7.1: Return the Phi-3 style prompt: \"<|user|>\\n\" + instruction (+ \"\\n\" + input if any).")


class InstructionDatasetMasked(Dataset):
    """Instruction data that also remembers how long each prompt is.

    Book section: 7.3 (exercise 7.2, "Instruction and input masking").
    Task: like ``InstructionDataset`` (``self.data``, ``self.encoded_texts``), and also keep in
    ``self.instruction_lengths`` the number of tokens of ``format_input(entry)`` encoded alone.
    Returns (``__getitem__``): a tuple ``(instruction_length, token_ids)``.
    """

    def __init__(self, data, tokenizer):
        """Encode every entry's full text and its prompt's length."""
        raise NotImplementedError("Exercise 7.2: Encode every entry's full text and its prompt's length.")

    def __getitem__(self, index):
        """Return ``(instruction_length, token_ids)`` of entry ``index``."""
        raise NotImplementedError("Exercise 7.2: Return ``(instruction_length, token_ids)`` of entry ``index``.")

    def __len__(self):
        """Return the number of entries."""
        raise NotImplementedError("Exercise 7.2: Return the number of entries.")


def custom_collate_fn_masked(batch, pad_token_id=50256, ignore_index=-100,
                             allowed_max_length=None, device="cpu"):
    """Collate ``(instruction_length, ids)`` items, also masking the prompt in the targets.

    Book section: 7.3 (exercise 7.2).
    Task: do what ``custom_collate_fn`` does with the ``ids``; in addition, before the optional
    truncation, set the first ``instruction_length - 1`` targets of each row to
    ``ignore_index`` (target ``j`` is token ``j + 1``, so those targets are prompt tokens).
    Returns: ``(inputs, targets)`` on ``device``, shaped like ``custom_collate_fn``'s.
    """
    raise NotImplementedError("Exercise 7.2: Collate ``(instruction_length, ids)`` items, also masking the prompt in the targets.")


def exercise_7_3_prepare_loaders(data, tokenizer, batch_size=8, allowed_max_length=1024,
                                 num_workers=0, seed=123):
    """Return ``(train_loader, val_loader, test_loader)`` for an Alpaca-style data set.

    Book section: 7.3 (exercise 7.3, "Fine-tuning on the original Alpaca dataset").
    Task: only the data preparation: split with ``partition_data``, wrap each part in an
    ``InstructionDataset``, and build DataLoaders whose ``collate_fn`` is ``custom_collate_fn``
    with ``allowed_max_length`` bound by ``functools.partial``. The training loader shuffles,
    using ``generator=torch.Generator().manual_seed(seed)``, and drops the last incomplete
    batch; the validation and test loaders keep the order and every example.
    Returns: the three DataLoaders (note the order: train, validation, test).
    """
    raise NotImplementedError("Exercise 7.3: Return ``(train_loader, val_loader, test_loader)`` for an Alpaca-style data set.")


def exercise_7_4_add_lora(model, rank=16, alpha=16):
    """Freeze the model, add LoRA to every linear layer, and return the trainable counts.

    Book section: 7.6 (exercise 7.4, "Parameter-efficient fine-tuning with LoRA").
    Task: count the trainable parameters, freeze all parameters, then call appendix E's
    ``replace_linear_with_lora(model, rank, alpha)`` and count again.
    Returns: ``(trainable before, trainable after)`` as ints; after, only LoRA's A and B train.
    """
    raise NotImplementedError("Exercise 7.4: Freeze the model, add LoRA to every linear layer, and return the trainable counts.")


def exercise_7_4_training_step(model, input_batch, target_batch, optimizer, device):
    """Do one optimizer step on the chapter-5 next-token loss and return the loss.

    Book section: 7.6 (exercise 7.4).
    Task: train mode, zero the gradients, compute chapter 5's ``calc_loss_batch`` (targets equal
    to -100 are ignored by the cross-entropy), backpropagate and step the optimizer.
    Returns: the loss as a Python float.
    """
    raise NotImplementedError("Exercise 7.4: Do one optimizer step on the chapter-5 next-token loss and return the loss.")
