"""Chapter 6: Fine-tuning for classification (spam or not spam).

You will balance and split the SMS spam data, build a padded data set, turn a GPT model into a
two-class classifier, compute its loss and accuracy from the last token, fine-tune it, and use it
on new text. The problems 6.1-6.3 come last.

The data arrives as plain Python rows (dicts with "Label" and "Text") and CSV files; no pandas.
"""

from __future__ import annotations

import csv
import random

import torch
import torch.nn as nn
from torch.utils.data import Dataset


def create_balanced_dataset(rows, seed=123):
    """Return a balanced list of rows: all spam rows plus as many randomly chosen ham rows.

    Book section: 6.2.
    Task: ``rows`` is an iterable of dicts with a "Label" ("ham" or "spam") and a "Text". Keep
    every spam row and undersample the ham rows so both classes have the same size.
    Returns: a new list: the sampled ham rows first (in sampling order), then the spam rows in
    their original order. Raise ``ValueError`` if there are fewer ham than spam rows.
    Hints:
    - Sample with ``random.Random(seed).sample(ham_rows, k)`` so the result is deterministic.
    """
    # BEGIN SOLUTION
    rows = list(rows)
    spam = [row for row in rows if row["Label"] == "spam"]
    ham = [row for row in rows if row["Label"] == "ham"]
    if len(ham) < len(spam):
        raise ValueError(f"cannot balance {len(ham)} ham rows against {len(spam)} spam rows")
    ham_subset = random.Random(seed).sample(ham, len(spam))
    return ham_subset + spam
    # END SOLUTION


def random_split(rows, train_frac, validation_frac, seed=123):
    """Shuffle the rows and split them into (train, validation, test) lists.

    Book section: 6.2.
    Task: shuffle a copy of ``rows`` deterministically, then cut it like the book: the first
    ``int(n * train_frac)`` rows for training, the next ``int(n * validation_frac)`` for
    validation, and all remaining rows for testing.
    Returns: a tuple ``(train, validation, test)`` of lists. ``rows`` itself is not modified.
    Hints:
    - ``random.Random(seed).shuffle(copy)`` shuffles in place with its own generator.
    """
    # BEGIN SOLUTION
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    train_end = int(len(shuffled) * train_frac)
    validation_end = train_end + int(len(shuffled) * validation_frac)
    return shuffled[:train_end], shuffled[train_end:validation_end], shuffled[validation_end:]
    # END SOLUTION


class SpamDataset(Dataset):
    """A classification data set: token ids padded to one length, with a 0/1 label.

    Book section: 6.3.
    Task: read ``csv_file`` (a header row with the columns "Label", holding 0 for ham or 1 for
    spam, and "Text"), encode every text with ``tokenizer.encode``, and make all sequences the
    same length so batches can be stacked:
    - ``max_length=None``: ``self.max_length`` is the length of the longest encoded text;
    - otherwise ``self.max_length = max_length`` and longer texts are truncated to it;
    then pad every sequence with ``pad_token_id`` up to ``self.max_length``.
    Attributes: ``data`` (the CSV rows), ``encoded_texts`` (padded id lists), ``max_length``.
    Returns (``__getitem__``): ``(ids, label)``, a ``torch.long`` tensor of shape
    ``(max_length,)`` and a scalar ``torch.long`` tensor.
    Hints:
    - ``csv.DictReader`` gives each row as a dict; the label arrives as a string.
    """

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        """Read the CSV file, encode, truncate and pad every text; set ``self.max_length``."""
        # BEGIN SOLUTION
        with open(csv_file, newline="", encoding="utf-8") as f:
            self.data = list(csv.DictReader(f))
        self.labels = [int(row["Label"]) for row in self.data]
        self.encoded_texts = [tokenizer.encode(row["Text"]) for row in self.data]

        if max_length is None:
            self.max_length = max((len(ids) for ids in self.encoded_texts), default=0)
        else:
            self.max_length = max_length
            self.encoded_texts = [ids[:max_length] for ids in self.encoded_texts]

        self.encoded_texts = [
            ids + [pad_token_id] * (self.max_length - len(ids)) for ids in self.encoded_texts
        ]
        # END SOLUTION

    def __getitem__(self, index):
        """Return ``(token ids, label)`` of example ``index`` as two ``torch.long`` tensors."""
        # BEGIN SOLUTION
        return (
            torch.tensor(self.encoded_texts[index], dtype=torch.long),
            torch.tensor(self.labels[index], dtype=torch.long),
        )
        # END SOLUTION

    def __len__(self):
        """Return the number of examples."""
        # BEGIN SOLUTION
        return len(self.data)
        # END SOLUTION


def prepare_classifier(model, num_classes=2):
    """Turn a GPTModel into a classifier with a trainable ``num_classes`` output head.

    Book section: 6.5.
    Task: in place, (1) freeze every parameter of ``model``; (2) replace ``model.out_head`` with
    ``nn.Linear(emb_dim, num_classes)`` (with a bias, as in the book), where ``emb_dim`` is read
    from the model itself (the old head's input size), on the same device as the old head;
    (3) make the last transformer block (``model.trf_blocks[-1]``) and ``model.final_norm``
    trainable again. Do not seed inside: the caller seeds before calling.
    Returns: the same ``model`` object. Its output becomes ``(batch, num_tokens, num_classes)``.
    Hints:
    - ``param.requires_grad = False`` freezes a parameter; a freshly built layer is trainable.
    """
    # BEGIN SOLUTION
    for param in model.parameters():
        param.requires_grad = False
    old_head = model.out_head
    model.out_head = nn.Linear(
        old_head.in_features, num_classes,
        device=old_head.weight.device, dtype=old_head.weight.dtype,
    )
    for param in model.trf_blocks[-1].parameters():
        param.requires_grad = True
    for param in model.final_norm.parameters():
        param.requires_grad = True
    return model
    # END SOLUTION


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """Return the classification accuracy over the first ``num_batches`` batches.

    Book section: 6.6.
    Task: in eval mode and without gradients, predict each example's class as the argmax of the
    LAST token's logits, and count correct predictions over the first ``num_batches`` batches
    (all batches when ``None``; never more than the loader has). Put the model back in the mode
    (train or eval) it was in.
    Returns: a float in [0, 1] (correct / examples seen); ``float("nan")`` for an empty loader.
    Hints:
    - ``model(inputs)[:, -1, :]`` has shape ``(batch, num_classes)``.
    """
    # BEGIN SOLUTION
    was_training = model.training
    model.eval()
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    correct, seen = 0, 0
    with torch.no_grad():
        for i, (input_batch, target_batch) in enumerate(data_loader):
            if i >= limit:
                break
            input_batch, target_batch = input_batch.to(device), target_batch.to(device)
            logits = model(input_batch)[:, -1, :]
            predicted = torch.argmax(logits, dim=-1)
            seen += predicted.shape[0]
            correct += int((predicted == target_batch).sum().item())
    model.train(was_training)
    if seen == 0:
        return float("nan")
    return correct / seen
    # END SOLUTION


def calc_loss_batch(input_batch, target_batch, model, device):
    """Return the cross-entropy of the last token's logits against the class labels.

    Book section: 6.6.
    Task: move both batches to ``device``, run the model, keep only the last position's logits
    and compute the cross-entropy with the labels.
    Returns: a scalar tensor (with gradients, for training).
    Hints:
    - Inputs are ``(batch, num_tokens)``, labels ``(batch,)``.
    """
    # BEGIN SOLUTION
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, -1, :]
    return nn.functional.cross_entropy(logits, target_batch)
    # END SOLUTION


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Return the mean ``calc_loss_batch`` over the first ``num_batches`` batches.

    Book section: 6.6.
    Task: average the batch losses over the first ``num_batches`` batches (all when ``None``;
    never more than the loader has).
    Returns: a Python float; ``float("nan")`` for an empty loader.
    """
    # BEGIN SOLUTION
    if len(data_loader) == 0:
        return float("nan")
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= limit:
            break
        total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / limit
    # END SOLUTION


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Return ``(train_loss, val_loss)`` over ``eval_iter`` batches each, then resume training.

    Book section: 6.7.
    Task: switch to eval mode, compute both losses without gradients with ``calc_loss_loader``,
    then switch the model back to train mode.
    Returns: a tuple of two floats.
    """
    # BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss
    # END SOLUTION


def train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                            eval_freq, eval_iter):
    """Fine-tune the classifier and return the training figures (print nothing).

    Book section: 6.7.
    Task: for each epoch, put the model in train mode and for every training batch: zero the
    gradients, compute ``calc_loss_batch``, backpropagate, step the optimizer, and add the batch
    size to ``examples_seen``. Count optimizer steps from 0; at every step that is a multiple of
    ``eval_freq`` (step 0 included) record ``evaluate_model``'s two losses. After each epoch
    record the train and validation accuracy over ``eval_iter`` batches.
    Returns: ``(train_losses, val_losses, train_accs, val_accs, examples_seen)``: four lists of
    floats and an int.
    Hints:
    - The book starts ``global_step`` at -1 and increments it after each step.
    """
    # BEGIN SOLUTION
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, global_step = 0, -1
    for _ in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            examples_seen += input_batch.shape[0]
            global_step += 1
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(
                    model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
        train_accs.append(calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter))
        val_accs.append(calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter))
    return train_losses, val_losses, train_accs, val_accs, examples_seen
    # END SOLUTION


def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """Classify one text with the fine-tuned model: return "spam" or "not spam".

    Book section: 6.8.
    Task: put the model in eval mode and encode ``text``. The model supports
    ``model.pos_emb.weight.shape[0]`` positions (its context length; the printed book reads
    ``shape[1]`` by mistake). Truncate the ids to that length, and also to ``max_length`` if
    given; when ``max_length`` is given, pad with ``pad_token_id`` up to
    ``min(max_length, context length)`` (as in training). With ``max_length=None`` do not pad.
    Predict with the last token's logits, without gradients.
    Returns: "spam" when class 1 wins, otherwise "not spam".
    """
    # BEGIN SOLUTION
    model.eval()
    input_ids = tokenizer.encode(text)
    supported = model.pos_emb.weight.shape[0]
    length = supported if max_length is None else min(max_length, supported)
    input_ids = input_ids[:length]
    if max_length is not None:
        input_ids += [pad_token_id] * (length - len(input_ids))
    input_tensor = torch.tensor(input_ids, device=device).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]
    return "spam" if int(torch.argmax(logits, dim=-1).item()) == 1 else "not spam"
    # END SOLUTION


# ---- Problems ---------------------------------------------------------------------------------


def exercise_6_1_full_context_dataset(csv_file, tokenizer, context_length):
    """Return a SpamDataset whose texts are padded to the model's full context length.

    Book section: 6.3 (exercise 6.1, "Increasing the context length").
    Task: instead of padding to the longest text, pad (and truncate) every text to
    ``context_length`` tokens, e.g. 1,024 for GPT-2.
    Returns: a ``SpamDataset`` with ``max_length == context_length``.
    """
    # BEGIN SOLUTION
    return SpamDataset(csv_file, tokenizer, max_length=context_length)
    # END SOLUTION


def exercise_6_2_make_all_trainable(model):
    """Make every parameter of the model trainable (fine-tune the whole model).

    Book section: 6.5 (exercise 6.2, "Fine-tuning the whole model").
    Task: after ``prepare_classifier`` froze most of the model, unfreeze all of it.
    Returns: the same ``model`` object.
    """
    # BEGIN SOLUTION
    for param in model.parameters():
        param.requires_grad = True
    return model
    # END SOLUTION


def exercise_6_3_first_token_loss(input_batch, target_batch, model, device):
    """Return the classification loss computed from the FIRST token's logits.

    Book section: 6.6 (exercise 6.3, "Fine-tuning the first versus last token").
    Task: like ``calc_loss_batch``, but use the logits at position 0 instead of the last one.
    Returns: a scalar tensor.
    Hints:
    - Why is this worse? With causal attention, which tokens can position 0 see?
    """
    # BEGIN SOLUTION
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, 0, :]
    return nn.functional.cross_entropy(logits, target_batch)
    # END SOLUTION
