"""Chapter 6: fine-tuning a GPT model for spam classification.

Leaf to root: balancing and splitting the SMS data (plain lists of dicts, no pandas), a padded
``SpamDataset``, the model surgery that swaps the language-model head for a 2-class head, the
last-token loss and accuracy, the fine-tuning loop, and classifying a new text.
The book's problems 6.1-6.3 follow at the end.
"""

from __future__ import annotations

import csv
import os
import random
from typing import Any, Iterable, Protocol, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


Row = dict[str, Any]


# ---- 6.2 Preparing the data set --------------------------------------------------------------


def create_balanced_dataset(rows: Iterable[Row], seed: int = 123) -> list[Row]:
    """Undersample "ham" so the data set has as many ham as spam messages.

    Every spam row is kept; ``random.Random(seed).sample`` picks as many ham rows. As in the
    book, the sampled ham rows come first, then the spam rows in their original order.
    """
    rows = list(rows)
    spam = [row for row in rows if row["Label"] == "spam"]
    ham = [row for row in rows if row["Label"] == "ham"]
    if len(ham) < len(spam):
        raise ValueError(f"cannot balance: {len(ham)} ham rows for {len(spam)} spam rows")
    ham_subset = random.Random(seed).sample(ham, len(spam))
    return ham_subset + spam


def random_split(
    rows: Sequence[Row], train_frac: float, validation_frac: float, seed: int = 123
) -> tuple[list[Row], list[Row], list[Row]]:
    """Shuffle (deterministically) and cut into train, validation and test parts.

    The sizes are the book's: ``int(n * train_frac)`` training rows, ``int(n * validation_frac)``
    validation rows, and the rest for testing.
    """
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    train_end = int(len(shuffled) * train_frac)
    validation_end = train_end + int(len(shuffled) * validation_frac)
    return shuffled[:train_end], shuffled[train_end:validation_end], shuffled[validation_end:]


# ---- 6.3 Data loaders ------------------------------------------------------------------------


class SpamDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Token ids of each text, truncated/padded to one length, with its 0/1 label.

    ``csv_file`` has a header with the columns "Label" (0 = ham, 1 = spam) and "Text".
    With ``max_length=None`` every text is padded to the longest encoded text (stored as
    ``self.max_length``); otherwise texts are first truncated to ``max_length`` tokens.
    """

    def __init__(
        self,
        csv_file: str | os.PathLike[str],
        tokenizer: _Tokenizer,
        max_length: int | None = None,
        pad_token_id: int = 50256,
    ) -> None:
        with open(csv_file, newline="", encoding="utf-8") as f:
            self.data: list[Row] = list(csv.DictReader(f))
        self.labels = [int(row["Label"]) for row in self.data]
        self.encoded_texts = [tokenizer.encode(row["Text"]) for row in self.data]

        if max_length is None:
            self.max_length = self._longest_encoded_length()
        else:
            self.max_length = max_length
            self.encoded_texts = [ids[: self.max_length] for ids in self.encoded_texts]

        # Same length everywhere, so the default collate can stack a batch.
        self.encoded_texts = [
            ids + [pad_token_id] * (self.max_length - len(ids)) for ids in self.encoded_texts
        ]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.tensor(self.encoded_texts[index], dtype=torch.long),
            torch.tensor(self.labels[index], dtype=torch.long),
        )

    def __len__(self) -> int:
        return len(self.data)

    def _longest_encoded_length(self) -> int:
        return max((len(ids) for ids in self.encoded_texts), default=0)


# ---- 6.5 Adding a classification head --------------------------------------------------------


def prepare_classifier(model: nn.Module, num_classes: int = 2) -> nn.Module:
    """The book's surgery on a ``GPTModel``, in place: a trainable ``num_classes`` head.

    Freezes every parameter, replaces ``out_head`` by ``nn.Linear(emb_dim, num_classes)`` (with
    a bias, as in the book), and unfreezes the last transformer block and the final LayerNorm.
    The new head's initial weights come from the global RNG: seed before calling (the book uses
    ``torch.manual_seed(123)``).
    """
    for param in model.parameters():
        param.requires_grad = False

    old_head = model.out_head
    assert isinstance(old_head, nn.Linear)
    # emb_dim read off the model itself, so any GPT size works; the head lands where the model is.
    model.out_head = nn.Linear(
        old_head.in_features,
        num_classes,
        device=old_head.weight.device,
        dtype=old_head.weight.dtype,
    )  # new modules are trainable by default

    trf_blocks = model.trf_blocks
    assert isinstance(trf_blocks, nn.Sequential)
    final_norm = model.final_norm
    assert isinstance(final_norm, nn.Module)
    for param in trf_blocks[-1].parameters():
        param.requires_grad = True
    for param in final_norm.parameters():
        param.requires_grad = True
    return model


# ---- 6.6 Loss and accuracy -------------------------------------------------------------------


def _num_batches(data_loader: DataLoader[Any], num_batches: int | None) -> int:
    if num_batches is None:
        return len(data_loader)
    return min(num_batches, len(data_loader))


def calc_accuracy_loader(
    data_loader: DataLoader[Any],
    model: nn.Module,
    device: str | torch.device,
    num_batches: int | None = None,
) -> float:
    """Fraction of correctly classified examples over the first ``num_batches`` batches.

    The prediction is the argmax of the LAST token's logits: under causal attention it is the only
    position that has seen the whole text. Runs in eval mode without gradients and restores the
    model's previous mode. ``nan`` for an empty loader.
    """
    was_training = model.training
    model.eval()
    correct_predictions, num_examples = 0, 0
    limit = _num_batches(data_loader, num_batches)
    with torch.no_grad():
        for i, (input_batch, target_batch) in enumerate(data_loader):
            if i >= limit:
                break
            input_batch, target_batch = input_batch.to(device), target_batch.to(device)
            logits = model(input_batch)[:, -1, :]  # (batch, num_classes)
            predicted_labels = torch.argmax(logits, dim=-1)
            num_examples += predicted_labels.shape[0]
            correct_predictions += int((predicted_labels == target_batch).sum().item())
    model.train(was_training)
    if num_examples == 0:
        return float("nan")
    return correct_predictions / num_examples


def calc_loss_batch(
    input_batch: torch.Tensor,
    target_batch: torch.Tensor,
    model: nn.Module,
    device: str | torch.device,
) -> torch.Tensor:
    """Cross-entropy between the last token's logits and the class labels (a scalar)."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, -1, :]  # (batch, num_classes)
    return nn.functional.cross_entropy(logits, target_batch)


def calc_loss_loader(
    data_loader: DataLoader[Any],
    model: nn.Module,
    device: str | torch.device,
    num_batches: int | None = None,
) -> float:
    """Mean of ``calc_loss_batch`` over the first ``num_batches`` batches (``nan`` if empty)."""
    if len(data_loader) == 0:
        return float("nan")
    limit = _num_batches(data_loader, num_batches)
    total_loss = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= limit:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / limit


# ---- 6.7 Fine-tuning -------------------------------------------------------------------------


def evaluate_model(
    model: nn.Module,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any],
    device: str | torch.device,
    eval_iter: int,
) -> tuple[float, float]:
    """Train and validation loss over ``eval_iter`` batches each, in eval mode; back to train mode."""
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def train_classifier_simple(
    model: nn.Module,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    device: str | torch.device,
    num_epochs: int,
    eval_freq: int,
    eval_iter: int,
) -> tuple[list[float], list[float], list[float], list[float], int]:
    """The book's classification fine-tuning loop, returning its figures instead of printing.

    Returns ``(train_losses, val_losses, train_accs, val_accs, examples_seen)``: losses every
    ``eval_freq`` optimizer steps (step 0 included), accuracies over ``eval_iter`` batches after
    each epoch, and the number of training examples processed.
    """
    train_losses: list[float] = []
    val_losses: list[float] = []
    train_accs: list[float] = []
    val_accs: list[float] = []
    examples_seen, global_step = 0, -1

    for _epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()  # gradients of the previous step must not accumulate
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            examples_seen += input_batch.shape[0]  # examples, not tokens: one label per text
            global_step += 1

            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(
                    model, train_loader, val_loader, device, eval_iter
                )
                train_losses.append(train_loss)
                val_losses.append(val_loss)

        train_accs.append(calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter))
        val_accs.append(calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter))

    return train_losses, val_losses, train_accs, val_accs, examples_seen


# ---- 6.8 Using the classifier ----------------------------------------------------------------


def classify_review(
    text: str,
    model: nn.Module,
    tokenizer: _Tokenizer,
    device: str | torch.device,
    max_length: int | None = None,
    pad_token_id: int = 50256,
) -> str:
    """Classify one text: "spam" if class 1 wins, else "not spam".

    The ids are truncated to the model's context length, read from ``pos_emb.weight.shape[0]``
    (the printed book has ``shape[1]``, the embedding size: an erratum), and to ``max_length``;
    then padded with ``pad_token_id`` up to ``max_length`` (capped at the context length), so the
    last position sees the same layout as during training. ``max_length=None``: no padding.
    """
    model.eval()
    input_ids = tokenizer.encode(text)
    pos_emb = model.pos_emb
    assert isinstance(pos_emb, nn.Embedding)
    supported_context_length = pos_emb.weight.shape[0]
    target_length = (
        supported_context_length if max_length is None
        else min(max_length, supported_context_length)
    )
    input_ids = input_ids[:target_length]
    if max_length is not None:
        input_ids += [pad_token_id] * (target_length - len(input_ids))

    input_tensor = torch.tensor(input_ids, device=device).unsqueeze(0)  # (1, num_tokens)
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]  # (1, num_classes)
    predicted_label = int(torch.argmax(logits, dim=-1).item())
    return "spam" if predicted_label == 1 else "not spam"


# ---- Problems --------------------------------------------------------------------------------


def exercise_6_1_full_context_dataset(
    csv_file: str | os.PathLike[str], tokenizer: _Tokenizer, context_length: int
) -> SpamDataset:
    """Exercise 6.1: a ``SpamDataset`` padded (and truncated) to the model's full context length."""
    return SpamDataset(csv_file, tokenizer, max_length=context_length)


def exercise_6_2_make_all_trainable(model: nn.Module) -> nn.Module:
    """Exercise 6.2: fine-tune the whole model: every parameter trainable again."""
    for param in model.parameters():
        param.requires_grad = True
    return model


def exercise_6_3_first_token_loss(
    input_batch: torch.Tensor,
    target_batch: torch.Tensor,
    model: nn.Module,
    device: str | torch.device,
) -> torch.Tensor:
    """Exercise 6.3: the classification loss from the FIRST token's logits instead of the last.

    Under causal attention the first token sees only itself, which is why the book finds this
    variant much worse.
    """
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, 0, :]  # (batch, num_classes)
    return nn.functional.cross_entropy(logits, target_batch)


__all__ = [
    "create_balanced_dataset",
    "random_split",
    "SpamDataset",
    "prepare_classifier",
    "calc_accuracy_loader",
    "calc_loss_batch",
    "calc_loss_loader",
    "evaluate_model",
    "train_classifier_simple",
    "classify_review",
    "exercise_6_1_full_context_dataset",
    "exercise_6_2_make_all_trainable",
    "exercise_6_3_first_token_loss",
]
