"""Chapter 5: pretraining on unlabeled data.

Text <-> token ids, the loss of a batch and of a loader, the training loop, decoding with
temperature, top-k and an end token, checkpoints, and loading OpenAI's GPT-2 weights (the book's
``gpt_download`` layout, a Hugging Face state_dict, or a local ``.safetensors`` file).
Nothing here prints, reads the network or picks a device on its own: callers pass ``device``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn

from .ch02 import create_dataloader_v1
from .ch04 import GPT_CONFIG_124M, GPTModel

# ---- 5.1 Text <-> token ids, losses -------------------------------------------------------------


def text_to_token_ids(text: str, tokenizer: Any) -> torch.Tensor:
    """Encode ``text`` into a batch of one sequence, shape (1, num_tokens)."""
    encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    return torch.tensor(encoded).unsqueeze(0)  # (1, num_tokens): add the batch dimension


def token_ids_to_text(token_ids: torch.Tensor, tokenizer: Any) -> str:
    """Decode a (1, num_tokens) batch (or a flat sequence) of token ids back to text."""
    flat = token_ids.squeeze(0)  # (num_tokens,): drop the batch dimension
    return tokenizer.decode(flat.tolist())


def calc_loss_batch(input_batch: torch.Tensor, target_batch: torch.Tensor, model: nn.Module,
                    device: torch.device | str) -> torch.Tensor:
    """Mean next-token cross-entropy of one (batch, num_tokens) batch, as a scalar tensor."""
    input_batch = input_batch.to(device)
    target_batch = target_batch.to(device)
    logits = model(input_batch)  # (batch, num_tokens, vocab_size)
    # cross_entropy wants (N, classes) and (N,): merge batch and token dimensions.
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(data_loader: Any, model: nn.Module, device: torch.device | str,
                     num_batches: int | None = None) -> float:
    """Average ``calc_loss_batch`` over the first ``num_batches`` batches (all by default); nan if empty."""
    if len(data_loader) == 0:
        return float("nan")
    if num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))
    total_loss = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


# ---- 5.2 Training ------------------------------------------------------------------------------


def evaluate_model(model: nn.Module, train_loader: Any, val_loader: Any, device: torch.device | str,
                   eval_iter: int) -> tuple[float, float]:
    """Train and validation loss over ``eval_iter`` batches each, in eval mode; leaves train mode on."""
    model.eval()  # dropout off, for a stable estimate
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def train_model_simple(model: nn.Module, train_loader: Any, val_loader: Any,
                       optimizer: torch.optim.Optimizer, device: torch.device | str, num_epochs: int,
                       eval_freq: int, eval_iter: int, start_context: str,
                       tokenizer: Any) -> tuple[list[float], list[float], list[int]]:
    """The book's pretraining loop; returns (train_losses, val_losses, track_tokens_seen).

    Every ``eval_freq`` optimizer steps (starting with the first) it records both losses over
    ``eval_iter`` batches and the number of input tokens seen so far. ``start_context`` and
    ``tokenizer`` are accepted for the book's signature: the book prints a greedy sample after each
    epoch, which changes neither the model nor the random state, so the reference skips it.
    """
    train_losses: list[float] = []
    val_losses: list[float] = []
    track_tokens_seen: list[int] = []
    tokens_seen, global_step = 0, -1

    for _ in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()  # gradients accumulate otherwise
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


# ---- 5.3 Decoding strategies -------------------------------------------------------------------


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of ``logits / temperature`` over the last dimension."""
    scaled_logits = logits / temperature  # > 1 flattens the distribution, < 1 sharpens it
    return torch.softmax(scaled_logits, dim=-1)


def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, context_size: int,
             temperature: float = 0.0, top_k: int | None = None,
             eos_id: int | None = None) -> torch.Tensor:
    """Extend ``idx`` (batch, n) by up to ``max_new_tokens`` tokens with temperature and top-k sampling.

    ``temperature == 0`` means greedy decoding. With ``eos_id``, generation stops as soon as every
    row has produced it; the step that completes the last row is not appended (as in the book),
    and rows that finished earlier are padded with ``eos_id``. For batch size 1 this is exactly
    the book's function; unlike the book's, the top-k threshold and the eos check work per row.
    """
    finished = torch.zeros(idx.shape[0], 1, dtype=torch.bool, device=idx.device)  # (batch, 1)
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]  # (batch, vocab_size)

        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)  # (batch, top_k), sorted descending
            min_val = top_logits[:, -1:]  # (batch, 1): each row's own k-th largest logit
            logits = torch.where(logits < min_val, torch.tensor(float("-inf"), device=logits.device), logits)

        if temperature > 0.0:
            probs = torch.softmax(logits / temperature, dim=-1)  # (batch, vocab_size)
            idx_next = torch.multinomial(probs, num_samples=1)  # (batch, 1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)  # (batch, 1)

        if eos_id is not None:
            idx_next = torch.where(finished, torch.full_like(idx_next, eos_id), idx_next)
            finished = finished | (idx_next == eos_id)
            if bool(finished.all()):
                break
        idx = torch.cat((idx, idx_next), dim=1)  # (batch, n + 1)
    return idx


# ---- 5.4 Checkpoints ---------------------------------------------------------------------------


def save_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    path: str | os.PathLike[str]) -> None:
    """Save the model's and the optimizer's state_dicts to ``path`` (the book's checkpoint dict)."""
    checkpoint: dict[str, Any] = {"model_state_dict": model.state_dict()}
    if optimizer is not None:
        checkpoint["optimizer_state_dict"] = optimizer.state_dict()
    torch.save(checkpoint, path)


def load_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    path: str | os.PathLike[str],
                    map_location: torch.device | str | None = None) -> None:
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``)."""
    # weights_only=True: a checkpoint is data, never code to unpickle.
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])


# ---- 5.5 Loading OpenAI's GPT-2 weights -----------------------------------------------------------

model_configs: dict[str, dict[str, int]] = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}


def assign(left: torch.Tensor, right: Any) -> nn.Parameter:
    """Return ``right`` (numpy array or tensor) as a Parameter shaped, typed and placed like ``left``."""
    right = torch.as_tensor(right)
    if tuple(left.shape) != tuple(right.shape):
        raise ValueError(f"Shape mismatch. Left: {tuple(left.shape)}, Right: {tuple(right.shape)}")
    # A contiguous copy: a transposed view would make every later matmul take a slower, slightly
    # different path.
    return nn.Parameter(right.detach().to(device=left.device, dtype=left.dtype)
                        .clone(memory_format=torch.contiguous_format))


def load_weights_into_gpt(gpt: GPTModel, params: Mapping[str, Any]) -> None:
    """Copy OpenAI GPT-2 weights (the book's ``params`` dict) into ``gpt`` in place.

    OpenAI stores linear layers as (in, out) matrices (TensorFlow convention) and the query, key
    and value projections as one ``c_attn`` matrix; nn.Linear wants (out, in), so every weight is
    transposed and ``c_attn`` is split in three along its output dimension.
    """
    blocks = params["blocks"]
    if len(blocks) != len(gpt.trf_blocks):
        raise ValueError(f"params have {len(blocks)} blocks but the model has {len(gpt.trf_blocks)}")
    gpt.pos_emb.weight = assign(gpt.pos_emb.weight, params["wpe"])
    gpt.tok_emb.weight = assign(gpt.tok_emb.weight, params["wte"])

    for b, block_params in enumerate(blocks):
        block = gpt.trf_blocks[b]
        attn = block_params["attn"]
        q_w, k_w, v_w = torch.chunk(torch.as_tensor(attn["c_attn"]["w"]), 3, dim=-1)  # 3 x (emb, emb)
        block.att.W_query.weight = assign(block.att.W_query.weight, q_w.T)
        block.att.W_key.weight = assign(block.att.W_key.weight, k_w.T)
        block.att.W_value.weight = assign(block.att.W_value.weight, v_w.T)

        if block.att.W_query.bias is None:
            raise ValueError("GPT-2 weights include query/key/value biases: build the model with qkv_bias=True")
        q_b, k_b, v_b = torch.chunk(torch.as_tensor(attn["c_attn"]["b"]), 3, dim=-1)  # 3 x (emb,)
        block.att.W_query.bias = assign(block.att.W_query.bias, q_b)
        block.att.W_key.bias = assign(block.att.W_key.bias, k_b)
        block.att.W_value.bias = assign(block.att.W_value.bias, v_b)

        block.att.out_proj.weight = assign(block.att.out_proj.weight, torch.as_tensor(attn["c_proj"]["w"]).T)
        block.att.out_proj.bias = assign(block.att.out_proj.bias, attn["c_proj"]["b"])

        mlp = block_params["mlp"]
        block.ff.layers[0].weight = assign(block.ff.layers[0].weight, torch.as_tensor(mlp["c_fc"]["w"]).T)
        block.ff.layers[0].bias = assign(block.ff.layers[0].bias, mlp["c_fc"]["b"])
        block.ff.layers[2].weight = assign(block.ff.layers[2].weight, torch.as_tensor(mlp["c_proj"]["w"]).T)
        block.ff.layers[2].bias = assign(block.ff.layers[2].bias, mlp["c_proj"]["b"])

        block.norm1.scale = assign(block.norm1.scale, block_params["ln_1"]["g"])
        block.norm1.shift = assign(block.norm1.shift, block_params["ln_1"]["b"])
        block.norm2.scale = assign(block.norm2.scale, block_params["ln_2"]["g"])
        block.norm2.shift = assign(block.norm2.shift, block_params["ln_2"]["b"])

    gpt.final_norm.scale = assign(gpt.final_norm.scale, params["g"])
    gpt.final_norm.shift = assign(gpt.final_norm.shift, params["b"])
    # GPT-2 ties the output head to the token embedding.
    gpt.out_head.weight = assign(gpt.out_head.weight, params["wte"])


def load_hf_gpt2_state_dict(gpt: GPTModel, state_dict: Mapping[str, Any]) -> None:
    """Load a Hugging Face GPT-2 state_dict (``wte.weight``, ``h.0.attn.c_attn.weight``, ...) into ``gpt``.

    Accepts the bare ``GPT2Model`` keys or ``GPT2LMHeadModel``'s ``transformer.`` prefix. Hugging
    Face's Conv1D keeps OpenAI's (in, out) layout, so the dict is regrouped into the ``params``
    layout and handed to :func:`load_weights_into_gpt`.
    """
    prefix = "transformer."
    sd = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}

    def linear(name: str) -> dict[str, Any]:  # Conv1D: weight (in, out), bias (out,)
        return {"w": sd[f"{name}.weight"], "b": sd[f"{name}.bias"]}

    def norm(name: str) -> dict[str, Any]:  # LayerNorm: g(ain) and b(ias) in OpenAI's names
        return {"g": sd[f"{name}.weight"], "b": sd[f"{name}.bias"]}

    n_layers = len({k.split(".")[1] for k in sd if k.startswith("h.")})
    params: dict[str, Any] = {
        "wte": sd["wte.weight"],
        "wpe": sd["wpe.weight"],
        "g": sd["ln_f.weight"],
        "b": sd["ln_f.bias"],
        "blocks": [
            {
                "attn": {"c_attn": linear(f"h.{i}.attn.c_attn"), "c_proj": linear(f"h.{i}.attn.c_proj")},
                "mlp": {"c_fc": linear(f"h.{i}.mlp.c_fc"), "c_proj": linear(f"h.{i}.mlp.c_proj")},
                "ln_1": norm(f"h.{i}.ln_1"),
                "ln_2": norm(f"h.{i}.ln_2"),
            }
            for i in range(n_layers)
        ],
    }
    load_weights_into_gpt(gpt, params)
    if "lm_head.weight" in sd:  # normally identical to wte (tied), but trust the file if present
        gpt.out_head.weight = assign(gpt.out_head.weight, sd["lm_head.weight"])


def load_gpt2_safetensors(gpt: GPTModel, path: str | os.PathLike[str]) -> None:
    """Load a local Hugging Face GPT-2 ``model.safetensors`` file into ``gpt`` (needs ``safetensors``)."""
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # optional dependency
        raise ImportError(
            "load_gpt2_safetensors needs the optional 'safetensors' package: pip install safetensors"
        ) from exc
    load_hf_gpt2_state_dict(gpt, load_file(os.fspath(path)))


# ---- Exercises ---------------------------------------------------------------------------------


def exercise_5_1_sample_counts(logits: torch.Tensor, temperature: float, num_samples: int = 1000,
                               seed: int = 123) -> list[int]:
    """Exercise 5.1: how often each index is drawn in ``num_samples`` draws at ``temperature``."""
    probas = softmax_with_temperature(logits, temperature)
    torch.manual_seed(seed)
    # One multinomial call per draw, exactly as the book's print_sampled_tokens (same random stream).
    sample = [torch.multinomial(probas, num_samples=1).item() for _ in range(num_samples)]
    counts = torch.bincount(torch.tensor(sample, dtype=torch.long), minlength=logits.shape[-1])
    return [int(c) for c in counts]


def exercise_5_2_settings() -> dict[str, dict[str, Any]]:
    """Exercise 5.2: ``generate`` settings for diverse and for conservative text."""
    return {
        # A flatter distribution and no cut-off: unusual tokens get a real chance.
        "diverse": {"temperature": 1.5, "top_k": None},
        # A sharper distribution restricted to a few likely tokens: close to greedy.
        "conservative": {"temperature": 0.5, "top_k": 3},
    }


def exercise_5_3_deterministic_settings() -> list[dict[str, Any]]:
    """Exercise 5.3: ``generate`` keyword arguments that make decoding deterministic (greedy)."""
    return [
        {"temperature": 0.0, "top_k": None},  # argmax, no sampling at all
        {"temperature": 1.0, "top_k": 1},     # sampling from a single candidate is no choice
    ]


def _rng_neutral_model(cfg: dict[str, Any], state_dict: Mapping[str, Any], device: torch.device | str) -> GPTModel:
    # Building a model draws its random init from the global generator; fork it, so the
    # dropout masks drawn during training follow the caller's random state, split or not.
    with torch.random.fork_rng(devices=[]):
        model = GPTModel(cfg)
    model.load_state_dict(state_dict)
    return model.to(device)


def exercise_5_4_resume_training(cfg: dict[str, Any], init_state_dict: Mapping[str, Any],
                                 batches: list[tuple[torch.Tensor, torch.Tensor]],
                                 checkpoint_path: str | os.PathLike[str], split: int, lr: float = 0.0004,
                                 weight_decay: float = 0.1,
                                 device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Exercise 5.4: train, checkpoint, restore into a fresh model and optimizer, train on; final state_dict."""

    def train(model: nn.Module, optimizer: torch.optim.Optimizer,
              part: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        model.train()
        for input_batch, target_batch in part:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()

    model = _rng_neutral_model(cfg, init_state_dict, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    train(model, optimizer, batches[:split])
    save_checkpoint(model, optimizer, checkpoint_path)
    del model, optimizer  # what survives is only the file

    model = _rng_neutral_model(cfg, init_state_dict, device)  # the weights are overwritten next
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    load_checkpoint(model, optimizer, checkpoint_path, map_location=device)
    train(model, optimizer, batches[split:])
    return model.state_dict()


def exercise_5_5_losses(model: nn.Module, text: str, context_length: int, device: torch.device | str,
                        train_ratio: float = 0.90, batch_size: int = 2) -> tuple[float, float]:
    """Exercise 5.5: training and validation loss of ``model`` on ``text`` split as in the book."""
    split_idx = int(train_ratio * len(text))
    # shuffle=False: the average over all batches does not depend on their order, and the run is
    # reproducible without a seed.
    train_loader = create_dataloader_v1(text[:split_idx], batch_size=batch_size, max_length=context_length,
                                        stride=context_length, shuffle=False, drop_last=True)
    val_loader = create_dataloader_v1(text[split_idx:], batch_size=batch_size, max_length=context_length,
                                      stride=context_length, shuffle=False, drop_last=False)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device)
        val_loss = calc_loss_loader(val_loader, model, device)
    model.train(was_training)
    return train_loss, val_loss


def exercise_5_6_build_and_load(model_name: str, params: Mapping[str, Any]) -> GPTModel:
    """Exercise 5.6: build the GPT-2 size ``model_name`` (a key of model_configs) and load ``params``."""
    if model_name not in model_configs:
        raise ValueError(f"unknown model {model_name!r}; choose one of {sorted(model_configs)}")
    cfg = {**GPT_CONFIG_124M, **model_configs[model_name],
           "context_length": 1024, "qkv_bias": True, "drop_rate": 0.0}
    gpt = GPTModel(cfg)
    load_weights_into_gpt(gpt, params)
    gpt.eval()
    return gpt
