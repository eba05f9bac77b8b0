"""Chapter 7: fine-tuning a GPT model to follow instructions.

Leaf to root: Alpaca-style prompts, the book's train/test/validation split, a pre-tokenized
``InstructionDataset``, the padding/shifting/-100-masking collate function, extracting a response
from generated text, and majority voting over sampled answers (inference-time scaling).
The book's problems 7.1-7.4 follow at the end.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, Hashable, Protocol, Sequence, TypeVar

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from .appendix_e import replace_linear_with_lora
from .ch05 import calc_loss_batch, generate


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


Entry = dict[str, str]

# The line that separates the prompt from the answer in the Alpaca template (7.2).
RESPONSE_PREFIX = "\n\n### Response:\n"
# Its Phi-3 counterpart (exercise 7.1).
PHI_RESPONSE_PREFIX = "\n<|assistant|>:\n"


# ---- 7.2 Preparing a data set for supervised instruction fine-tuning ------------------------


def format_input(entry: Entry) -> str:
    """The Alpaca-style prompt: preamble, instruction, and the input section if there is one."""
    instruction_text = (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request."
        f"\n\n### Instruction:\n{entry['instruction']}"
    )
    # An empty input leaves out the whole "### Input:" section, not just its text.
    input_text = f"\n\n### Input:\n{entry['input']}" if entry.get("input") else ""
    return instruction_text + input_text


def partition_data(
    data: Sequence[Entry], train_frac: float = 0.85, test_frac: float = 0.1
) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """The book's split, in order (no shuffling): ``(train, test, validation)``.

    ``int(n * train_frac)`` entries for training, the next ``int(n * test_frac)`` for testing, the
    rest for validation.
    """
    train_portion = int(len(data) * train_frac)
    test_portion = int(len(data) * test_frac)
    train_data = list(data[:train_portion])
    test_data = list(data[train_portion : train_portion + test_portion])
    val_data = list(data[train_portion + test_portion :])
    return train_data, test_data, val_data


# ---- 7.3 Organizing data into training batches ----------------------------------------------


class InstructionDataset(Dataset[list[int]]):
    """Each entry pre-encoded once: prompt, then "\\n\\n### Response:\\n", then the output."""

    def __init__(self, data: Sequence[Entry], tokenizer: _Tokenizer) -> None:
        self.data = data
        self.encoded_texts = [
            tokenizer.encode(format_input(entry) + RESPONSE_PREFIX + entry["output"])
            for entry in data
        ]

    def __getitem__(self, index: int) -> list[int]:
        return self.encoded_texts[index]

    def __len__(self) -> int:
        return len(self.data)


def _pad_and_shift(
    item: Sequence[int], batch_max_length: int, pad_token_id: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One row of the book's collate: append an end token, pad, shift, mask the extra padding."""
    # The first pad_token_id (50256 = <|endoftext|>) is kept as a target: the model must learn
    # to end its answer. Every later one is padding and is ignored by the loss.
    padded = list(item) + [pad_token_id] * (batch_max_length - len(item))
    inputs = torch.tensor(padded[:-1])  # (batch_max_length - 1,)
    targets = torch.tensor(padded[1:])  # (batch_max_length - 1,) next-token targets
    pad_positions = torch.nonzero(targets == pad_token_id).flatten()
    if pad_positions.numel() > 1:
        targets[pad_positions[1:]] = ignore_index
    return inputs, targets


def custom_collate_fn(
    batch: Sequence[Sequence[int]],
    pad_token_id: int = 50256,
    ignore_index: int = -100,
    allowed_max_length: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's final collate: pad to the longest item + 1, shift targets, mask padding.

    Returns ``(inputs, targets)``, each ``(batch, length)`` with ``length`` = longest item, or
    ``allowed_max_length`` if that is smaller. Like the book, every ``pad_token_id`` in a target
    row after its first one becomes ``ignore_index``.
    """
    # +1: room for the end-of-text token appended to the longest item.
    batch_max_length = max(len(item) + 1 for item in batch)
    inputs_lst, targets_lst = [], []
    for item in batch:
        inputs, targets = _pad_and_shift(item, batch_max_length, pad_token_id, ignore_index)
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)


# ---- 7.7 Extracting and saving responses -----------------------------------------------------


def extract_response(response_text: str, input_text: str) -> str:
    """The model's answer: the generated text after the prompt, without "### Response:"."""
    return response_text[len(input_text) :].replace("### Response:", "").strip()


# ---- 7.8 Inference-time scaling: sampling and majority vote ----------------------------------


def sample_answers(
    model: nn.Module,
    idx: torch.Tensor,
    num_samples: int,
    max_new_tokens: int,
    context_size: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    eos_id: int | None = None,
) -> list[list[int]]:
    """Draw ``num_samples`` continuations of one prompt with the chapter-5 ``generate``.

    ``idx`` is one prompt, shape ``(1, num_tokens)`` (or ``(num_tokens,)``). Each sample is one
    batch-size-1 ``generate`` call, one after another, so the result depends only on the global
    RNG state (seed it for reproducible samples). Returns the NEW token ids of each sample, cut
    before the first ``eos_id``.
    """
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # (1, num_tokens)
    if idx.shape[0] != 1:
        raise ValueError(f"sample_answers expects one prompt, got a batch of {idx.shape[0]}")
    prompt_length = idx.shape[1]
    samples: list[list[int]] = []
    for _ in range(num_samples):
        out = generate(
            model, idx, max_new_tokens, context_size,
            temperature=temperature, top_k=top_k, eos_id=eos_id,
        )
        new_tokens = out[0, prompt_length:].tolist()
        if eos_id is not None and eos_id in new_tokens:
            new_tokens = new_tokens[: new_tokens.index(eos_id)]
        samples.append(new_tokens)
    return samples


T = TypeVar("T")


def _vote_key(answer: Any) -> Hashable:
    # Token lists are not hashable: count them as tuples, return the original object.
    if isinstance(answer, torch.Tensor):
        return tuple(answer.tolist())
    if isinstance(answer, list):
        return tuple(answer)
    return answer


def majority_vote(answers: Sequence[T]) -> T:
    """The most frequent answer; on a tie, the tied answer that appears first."""
    if len(answers) == 0:
        raise ValueError("majority_vote needs at least one answer")
    counts = Counter(_vote_key(answer) for answer in answers)
    best = max(counts.values())
    # Scanning in order makes ties go to the answer seen first.
    for answer in answers:
        if counts[_vote_key(answer)] == best:
            return answer
    raise AssertionError("unreachable")  # pragma: no cover


# ---- Problems --------------------------------------------------------------------------------


def format_input_phi(entry: Entry) -> str:
    """Exercise 7.1: the Phi-3 prompt "<|user|>\\n{instruction}" (+ "\\n{input}" if any).

    As in the book's solution, the answer is then appended after ``PHI_RESPONSE_PREFIX``
    ("\\n<|assistant|>:\\n").
    """
    input_text = f"\n{entry['input']}" if entry.get("input") else ""
    return f"<|user|>\n{entry['instruction']}" + input_text


class InstructionDatasetMasked(Dataset[tuple[int, list[int]]]):
    """Exercise 7.2: like ``InstructionDataset``, items ``(instruction_length, token_ids)``.

    ``instruction_length`` is the number of tokens of ``format_input(entry)`` alone, the part
    whose targets the masked collate function hides from the loss.
    """

    def __init__(self, data: Sequence[Entry], tokenizer: _Tokenizer) -> None:
        self.data = data
        self.instruction_lengths: list[int] = []
        self.encoded_texts: list[list[int]] = []
        for entry in data:
            prompt = format_input(entry)
            self.encoded_texts.append(tokenizer.encode(prompt + RESPONSE_PREFIX + entry["output"]))
            self.instruction_lengths.append(len(tokenizer.encode(prompt)))

    def __getitem__(self, index: int) -> tuple[int, list[int]]:
        return self.instruction_lengths[index], self.encoded_texts[index]

    def __len__(self) -> int:
        return len(self.data)


def custom_collate_fn_masked(
    batch: Sequence[tuple[int, Sequence[int]]],
    pad_token_id: int = 50256,
    ignore_index: int = -100,
    allowed_max_length: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exercise 7.2: ``custom_collate_fn`` that also masks the instruction part of the targets.

    Target ``j`` is the token at ``j + 1``, so the first ``instruction_length - 1`` targets are
    still instruction tokens and become ``ignore_index`` (the book's solution).
    """
    batch_max_length = max(len(item) + 1 for _, item in batch)
    inputs_lst, targets_lst = [], []
    for instruction_length, item in batch:
        inputs, targets = _pad_and_shift(item, batch_max_length, pad_token_id, ignore_index)
        targets[: max(instruction_length - 1, 0)] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)


def exercise_7_3_prepare_loaders(
    data: Sequence[Entry],
    tokenizer: _Tokenizer,
    batch_size: int = 8,
    allowed_max_length: int = 1024,
    num_workers: int = 0,
    seed: int = 123,
) -> tuple[DataLoader[list[int]], DataLoader[list[int]], DataLoader[list[int]]]:
    """Exercise 7.3: train/validation/test loaders for a (large) Alpaca-style data set.

    ``partition_data`` split; ``InstructionDataset``; ``custom_collate_fn`` bound with
    ``functools.partial`` to ``allowed_max_length``. The training loader shuffles (with its own
    generator seeded by ``seed``, so its order does not depend on the global RNG) and drops the
    last incomplete batch; validation and test keep order and every example.
    """
    train_data, test_data, val_data = partition_data(data)
    collate = partial(custom_collate_fn, allowed_max_length=allowed_max_length)
    train_loader = DataLoader(
        InstructionDataset(train_data, tokenizer),
        batch_size=batch_size,
        collate_fn=collate,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = DataLoader(
        InstructionDataset(val_data, tokenizer),
        batch_size=batch_size,
        collate_fn=collate,
        shuffle=False,
        drop_last=False,
        num_workers=num_workers,
    )
    test_loader = DataLoader(
        InstructionDataset(test_data, tokenizer),
        batch_size=batch_size,
        collate_fn=collate,
        shuffle=False,
        drop_last=False,
        num_workers=num_workers,
    )
    return train_loader, val_loader, test_loader


def _count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def exercise_7_4_add_lora(model: nn.Module, rank: int = 16, alpha: int = 16) -> tuple[int, int]:
    """Exercise 7.4: freeze the model and swap every ``nn.Linear`` for a LoRA-wrapped one.

    Returns ``(trainable parameters before, trainable parameters after)``; after, only the LoRA
    matrices A and B are trainable.
    """
    before = _count_trainable(model)
    for param in model.parameters():
        param.requires_grad = False
    replace_linear_with_lora(model, rank=rank, alpha=alpha)
    return before, _count_trainable(model)


def exercise_7_4_training_step(
    model: nn.Module,
    input_batch: torch.Tensor,
    target_batch: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    device: str | torch.device,
) -> float:
    """Exercise 7.4: one optimizer step on the chapter-5 next-token loss; returns the loss."""
    model.train()
    optimizer.zero_grad()
    loss = calc_loss_batch(input_batch, target_batch, model, device)
    loss.backward()
    optimizer.step()
    return float(loss.item())


__all__ = [
    "RESPONSE_PREFIX",
    "PHI_RESPONSE_PREFIX",
    "format_input",
    "partition_data",
    "InstructionDataset",
    "custom_collate_fn",
    "extract_response",
    "sample_answers",
    "majority_vote",
    "format_input_phi",
    "InstructionDatasetMasked",
    "custom_collate_fn_masked",
    "exercise_7_3_prepare_loaders",
    "exercise_7_4_add_lora",
    "exercise_7_4_training_step",
]
