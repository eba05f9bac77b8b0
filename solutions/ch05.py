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
    # BEGIN SOLUTION
    encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    encoded_tensor = torch.tensor(encoded).unsqueeze(0)
    return encoded_tensor
    # END SOLUTION


def token_ids_to_text(token_ids, tokenizer):
    """Decode a (1, num_tokens) tensor of token ids back into a string.

    Book section: 5.1.1.
    Task: remove the batch dimension and decode the ids with ``tokenizer``.
    Returns: the decoded text (str).
    Hint: ``squeeze(0)`` then ``.tolist()``.
    """
    # BEGIN SOLUTION
    flat = token_ids.squeeze(0)
    return tokenizer.decode(flat.tolist())
    # END SOLUTION


def calc_loss_batch(input_batch, target_batch, model, device):
    """Return the mean cross-entropy loss of the model's next-token predictions for one batch.

    Book section: 5.1.3.
    Task: move both batches (batch, num_tokens) to ``device``, compute the logits
    (batch, num_tokens, vocab_size) and the cross-entropy against the targets.
    Returns: a scalar tensor (so that ``loss.backward()`` works).
    Hint: ``torch.nn.functional.cross_entropy`` wants logits (N, vocab) and targets (N,):
    flatten the batch and token dimensions together.
    """
    # BEGIN SOLUTION
    input_batch = input_batch.to(device)
    target_batch = target_batch.to(device)
    logits = model(input_batch)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
    return loss
    # END SOLUTION


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Return the average calc_loss_batch loss over the first num_batches batches of a loader.

    Book section: 5.1.3.
    Task: average the loss over all batches, or over the first ``num_batches`` if given (never
    more than the loader has).
    Returns: a Python float; ``float("nan")`` for an empty loader.
    Hint: accumulate ``loss.item()``, not the tensor, and stop early with ``break``.
    """
    # BEGIN SOLUTION
    total_loss = 0.0
    if len(data_loader) == 0:
        return float("nan")
    elif num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            total_loss += loss.item()
        else:
            break
    return total_loss / num_batches
    # END SOLUTION


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Return (train_loss, val_loss) over eval_iter batches each, computed in eval mode.

    Book section: 5.2.
    Task: switch the model to eval mode, compute both losses with calc_loss_loader
    (``num_batches=eval_iter``) without gradients, then switch back to train mode.
    Returns: a tuple of two floats.
    Hint: ``model.eval()`` turns dropout off; ``torch.no_grad()`` saves memory.
    """
    # BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss
    # END SOLUTION


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
    # BEGIN SOLUTION
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, -1
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            global_step += 1
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
    return train_losses, val_losses, track_tokens_seen
    # END SOLUTION


def softmax_with_temperature(logits, temperature):
    """Return the softmax of logits divided by temperature.

    Book section: 5.3.1.
    Task: scale the logits by ``1 / temperature`` and apply softmax over the last dimension.
    Returns: probabilities with the shape of ``logits``.
    Hint: a temperature above 1 flattens the distribution, below 1 sharpens it.
    """
    # BEGIN SOLUTION
    scaled_logits = logits / temperature
    return torch.softmax(scaled_logits, dim=-1)
    # END SOLUTION


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
    # BEGIN SOLUTION
    finished = torch.zeros(idx.shape[0], 1, dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]

        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1:]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)

        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)

        if eos_id is not None:
            idx_next = torch.where(finished, torch.full_like(idx_next, eos_id), idx_next)
            finished = finished | (idx_next == eos_id)
            if finished.all():
                break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx
    # END SOLUTION


def save_checkpoint(model, optimizer, path):
    """Save the model's and the optimizer's state_dicts to path in one dict.

    Book section: 5.4.
    Task: ``torch.save`` a dict with the keys "model_state_dict" and "optimizer_state_dict".
    Returns: None.
    Hint: AdamW keeps running averages per parameter; without them, resumed training differs.
    """
    # BEGIN SOLUTION
    checkpoint = {"model_state_dict": model.state_dict()}
    if optimizer is not None:
        checkpoint["optimizer_state_dict"] = optimizer.state_dict()
    torch.save(checkpoint, path)
    # END SOLUTION


def load_checkpoint(model, optimizer, path, map_location=None):
    """Load a checkpoint written by save_checkpoint into model and optimizer (in place).

    Book section: 5.4.
    Task: ``torch.load`` the file (with ``map_location`` and ``weights_only=True``), then load
    the two state_dicts into ``model`` and ``optimizer``.
    Returns: None.
    Hint: ``weights_only=True`` refuses to unpickle arbitrary objects, which is safer.
    """
    # BEGIN SOLUTION
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    # END SOLUTION


def assign(left, right):
    """Return right as a trainable Parameter after checking that it has left's shape.

    Book section: 5.5.
    Task: raise ``ValueError`` (naming both shapes) if the shapes differ; otherwise return
    ``right`` (a numpy array or a tensor) as an ``nn.Parameter`` with ``left``'s dtype and device.
    Returns: an nn.Parameter.
    Hint: ``torch.as_tensor`` accepts numpy arrays and tensors alike.
    """
    # BEGIN SOLUTION
    right = torch.as_tensor(right)
    if tuple(left.shape) != tuple(right.shape):
        raise ValueError(f"Shape mismatch. Left: {tuple(left.shape)}, Right: {tuple(right.shape)}")
    right = right.detach().to(device=left.device, dtype=left.dtype)
    return nn.Parameter(right.clone(memory_format=torch.contiguous_format))
    # END SOLUTION


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
    # BEGIN SOLUTION
    gpt.pos_emb.weight = assign(gpt.pos_emb.weight, params["wpe"])
    gpt.tok_emb.weight = assign(gpt.tok_emb.weight, params["wte"])

    for b in range(len(params["blocks"])):
        block = params["blocks"][b]
        att = gpt.trf_blocks[b].att
        q_w, k_w, v_w = torch.chunk(torch.as_tensor(block["attn"]["c_attn"]["w"]), 3, dim=-1)
        att.W_query.weight = assign(att.W_query.weight, q_w.T)
        att.W_key.weight = assign(att.W_key.weight, k_w.T)
        att.W_value.weight = assign(att.W_value.weight, v_w.T)

        q_b, k_b, v_b = torch.chunk(torch.as_tensor(block["attn"]["c_attn"]["b"]), 3, dim=-1)
        att.W_query.bias = assign(att.W_query.bias, q_b)
        att.W_key.bias = assign(att.W_key.bias, k_b)
        att.W_value.bias = assign(att.W_value.bias, v_b)

        att.out_proj.weight = assign(att.out_proj.weight, torch.as_tensor(block["attn"]["c_proj"]["w"]).T)
        att.out_proj.bias = assign(att.out_proj.bias, block["attn"]["c_proj"]["b"])

        ff = gpt.trf_blocks[b].ff
        ff.layers[0].weight = assign(ff.layers[0].weight, torch.as_tensor(block["mlp"]["c_fc"]["w"]).T)
        ff.layers[0].bias = assign(ff.layers[0].bias, block["mlp"]["c_fc"]["b"])
        ff.layers[2].weight = assign(ff.layers[2].weight, torch.as_tensor(block["mlp"]["c_proj"]["w"]).T)
        ff.layers[2].bias = assign(ff.layers[2].bias, block["mlp"]["c_proj"]["b"])

        gpt.trf_blocks[b].norm1.scale = assign(gpt.trf_blocks[b].norm1.scale, block["ln_1"]["g"])
        gpt.trf_blocks[b].norm1.shift = assign(gpt.trf_blocks[b].norm1.shift, block["ln_1"]["b"])
        gpt.trf_blocks[b].norm2.scale = assign(gpt.trf_blocks[b].norm2.scale, block["ln_2"]["g"])
        gpt.trf_blocks[b].norm2.shift = assign(gpt.trf_blocks[b].norm2.shift, block["ln_2"]["b"])

    gpt.final_norm.scale = assign(gpt.final_norm.scale, params["g"])
    gpt.final_norm.shift = assign(gpt.final_norm.shift, params["b"])
    gpt.out_head.weight = assign(gpt.out_head.weight, params["wte"])
    # END SOLUTION


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
    # BEGIN SOLUTION
    probas = softmax_with_temperature(logits, temperature)
    torch.manual_seed(seed)
    sample = [torch.multinomial(probas, num_samples=1).item() for _ in range(num_samples)]
    counts = torch.bincount(torch.tensor(sample), minlength=len(logits))
    return counts.tolist()
    # END SOLUTION


def exercise_5_2_settings():
    """Return generate settings for diverse text and for conservative text.

    Book section: 5.3.3 (exercise 5.2).
    Task: choose a temperature and a top_k for each style: "diverse" needs a temperature above 1
    and a large top_k (or None); "conservative" a temperature below 1 and a small top_k.
    Returns: ``{"diverse": {"temperature": float, "top_k": int | None},
    "conservative": {"temperature": float, "top_k": int | None}}``.
    """
    # BEGIN SOLUTION
    return {
        "diverse": {"temperature": 1.5, "top_k": None},
        "conservative": {"temperature": 0.5, "top_k": 3},
    }
    # END SOLUTION


def exercise_5_3_deterministic_settings():
    """Return a list of generate keyword-argument dicts that each make decoding deterministic.

    Book section: 5.3.3 (exercise 5.3).
    Task: give at least two different settings of ``temperature`` and ``top_k`` under which
    ``generate`` always returns the same tokens, equal to greedy decoding.
    Returns: a list of dicts such as ``{"temperature": ..., "top_k": ...}``.
    """
    # BEGIN SOLUTION
    return [
        {"temperature": 0.0, "top_k": None},
        {"temperature": 1.0, "top_k": 1},
    ]
    # END SOLUTION


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
    # BEGIN SOLUTION
    def new_model_and_optimizer():
        with torch.random.fork_rng(devices=[]):
            model = GPTModel(cfg)
        model.load_state_dict(init_state_dict)
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        return model, optimizer

    def train(model, optimizer, part):
        model.train()
        for input_batch, target_batch in part:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()

    model, optimizer = new_model_and_optimizer()
    train(model, optimizer, batches[:split])
    save_checkpoint(model, optimizer, checkpoint_path)

    model, optimizer = new_model_and_optimizer()
    load_checkpoint(model, optimizer, checkpoint_path, map_location=device)
    train(model, optimizer, batches[split:])
    return model.state_dict()
    # END SOLUTION


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
    # BEGIN SOLUTION
    split_idx = int(train_ratio * len(text))
    train_data = text[:split_idx]
    val_data = text[split_idx:]
    train_loader = create_dataloader_v1(train_data, batch_size=batch_size, max_length=context_length,
                                        stride=context_length, drop_last=True, shuffle=False, num_workers=0)
    val_loader = create_dataloader_v1(val_data, batch_size=batch_size, max_length=context_length,
                                      stride=context_length, drop_last=False, shuffle=False, num_workers=0)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device)
        val_loss = calc_loss_loader(val_loader, model, device)
    model.train(was_training)
    return train_loss, val_loss
    # END SOLUTION


def exercise_5_6_build_and_load(model_name, params):
    """Build the GPT-2 model of size model_name and load OpenAI's params into it.

    Book section: 5.5 (exercise 5.6).
    Task: start from GPT_CONFIG_124M, update it with ``model_configs[model_name]`` and set
    context_length 1024, qkv_bias True and drop_rate 0.0 (the settings of OpenAI's models);
    build a GPTModel, load ``params`` with load_weights_into_gpt and put it in eval mode.
    Returns: the loaded GPTModel.
    Hint: the larger models differ only in emb_dim, n_layers and n_heads.
    """
    # BEGIN SOLUTION
    cfg = GPT_CONFIG_124M.copy()
    cfg.update(model_configs[model_name])
    cfg.update({"context_length": 1024, "qkv_bias": True, "drop_rate": 0.0})
    gpt = GPTModel(cfg)
    load_weights_into_gpt(gpt, params)
    gpt.eval()
    return gpt
    # END SOLUTION
