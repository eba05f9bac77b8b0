# ch05.py: your exercises for "Pretraining on unlabeled data" in "Build a Large Language Model
# (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check ch05.text_to_token_ids`);
# `llmgrade list` shows every id.
#
"""Chapter 5: pretraining on unlabeled data.

Convert between text and token ids, compute the training loss, write the pretraining loop,
decode with temperature, top-k and an end token, save and restore checkpoints, and load
OpenAI's pretrained GPT-2 weights into your GPTModel. Then the chapter's exercises 5.1-5.6.
"""

from __future__ import annotations


import torch
import torch.nn as nn

from ch02 import create_dataloader_v1
from ch04 import GPT_CONFIG_124M, GPTModel

# The four GPT-2 sizes OpenAI released (section 5.5); the rest of the config is shared.
model_configs: dict[str, dict[str, int]] = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}


def text_to_token_ids(text, tokenizer):
    """Encode text into a tensor of token ids with a batch dimension, shape (1, num_tokens).

    Book section: 5.1.1.
    Task: encode ``text`` with ``tokenizer`` (allow the special token "<|endoftext|>") and
    return the ids as a tensor with a leading batch dimension of size 1.
    Returns: a LongTensor of shape (1, num_tokens).
    Hint: ``tokenizer.encode(text, allowed_special={"<|endoftext|>"})``, then ``unsqueeze(0)``.
    """
    raise NotImplementedError("Exercise ch05.text_to_token_ids: Encode text into a tensor of token ids with a batch dimension, shape (1, num_tokens).")


def token_ids_to_text(token_ids, tokenizer):
    """Decode a (1, num_tokens) tensor of token ids back into a string.

    Book section: 5.1.1.
    Task: remove the batch dimension and decode the ids with ``tokenizer``.
    Returns: the decoded text (str).
    Hint: ``squeeze(0)`` then ``.tolist()``.
    """
    raise NotImplementedError("Exercise ch05.token_ids_to_text: Decode a (1, num_tokens) tensor of token ids back into a string.")


def calc_loss_batch(input_batch, target_batch, model, device):
    """Return the mean cross-entropy loss of the model's next-token predictions for one batch.

    Book section: 5.1.3.
    Task: move both batches (batch, num_tokens) to ``device``, compute the logits
    (batch, num_tokens, vocab_size) and the cross-entropy against the targets.
    Returns: a scalar tensor (so that ``loss.backward()`` works).
    Hint: ``torch.nn.functional.cross_entropy`` wants logits (N, vocab) and targets (N,):
    flatten the batch and token dimensions together.
    """
    raise NotImplementedError("Exercise ch05.calc_loss_batch: Return the mean cross-entropy loss of the model's next-token predictions for one batch.")


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Return the average calc_loss_batch loss over the first num_batches batches of a loader.

    Book section: 5.1.3.
    Task: average the loss over all batches, or over the first ``num_batches`` if given (never
    more than the loader has).
    Returns: a Python float; ``float("nan")`` for an empty loader.
    Hint: accumulate ``loss.item()``, not the tensor, and stop early with ``break``.
    """
    raise NotImplementedError("Exercise ch05.calc_loss_loader: Return the average calc_loss_batch loss over the first num_batches batches of a loader.")


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Return (train_loss, val_loss) over eval_iter batches each, computed in eval mode.

    Book section: 5.2.
    Task: switch the model to eval mode, compute both losses with calc_loss_loader
    (``num_batches=eval_iter``) without gradients, then switch back to train mode.
    Returns: a tuple of two floats.
    Hint: ``model.eval()`` turns dropout off; ``torch.no_grad()`` saves memory.
    """
    raise NotImplementedError("Exercise ch05.evaluate_model: Return (train_loss, val_loss) over eval_iter batches each, computed in eval mode.")


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer):
    """Train the model for num_epochs and return (train_losses, val_losses, track_tokens_seen).

    Book section: 5.2.
    Task: for each epoch, put the model in train mode and for each batch: zero the gradients,
    compute calc_loss_batch, backpropagate, take an optimizer step, and add the number of input
    tokens to a running count. Count optimizer steps from 0; at every step divisible by
    ``eval_freq`` call evaluate_model(..., eval_iter) and record the train loss, the validation
    loss and the tokens seen so far.
    Returns: three lists of equal length (floats, floats, ints).
    Hints:
    - ``input_batch.numel()`` is the number of tokens in a batch.
    - Printing progress or a sample generated from ``start_context`` with ``tokenizer`` after each
      epoch is optional; it must not change the returned figures.
    """
    raise NotImplementedError("Exercise ch05.train_model_simple: Train the model for num_epochs and return (train_losses, val_losses, track_tokens_seen).")


def softmax_with_temperature(logits, temperature):
    """Return the softmax of logits divided by temperature.

    Book section: 5.3.1.
    Task: scale the logits by ``1 / temperature`` and apply softmax over the last dimension.
    Returns: probabilities with the shape of ``logits``.
    Hint: a temperature above 1 flattens the distribution, below 1 sharpens it.
    """
    raise NotImplementedError("Exercise ch05.softmax_with_temperature: Return the softmax of logits divided by temperature.")


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Extend idx with up to max_new_tokens tokens using temperature scaling, top-k and an end token.

    Book section: 5.3.3.
    Task: like generate_text_simple, but at each step (1) if ``top_k`` is given, set every
    logit below the row's k-th largest logit to -inf; (2) if ``temperature > 0``, sample the
    next token with ``torch.multinomial`` from softmax(logits / temperature), otherwise take the
    argmax; (3) if ``eos_id`` is given, stop when the sampled token is ``eos_id`` (the end token
    itself is not appended).
    Returns: token ids of shape (batch, n + number of generated tokens).
    Hints:
    - ``torch.topk(logits, top_k)`` returns the values sorted from largest to smallest.
    - Extension (not required by the book): for batch size > 1, compare each row with its own
      threshold (``[:, -1:]`` keeps the shape (batch, 1)), and stop only when every row has
      produced ``eos_id``, padding rows that finished earlier with ``eos_id``.
    """
    raise NotImplementedError("Exercise ch05.generate: Extend idx with up to max_new_tokens tokens using temperature scaling, top-k and an end token.")


def save_checkpoint(model, optimizer, path):
    """Save the model's and the optimizer's state_dicts to path in one dict.

    Book section: 5.4.
    Task: ``torch.save`` a dict with the keys "model_state_dict" and "optimizer_state_dict".
    Returns: None.
    Hint: AdamW keeps running averages per parameter; without them, resumed training differs.
    """
    raise NotImplementedError("Exercise ch05.save_checkpoint: Save the model's and the optimizer's state_dicts to path in one dict.")


def load_checkpoint(model, optimizer, path, map_location=None):
    """Load a checkpoint written by save_checkpoint into model and optimizer (in place).

    Book section: 5.4.
    Task: ``torch.load`` the file (with ``map_location`` and ``weights_only=True``), then load
    the two state_dicts into ``model`` and ``optimizer``.
    Returns: None.
    Hint: ``weights_only=True`` refuses to unpickle arbitrary objects, which is safer.
    """
    raise NotImplementedError("Exercise ch05.save_checkpoint: Load a checkpoint written by save_checkpoint into model and optimizer (in place).")


def assign(left, right):
    """Return right as a trainable Parameter after checking that it has left's shape.

    Book section: 5.5.
    Task: raise ``ValueError`` (naming both shapes) if the shapes differ; otherwise return
    ``right`` (a numpy array or a tensor) as an ``nn.Parameter`` with ``left``'s dtype and device.
    Returns: an nn.Parameter.
    Hint: ``torch.as_tensor`` accepts numpy arrays and tensors alike.
    """
    raise NotImplementedError("Exercise ch05.load_weights_into_gpt: Return right as a trainable Parameter after checking that it has left's shape.")


def load_weights_into_gpt(gpt, params):
    """Copy OpenAI's GPT-2 weights from the params dict into gpt (in place).

    Book section: 5.5.
    Task: ``params`` has "wte", "wpe", "g", "b" (final norm) and a list "blocks"; each block has
    ``attn.c_attn`` (the query, key and value weights side by side), ``attn.c_proj``,
    ``mlp.c_fc``, ``mlp.c_proj`` (each with "w" and "b") and ``ln_1``, ``ln_2`` (each with "g"
    and "b"). Assign each array to the matching parameter with ``assign``. GPT-2 ties the output
    head to the token embedding: load "wte" into ``out_head.weight`` as well.
    Returns: None.
    Hints:
    - OpenAI stores linear weights as (in, out); nn.Linear wants (out, in): transpose them.
    - Split ``c_attn``'s "w" and "b" into three equal parts along the last dimension.
    """
    raise NotImplementedError("Exercise ch05.load_weights_into_gpt: Copy OpenAI's GPT-2 weights from the params dict into gpt (in place).")


# ---- Exercises ---------------------------------------------------------------------------------


def exercise_5_1_sample_counts(logits, temperature, num_samples=1000, seed=123):
    """Return how often each index is drawn from softmax(logits / temperature) in num_samples draws.

    Book section: 5.3.1 (exercise 5.1).
    Task: compute the probabilities with softmax_with_temperature, call
    ``torch.manual_seed(seed)``, then draw ``num_samples`` times, each draw one
    ``torch.multinomial(probas, num_samples=1)`` call, as the book's print_sampled_tokens does.
    Returns: a list of ints, one count per index of ``logits`` (zeros included).
    Hint: ``torch.bincount(..., minlength=len(logits))`` counts every index.
    """
    raise NotImplementedError("Exercise 5.1: Return how often each index is drawn from softmax(logits / temperature) in num_samples draws.")


def exercise_5_2_settings():
    """Return generate settings for diverse text and for conservative text.

    Book section: 5.3.3 (exercise 5.2).
    Task: choose a temperature and a top_k for each style: "diverse" needs a temperature above 1
    and a large top_k (or None); "conservative" a temperature below 1 and a small top_k.
    Returns: ``{"diverse": {"temperature": float, "top_k": int | None},
    "conservative": {"temperature": float, "top_k": int | None}}``.
    """
    raise NotImplementedError("Exercise 5.2: Return generate settings for diverse text and for conservative text.")


def exercise_5_3_deterministic_settings():
    """Return a list of generate keyword-argument dicts that each make decoding deterministic.

    Book section: 5.3.3 (exercise 5.3).
    Task: give at least two different settings of ``temperature`` and ``top_k`` under which
    ``generate`` always returns the same tokens, equal to greedy decoding.
    Returns: a list of dicts such as ``{"temperature": ..., "top_k": ...}``.
    """
    raise NotImplementedError("Exercise 5.3: Return a list of generate keyword-argument dicts that each make decoding deterministic.")


def exercise_5_4_resume_training(cfg, init_state_dict, batches, checkpoint_path, split,
                                 lr=0.0004, weight_decay=0.1, device="cpu"):
    """Train, save a checkpoint, restore it into a new model and optimizer, train on; return the state_dict.

    Book section: 5.4 (exercise 5.4).
    Task: build ``GPTModel(cfg)``, load ``init_state_dict``, move it to ``device`` and create
    ``torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)``. In train mode,
    take one optimizer step per (input, target) pair of ``batches[:split]`` using calc_loss_batch.
    Save a checkpoint to ``checkpoint_path``. Then build a NEW model and a NEW optimizer,
    restore both with load_checkpoint, and train on ``batches[split:]`` the same way.
    Returns: the final model's state_dict, equal to training on all batches without a break.
    Hints:
    - Without the optimizer state, AdamW restarts its moment estimates and the results differ.
    - Building a model draws random numbers: do it inside ``torch.random.fork_rng(devices=[])``
      so dropout during training sees the same random stream as uninterrupted training.
    """
    raise NotImplementedError("Exercise 5.4: Train, save a checkpoint, restore it into a new model and optimizer, train on; return the state_dict.")


def exercise_5_5_losses(model, text, context_length, device, train_ratio=0.90, batch_size=2):
    """Return the (train_loss, val_loss) of model on text, split and batched as in the book.

    Book section: 5.5 (exercise 5.5).
    Task: split ``text`` at character ``int(train_ratio * len(text))``; make a training loader
    (drop_last=True) and a validation loader (drop_last=False) with create_dataloader_v1,
    ``batch_size``, and ``max_length = stride = context_length``; compute the loss over all
    batches of each with calc_loss_loader, in eval mode and without gradients.
    Returns: a tuple of two floats (train loss, validation loss).
    Hint: ``shuffle=False`` keeps the result reproducible; the average does not depend on order.
    """
    raise NotImplementedError("Exercise 5.5: Return the (train_loss, val_loss) of model on text, split and batched as in the book.")


def exercise_5_6_build_and_load(model_name, params):
    """Build the GPT-2 model of size model_name and load OpenAI's params into it.

    Book section: 5.5 (exercise 5.6).
    Task: start from GPT_CONFIG_124M, update it with ``model_configs[model_name]`` and set
    context_length 1024, qkv_bias True and drop_rate 0.0 (the settings of OpenAI's models);
    build a GPTModel, load ``params`` with load_weights_into_gpt and put it in eval mode.
    Returns: the loaded GPTModel.
    Hint: the larger models differ only in emb_dim, n_layers and n_heads.
    """
    raise NotImplementedError("Exercise 5.6: Build the GPT-2 model of size model_name and load OpenAI's params into it.")
