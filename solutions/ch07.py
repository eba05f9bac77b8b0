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
    # BEGIN SOLUTION
    instruction_text = (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request."
        f"\n\n### Instruction:\n{entry['instruction']}"
    )
    input_text = f"\n\n### Input:\n{entry['input']}" if entry.get("input") else ""
    return instruction_text + input_text
    # END SOLUTION


def partition_data(data, train_frac=0.85, test_frac=0.1):
    """Split the entries, in order, into (train, test, validation) lists like the book.

    Book section: 7.2.
    Task: no shuffling: the first ``int(n * train_frac)`` entries are for training, the next
    ``int(n * test_frac)`` for testing, and the rest for validation.
    Returns: ``(train_data, test_data, val_data)``, three lists (note the order).
    """
    # BEGIN SOLUTION
    train_portion = int(len(data) * train_frac)
    test_portion = int(len(data) * test_frac)
    return (
        list(data[:train_portion]),
        list(data[train_portion:train_portion + test_portion]),
        list(data[train_portion + test_portion:]),
    )
    # END SOLUTION


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
        # BEGIN SOLUTION
        self.data = data
        self.encoded_texts = [
            tokenizer.encode(format_input(entry) + RESPONSE_PREFIX + entry["output"])
            for entry in data
        ]
        # END SOLUTION

    def __getitem__(self, index):
        """Return the token id list of entry ``index``."""
        # BEGIN SOLUTION
        return self.encoded_texts[index]
        # END SOLUTION

    def __len__(self):
        """Return the number of entries."""
        # BEGIN SOLUTION
        return len(self.data)
        # END SOLUTION


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
    # BEGIN SOLUTION
    batch_max_length = max(len(item) + 1 for item in batch)
    inputs_lst, targets_lst = [], []
    for item in batch:
        padded = list(item) + [pad_token_id] * (batch_max_length - len(item))
        inputs = torch.tensor(padded[:-1])
        targets = torch.tensor(padded[1:])
        positions = torch.nonzero(targets == pad_token_id).flatten()
        if positions.numel() > 1:
            targets[positions[1:]] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)
    # END SOLUTION


def extract_response(response_text, input_text):
    """Return the model's answer: the text after the prompt, without "### Response:".

    Book section: 7.7.
    Task: ``response_text`` is the decoded output of ``generate``, which starts with the prompt
    ``input_text``. Drop the prompt, remove the "### Response:" marker and strip whitespace.
    Returns: the answer string.
    """
    # BEGIN SOLUTION
    return response_text[len(input_text):].replace("### Response:", "").strip()
    # END SOLUTION


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
    # BEGIN SOLUTION
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)
    if idx.shape[0] != 1:
        raise ValueError("sample_answers expects a single prompt")
    samples = []
    for _ in range(num_samples):
        out = generate(model, idx, max_new_tokens, context_size,
                       temperature=temperature, top_k=top_k, eos_id=eos_id)
        new_tokens = out[0, idx.shape[1]:].tolist()
        if eos_id is not None and eos_id in new_tokens:
            new_tokens = new_tokens[:new_tokens.index(eos_id)]
        samples.append(new_tokens)
    return samples
    # END SOLUTION


def majority_vote(answers):
    """Return the most frequent answer; on a tie, the tied answer that appears first.

    Book section: 7.8 (inference-time scaling).
    Task: ``answers`` is a non-empty sequence of answers: strings, or token id lists (which are
    not hashable: compare them by content). Raise ``ValueError`` for an empty sequence.
    Returns: one of the given answer objects.
    Hints:
    - ``collections.Counter`` over ``tuple(answer)`` for lists.
    """
    # BEGIN SOLUTION
    if len(answers) == 0:
        raise ValueError("no answers to vote on")

    def key(answer):
        if isinstance(answer, torch.Tensor):
            return tuple(answer.tolist())
        if isinstance(answer, list):
            return tuple(answer)
        return answer

    counts = Counter(key(answer) for answer in answers)
    best = max(counts.values())
    for answer in answers:
        if counts[key(answer)] == best:
            return answer
    # END SOLUTION


# ---- Problems ---------------------------------------------------------------------------------


def format_input_phi(entry):
    """Return the Phi-3 style prompt: "<|user|>\\n" + instruction (+ "\\n" + input if any).

    Book section: 7.2 (exercise 7.1, "Changing prompt styles").
    Task: same role as ``format_input`` with the Phi-3 template. As in the book's solution the
    response is appended later after ``PHI_RESPONSE_PREFIX`` ("\\n<|assistant|>:\\n"), so it is
    not part of this string.
    Returns: the prompt string.
    """
    # BEGIN SOLUTION
    input_text = f"\n{entry['input']}" if entry.get("input") else ""
    return f"<|user|>\n{entry['instruction']}" + input_text
    # END SOLUTION


class InstructionDatasetMasked(Dataset):
    """Instruction data that also remembers how long each prompt is.

    Book section: 7.3 (exercise 7.2, "Instruction and input masking").
    Task: like ``InstructionDataset`` (``self.data``, ``self.encoded_texts``), and also keep in
    ``self.instruction_lengths`` the number of tokens of ``format_input(entry)`` encoded alone.
    Returns (``__getitem__``): a tuple ``(instruction_length, token_ids)``.
    """

    def __init__(self, data, tokenizer):
        """Encode every entry's full text and its prompt's length."""
        # BEGIN SOLUTION
        self.data = data
        self.instruction_lengths = []
        self.encoded_texts = []
        for entry in data:
            prompt = format_input(entry)
            self.encoded_texts.append(tokenizer.encode(prompt + RESPONSE_PREFIX + entry["output"]))
            self.instruction_lengths.append(len(tokenizer.encode(prompt)))
        # END SOLUTION

    def __getitem__(self, index):
        """Return ``(instruction_length, token_ids)`` of entry ``index``."""
        # BEGIN SOLUTION
        return self.instruction_lengths[index], self.encoded_texts[index]
        # END SOLUTION

    def __len__(self):
        """Return the number of entries."""
        # BEGIN SOLUTION
        return len(self.data)
        # END SOLUTION


def custom_collate_fn_masked(batch, pad_token_id=50256, ignore_index=-100,
                             allowed_max_length=None, device="cpu"):
    """Collate ``(instruction_length, ids)`` items, also masking the prompt in the targets.

    Book section: 7.3 (exercise 7.2).
    Task: do what ``custom_collate_fn`` does with the ``ids``; in addition, before the optional
    truncation, set the first ``instruction_length - 1`` targets of each row to
    ``ignore_index`` (target ``j`` is token ``j + 1``, so those targets are prompt tokens).
    Returns: ``(inputs, targets)`` on ``device``, shaped like ``custom_collate_fn``'s.
    """
    # BEGIN SOLUTION
    batch_max_length = max(len(item) + 1 for _, item in batch)
    inputs_lst, targets_lst = [], []
    for instruction_length, item in batch:
        padded = list(item) + [pad_token_id] * (batch_max_length - len(item))
        inputs = torch.tensor(padded[:-1])
        targets = torch.tensor(padded[1:])
        positions = torch.nonzero(targets == pad_token_id).flatten()
        if positions.numel() > 1:
            targets[positions[1:]] = ignore_index
        targets[:max(instruction_length - 1, 0)] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)
    # END SOLUTION


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
    # BEGIN SOLUTION
    train_data, test_data, val_data = partition_data(data)
    collate = partial(custom_collate_fn, allowed_max_length=allowed_max_length)
    train_loader = DataLoader(InstructionDataset(train_data, tokenizer), batch_size=batch_size,
                              collate_fn=collate, shuffle=True, drop_last=True,
                              num_workers=num_workers,
                              generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(InstructionDataset(val_data, tokenizer), batch_size=batch_size,
                            collate_fn=collate, shuffle=False, drop_last=False,
                            num_workers=num_workers)
    test_loader = DataLoader(InstructionDataset(test_data, tokenizer), batch_size=batch_size,
                             collate_fn=collate, shuffle=False, drop_last=False,
                             num_workers=num_workers)
    return train_loader, val_loader, test_loader
    # END SOLUTION


def exercise_7_4_add_lora(model, rank=16, alpha=16):
    """Freeze the model, add LoRA to every linear layer, and return the trainable counts.

    Book section: 7.6 (exercise 7.4, "Parameter-efficient fine-tuning with LoRA").
    Task: count the trainable parameters, freeze all parameters, then call appendix E's
    ``replace_linear_with_lora(model, rank, alpha)`` and count again.
    Returns: ``(trainable before, trainable after)`` as ints; after, only LoRA's A and B train.
    """
    # BEGIN SOLUTION
    before = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for param in model.parameters():
        param.requires_grad = False
    replace_linear_with_lora(model, rank=rank, alpha=alpha)
    after = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return before, after
    # END SOLUTION


def exercise_7_4_training_step(model, input_batch, target_batch, optimizer, device):
    """Do one optimizer step on the chapter-5 next-token loss and return the loss.

    Book section: 7.6 (exercise 7.4).
    Task: train mode, zero the gradients, compute chapter 5's ``calc_loss_batch`` (targets equal
    to -100 are ignored by the cross-entropy), backpropagate and step the optimizer.
    Returns: the loss as a Python float.
    """
    # BEGIN SOLUTION
    model.train()
    optimizer.zero_grad()
    loss = calc_loss_batch(input_batch, target_batch, model, device)
    loss.backward()
    optimizer.step()
    return float(loss.item())
    # END SOLUTION
