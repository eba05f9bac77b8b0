# ch06.py: your exercises for "Fine-tuning for classification" in "Build a Large Language Model
# (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check
# ch06.create_balanced_dataset`); `llmgrade list` shows every id.
#
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
    raise NotImplementedError("Exercise ch06.create_balanced_dataset: Return a balanced list of rows: all spam rows plus as many randomly chosen ham rows.")


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
    raise NotImplementedError("Exercise ch06.create_balanced_dataset: Shuffle the rows and split them into (train, validation, test) lists.")


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
        raise NotImplementedError("Exercise ch06.SpamDataset: Read the CSV file, encode, truncate and pad every text; set ``self.max_length``.")

    def __getitem__(self, index):
        """Return ``(token ids, label)`` of example ``index`` as two ``torch.long`` tensors."""
        raise NotImplementedError("Exercise ch06.SpamDataset: Return ``(token ids, label)`` of example ``index`` as two ``torch.long`` tensors.")

    def __len__(self):
        """Return the number of examples."""
        raise NotImplementedError("Exercise ch06.SpamDataset: Return the number of examples.")


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
    raise NotImplementedError("Exercise ch06.prepare_classifier: Turn a GPTModel into a classifier with a trainable ``num_classes`` output head.")


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
    raise NotImplementedError("Exercise ch06.calc_accuracy_loader: Return the classification accuracy over the first ``num_batches`` batches.")


def calc_loss_batch(input_batch, target_batch, model, device):
    """Return the cross-entropy of the last token's logits against the class labels.

    Book section: 6.6.
    Task: move both batches to ``device``, run the model, keep only the last position's logits
    and compute the cross-entropy with the labels.
    Returns: a scalar tensor (with gradients, for training).
    Hints:
    - Inputs are ``(batch, num_tokens)``, labels ``(batch,)``.
    """
    raise NotImplementedError("Exercise ch06.calc_loss_batch: Return the cross-entropy of the last token's logits against the class labels.")


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Return the mean ``calc_loss_batch`` over the first ``num_batches`` batches.

    Book section: 6.6.
    Task: average the batch losses over the first ``num_batches`` batches (all when ``None``;
    never more than the loader has).
    Returns: a Python float; ``float("nan")`` for an empty loader.
    """
    raise NotImplementedError("Exercise ch06.calc_loss_batch: Return the mean ``calc_loss_batch`` over the first ``num_batches`` batches.")


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Return ``(train_loss, val_loss)`` over ``eval_iter`` batches each, then resume training.

    Book section: 6.7.
    Task: switch to eval mode, compute both losses without gradients with ``calc_loss_loader``,
    then switch the model back to train mode.
    Returns: a tuple of two floats.
    """
    raise NotImplementedError("Exercise ch06.train_classifier_simple: Return ``(train_loss, val_loss)`` over ``eval_iter`` batches each, then resume training.")


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
    raise NotImplementedError("Exercise ch06.train_classifier_simple: Fine-tune the classifier and return the training figures (print nothing).")


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
    raise NotImplementedError("Exercise ch06.classify_review: Classify one text with the fine-tuned model: return \"spam\" or \"not spam\".")


# ---- Problems ---------------------------------------------------------------------------------


def exercise_6_1_full_context_dataset(csv_file, tokenizer, context_length):
    """Return a SpamDataset whose texts are padded to the model's full context length.

    Book section: 6.3 (exercise 6.1, "Increasing the context length").
    Task: instead of padding to the longest text, pad (and truncate) every text to
    ``context_length`` tokens, e.g. 1,024 for GPT-2.
    Returns: a ``SpamDataset`` with ``max_length == context_length``.
    """
    raise NotImplementedError("Exercise 6.1: Return a SpamDataset whose texts are padded to the model's full context length.")


def exercise_6_2_make_all_trainable(model):
    """Make every parameter of the model trainable (fine-tune the whole model).

    Book section: 6.5 (exercise 6.2, "Fine-tuning the whole model").
    Task: after ``prepare_classifier`` froze most of the model, unfreeze all of it.
    Returns: the same ``model`` object.
    """
    raise NotImplementedError("Exercise 6.2: Make every parameter of the model trainable (fine-tune the whole model).")


def exercise_6_3_first_token_loss(input_batch, target_batch, model, device):
    """Return the classification loss computed from the FIRST token's logits.

    Book section: 6.6 (exercise 6.3, "Fine-tuning the first versus last token").
    Task: like ``calc_loss_batch``, but use the logits at position 0 instead of the last one.
    Returns: a scalar tensor.
    Hints:
    - Why is this worse? With causal attention, which tokens can position 0 see?
    """
    raise NotImplementedError("Exercise 6.3: Return the classification loss computed from the FIRST token's logits.")
