"""Chapter 5 recipes: token ids, losses, the training loop, decoding, checkpoints, weight loading.

Models are tiny reference ``GPTModel`` objects (``reference.ch04``) built from a ``state_dict``
input or from a seed, so only the graded function comes from the student. OpenAI-layout weights
(the book's ``params`` dict, numpy float32 arrays) are made from a reference model inside the
recipe. Checkpoint files go into a fresh folder inside the worker's working folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from grader.recipes import Impl, recipe
from grader.recipes.support import CallRecorder, CharTokenizer, CropRecorder, get_tokenizer, gpt, loader, scratch_dir

START_CONTEXT = "Every effort"


def _raise_stub(exc: BaseException) -> None:
    if isinstance(exc, NotImplementedError):
        raise exc


def error_info(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc)[:500]}


# ---- models --------------------------------------------------------------------------------


def gpt_state(cfg: dict[str, Any], seed: int = 0, logit_scale: float | None = None,
              randomize_norms: bool = False) -> dict[str, torch.Tensor]:
    """Weights of a reference GPTModel; ``logit_scale`` sharpens its next-token distributions and
    ``randomize_norms`` gives LayerNorm scales and shifts random values (so slips there show)."""
    model = gpt(cfg, seed=seed, dtype="float32")
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        if logit_scale is not None:
            model.out_head.weight.mul_(logit_scale)  # type: ignore[union-attr, operator]
        if randomize_norms:
            for name, p in model.named_parameters():
                if name.endswith(".scale"):
                    p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
                elif name.endswith(".shift"):
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            bias_gen = torch.Generator().manual_seed(seed + 2000)
            for name, p in model.named_parameters():
                if name.endswith(".bias"):
                    p.copy_(0.2 * torch.randn(p.shape, generator=bias_gen))
    return dict(model.state_dict())


@recipe("ch05.gpt_state")
def gpt_state_recipe(impl: Impl, cfg: dict[str, Any], seed: int = 0, logit_scale: float | None = None,
                     randomize_norms: bool = False) -> dict[str, torch.Tensor]:
    return gpt_state(cfg, seed, logit_scale, randomize_norms)


@recipe("ch05.logits")
def logits(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
           inputs: torch.Tensor) -> torch.Tensor:
    """The reference model's float64 logits (eval mode) for building named mistakes."""
    model = gpt(cfg, state_dict)
    with torch.no_grad():
        out: torch.Tensor = model(inputs)
    return out


def as_float(value: Any) -> Any:
    """A 0-d tensor as a float (noting it was a tensor); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return float(value.detach())
    return value


# ---- 5.1 text and token ids --------------------------------------------------------------------


@recipe("ch05.text_to_ids")
def text_to_ids(impl: Impl, texts: list[str], tokenizer: str = "gpt2") -> list[Any]:
    """``text_to_token_ids`` on each text; an exception comes back by name."""
    fn = impl.attr("ch05", "text_to_token_ids")
    tok = get_tokenizer(tokenizer)
    out: list[Any] = []
    for text in texts:
        try:
            out.append({"value": fn(text, tok)})
        except Exception as exc:  # noqa: BLE001 - the exception is what is graded
            _raise_stub(exc)
            out.append(error_info(exc))
    return out


@recipe("ch05.ids_to_text")
def ids_to_text(impl: Impl, batches: list[torch.Tensor], tokenizer: str = "gpt2") -> list[Any]:
    fn = impl.attr("ch05", "token_ids_to_text")
    tok = get_tokenizer(tokenizer)
    return [fn(ids.clone(), tok) for ids in batches]


# ---- losses ----------------------------------------------------------------------------------


@recipe("ch05.loss_batch")
def loss_batch(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], inputs: torch.Tensor,
               targets: torch.Tensor, train: bool = False, seed: int = 0) -> dict[str, Any]:
    """``calc_loss_batch`` on a float64 model; the loss, every gradient and the mode afterwards."""
    model = gpt(cfg, state_dict, train=train)
    torch.manual_seed(seed)
    try:
        loss = impl.attr("ch05", "calc_loss_batch")(inputs.clone(), targets.clone(), model, "cpu")
    except Exception as exc:  # noqa: BLE001 - shape errors are diagnosed by the check
        _raise_stub(exc)
        return error_info(exc)
    result: dict[str, Any] = {"training_after": model.training, "type": type(loss).__name__}
    if not isinstance(loss, torch.Tensor):
        result["loss"] = loss
        return result
    result["loss"] = loss.detach()
    result["requires_grad"] = loss.requires_grad
    if loss.requires_grad and loss.dim() == 0:
        loss.backward()  # type: ignore[no-untyped-call]
        result["grads"] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return result


@recipe("ch05.loss_loader")
def loss_loader(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], inputs: torch.Tensor,
                targets: torch.Tensor, batch_size: int, num_batches: int | None = None,
                pass_num_batches: bool = True) -> dict[str, Any]:
    model = gpt(cfg, state_dict)
    rec = CallRecorder(model)
    fn = impl.attr("ch05", "calc_loss_loader")
    data = loader(inputs, targets, batch_size)
    value = fn(data, model, "cpu", num_batches=num_batches) if pass_num_batches else fn(data, model, "cpu")
    return {"type": type(value).__name__, "value": as_float(value), "calls": len(rec.calls)}


@recipe("ch05.batch_losses")
def batch_losses(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], inputs: torch.Tensor,
                 targets: torch.Tensor, batch_size: int) -> list[float]:
    """The reference loss of each batch of the loader (for named mistakes)."""
    import reference.ch05

    model = gpt(cfg, state_dict)
    with torch.no_grad():
        return [float(reference.ch05.calc_loss_batch(x, y, model, "cpu"))
                for x, y in loader(inputs, targets, batch_size)]


@recipe("ch05.evaluate")
def evaluate(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], train_x: torch.Tensor,
             train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int,
             eval_iter: int, seed: int = 0) -> dict[str, Any]:
    """``evaluate_model`` on a model in train mode with dropout; the calls it made and the mode after."""
    model = gpt(cfg, state_dict, train=True)
    rec = CallRecorder(model)
    torch.manual_seed(seed)
    out = impl.attr("ch05", "evaluate_model")(model, loader(train_x, train_y, batch_size),
                                             loader(val_x, val_y, batch_size), "cpu", eval_iter)
    losses = [as_float(v) for v in out] if isinstance(out, (tuple, list)) else out
    return {"losses": losses, "training_after": model.training, "calls": rec.calls}


# ---- training --------------------------------------------------------------------------------


@recipe("ch05.train")
def train(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], train_x: torch.Tensor,
          train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int, num_epochs: int,
          eval_freq: int, eval_iter: int, lr: float = 1e-3, seed: int = 0,
          start_in_train_mode: bool = False) -> dict[str, Any]:
    """The book's set-up (AdamW, weight decay 0.1) on a tiny float64 model, then the impl's loop.

    The model arrives in eval mode unless ``start_in_train_mode`` (as after the book's section 5.1).
    """
    model = gpt(cfg, state_dict, train=start_in_train_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    rec = CallRecorder(model)
    torch.manual_seed(seed)
    out = impl.attr("ch05", "train_model_simple")(
        model, loader(train_x, train_y, batch_size), loader(val_x, val_y, batch_size), optimizer, "cpu",
        num_epochs, eval_freq, eval_iter, START_CONTEXT, CharTokenizer())
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError("train_model_simple should return 3 values (train_losses, val_losses, "
                        "track_tokens_seen)")
    results = [[as_float(v) for v in part] for part in out]
    grad_calls = [c["training"] for c in rec.calls if c["grad_enabled"]]
    return {"results": results, "final": dict(model.state_dict()), "training_steps_mode": grad_calls}


# ---- decoding --------------------------------------------------------------------------------


@recipe("ch05.generate")
def generate(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], idx: torch.Tensor,
             max_new_tokens: int, context_size: int, temperature: float = 0.0, top_k: int | None = None,
             eos_id: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The impl's ``generate`` driving a float64, eval-mode reference model (seeded just before)."""
    model = gpt(cfg, state_dict)
    wrapped = CropRecorder(model, cfg["context_length"]).eval()
    torch.manual_seed(seed)
    out = impl.attr("ch05", "generate")(wrapped, idx.clone(), max_new_tokens, context_size,
                                        temperature=temperature, top_k=top_k, eos_id=eos_id)
    return {"ids": out, "calls": wrapped.lengths}


@recipe("ch05.generate_with_settings")
def generate_with_settings(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
                           idx: torch.Tensor, max_new_tokens: int, settings: list[dict[str, Any]],
                           seeds: list[int]) -> list[list[torch.Tensor]]:
    """``generate(..., **setting)`` for each setting and seed (exercises 5.2 and 5.3)."""
    model = gpt(cfg, state_dict)
    wrapped = CropRecorder(model, cfg["context_length"]).eval()
    fn = impl.attr("ch05", "generate")
    out: list[list[torch.Tensor]] = []
    for setting in settings:
        row = []
        for seed in seeds:
            torch.manual_seed(seed)
            row.append(fn(wrapped, idx.clone(), max_new_tokens, cfg["context_length"], **setting))
        out.append(row)
    return out


@recipe("ch05.exercise_settings")
def exercise_settings(impl: Impl, name: str) -> Any:
    """``exercise_5_2_settings()`` or ``exercise_5_3_deterministic_settings()`` as plain data."""
    return impl.attr("ch05", name)()


# ---- checkpoints -----------------------------------------------------------------------------


def _train_steps(model: nn.Module, optimizer: torch.optim.Optimizer,
                 batches: Sequence[Sequence[torch.Tensor]]) -> None:
    import reference.ch05

    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        reference.ch05.calc_loss_batch(x, y, model, "cpu").backward()  # type: ignore[no-untyped-call]
        optimizer.step()


def _model_and_optimizer(cfg: dict[str, Any], state_dict: dict[str, torch.Tensor] | None,
                         seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = gpt(cfg, state_dict, dtype="float32", seed=seed)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)


def _read_file(path: str) -> dict[str, Any]:
    try:
        raw = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - what the file holds is graded
        return {"load_error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if not isinstance(raw, dict):
        return {"load_error": f"the file holds a {type(raw).__name__}, not a dict"}
    return {"keys": sorted(str(k) for k in raw), "model": raw.get("model_state_dict"),
            "optimizer": raw.get("optimizer_state_dict")}


@recipe("ch05.checkpoint")
def checkpoint(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
               batches: list[list[torch.Tensor]], saver: str = "impl", loader_side: str = "impl",
               saved_file: torch.Tensor | None = None, return_file: bool = False) -> dict[str, Any]:
    """Train one step, save (``saver``: the impl's save_checkpoint, the reference's, or ``"given"``:
    write ``saved_file``, the bytes of a file the reference saved on the trusted side, as a uint8
    tensor), read the file, restore into a fresh model and optimizer (``loader_side``: the impl's,
    the reference's or ``"none"``), take one more step on both. ``return_file``: the file's bytes
    come back too. The worker grading save_checkpoint never holds the reference's save or load."""
    torch.manual_seed(0)
    model, optimizer = _model_and_optimizer(cfg, state_dict)
    _train_steps(model, optimizer, batches[:1])
    with scratch_dir(impl) as folder:
        path = os.path.join(folder, "model_and_optimizer.pth")
        if saver == "given":
            assert saved_file is not None, "saver='given' needs saved_file"
            with open(path, "wb") as fh:
                fh.write(saved_file.numpy().tobytes())
        else:
            _checkpoint_function(impl, "save_checkpoint", saver)(model, optimizer, path)
        result: dict[str, Any] = {"file": _read_file(path) if os.path.exists(path) else {"missing": True},
                                  "saved_model": dict(model.state_dict()),
                                  "saved_optimizer": optimizer.state_dict()}
        if return_file and os.path.exists(path):
            with open(path, "rb") as fh:
                result["file_bytes"] = torch.frombuffer(bytearray(fh.read()), dtype=torch.uint8)
        if loader_side == "none":
            return result
        fresh, fresh_opt = _model_and_optimizer(cfg, None, seed=7)
        _checkpoint_function(impl, "load_checkpoint", loader_side)(fresh, fresh_opt, path)
    result["restored_model"] = dict(fresh.state_dict())
    result["restored_optimizer"] = fresh_opt.state_dict()
    torch.manual_seed(1)
    _train_steps(model, optimizer, batches[1:])
    torch.manual_seed(1)
    _train_steps(fresh, fresh_opt, batches[1:])
    result["continued"] = dict(model.state_dict())
    result["resumed"] = dict(fresh.state_dict())
    return result


def _checkpoint_function(impl: Impl, name: str, side: str) -> Any:
    """The impl's ``save_checkpoint``/``load_checkpoint``, or (``side="reference"``) the reference's."""
    if side == "impl":
        return impl.attr("ch05", name)
    import reference.ch05

    return getattr(reference.ch05, name)


# ---- OpenAI GPT-2 weights --------------------------------------------------------------------


def openai_params(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, Any]:
    """The book's ``params`` layout (numpy float32, linear weights as (in, out)) of a GPTModel state."""
    def a(t: torch.Tensor) -> np.ndarray:
        out: np.ndarray = t.detach().to(torch.float32).numpy().copy()
        return out

    blocks = []
    for i in range(n_layers):
        p = f"trf_blocks.{i}."
        att = p + "att."
        blocks.append({
            "attn": {
                "c_attn": {"w": a(torch.cat([state[att + n + ".weight"].T for n in ("W_query", "W_key", "W_value")], 1)),
                           "b": a(torch.cat([state[att + n + ".bias"] for n in ("W_query", "W_key", "W_value")]))},
                "c_proj": {"w": a(state[att + "out_proj.weight"].T), "b": a(state[att + "out_proj.bias"])},
            },
            "mlp": {"c_fc": {"w": a(state[p + "ff.layers.0.weight"].T), "b": a(state[p + "ff.layers.0.bias"])},
                    "c_proj": {"w": a(state[p + "ff.layers.2.weight"].T), "b": a(state[p + "ff.layers.2.bias"])}},
            "ln_1": {"g": a(state[p + "norm1.scale"]), "b": a(state[p + "norm1.shift"])},
            "ln_2": {"g": a(state[p + "norm2.scale"]), "b": a(state[p + "norm2.shift"])},
        })
    return {"wte": a(state["tok_emb.weight"]), "wpe": a(state["pos_emb.weight"]),
            "g": a(state["final_norm.scale"]), "b": a(state["final_norm.shift"]), "blocks": blocks}


def source_weights(cfg: dict[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(params, the state_dict a correct load gives): GPT-2 ties out_head to wte."""
    state = gpt_state({**cfg, "qkv_bias": True}, seed=seed, randomize_norms=True)
    params = openai_params(state, cfg["n_layers"])
    expected = dict(state)
    expected["out_head.weight"] = state["tok_emb.weight"].clone()
    return params, expected


@recipe("ch05.expected_loaded_state")
def expected_loaded_state(impl: Impl, cfg: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    return source_weights(cfg, seed)[1]


@recipe("ch05.load_weights")
def load_weights(impl: Impl, cfg: dict[str, Any], seed: int, x: torch.Tensor) -> dict[str, Any]:
    """Build a (differently initialised) reference model, load OpenAI-layout weights with the impl's
    ``load_weights_into_gpt``; return the state afterwards, the logits and ``model_configs``."""
    params, _ = source_weights(cfg, seed)
    model = gpt({**cfg, "qkv_bias": True}, dtype="float32", seed=0)
    impl.attr("ch05", "load_weights_into_gpt")(model, params)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.to(torch.float64).eval()
    with torch.no_grad():
        out = model(x)
    configs = getattr(impl.module("ch05"), "model_configs", None)
    return {"state": state, "logits": out, "model_configs": configs if isinstance(configs, dict) else None}


@recipe("ch05.assign")
def assign(impl: Impl, left_shape: list[int], right: torch.Tensor) -> dict[str, Any]:
    """``assign(left, right)`` with a float32 tensor ``left`` and ``right`` as a numpy array."""
    fn = impl.attr("ch05", "assign")
    left = torch.nn.Parameter(torch.zeros(left_shape))
    try:
        out = fn(left, right.numpy().copy())
    except Exception as exc:  # noqa: BLE001 - raising for a shape mismatch is graded
        _raise_stub(exc)
        return error_info(exc)
    return {"is_parameter": isinstance(out, nn.Parameter), "type": type(out).__name__,
            "value": out.detach().clone() if isinstance(out, torch.Tensor) else None,
            "requires_grad": bool(getattr(out, "requires_grad", False))}


def _meta_params(vocab: int, context: int, emb: int, n_layers: int) -> dict[str, Any]:
    def e(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, device="meta")

    block = {"attn": {"c_attn": {"w": e(emb, 3 * emb), "b": e(3 * emb)}, "c_proj": {"w": e(emb, emb), "b": e(emb)}},
             "mlp": {"c_fc": {"w": e(emb, 4 * emb), "b": e(4 * emb)}, "c_proj": {"w": e(4 * emb, emb), "b": e(emb)}},
             "ln_1": {"g": e(emb), "b": e(emb)}, "ln_2": {"g": e(emb), "b": e(emb)}}
    return {"wte": e(vocab, emb), "wpe": e(context, emb), "g": e(emb), "b": e(emb),
            "blocks": [block for _ in range(n_layers)]}


@recipe("ch05.build_and_load_meta")
def build_and_load_meta(impl: Impl, names: list[str]) -> dict[str, Any]:
    """Exercise 5.6 for the real GPT-2 sizes on the meta device (shapes only, no memory):
    facts about each model it builds."""
    import reference.ch05

    fn = impl.attr("ch05", "exercise_5_6_build_and_load")
    facts: dict[str, Any] = {}
    for name in names:
        size = reference.ch05.model_configs[name]
        with torch.device("meta"):
            params = _meta_params(50257, 1024, size["emb_dim"], size["n_layers"])
            model = fn(name, params)
        sd = model.state_dict()
        att = model.trf_blocks[0].att
        facts[name] = {
            "vocab_size": int(sd["tok_emb.weight"].shape[0]),
            "context_length": int(sd["pos_emb.weight"].shape[0]),
            "emb_dim": int(sd["tok_emb.weight"].shape[1]),
            "n_layers": len(model.trf_blocks),
            "n_heads": int(getattr(att, "num_heads", -1)),
            "qkv_bias": att.W_query.bias is not None,
            "dropout": sorted({float(m.p) for m in model.modules() if isinstance(m, nn.Dropout)}),
            "training": bool(model.training),
            "num_params": sum(p.numel() for p in model.parameters()),
        }
    return facts


TINY_SIZE = "gpt2-tiny (grader)"


@recipe("ch05.build_and_load_tiny")
def build_and_load_tiny(impl: Impl, size: dict[str, int], seed: int, x: torch.Tensor) -> dict[str, Any]:
    """Exercise 5.6 with a tiny extra entry in the module's ``model_configs``: real values, so the
    loaded model's logits can be compared. The entry is removed afterwards."""
    import reference.ch04

    cfg = {**reference.ch04.GPT_CONFIG_124M, **size, "context_length": 1024, "qkv_bias": True,
           "drop_rate": 0.0}
    params, _ = source_weights(cfg, seed)
    module = impl.module("ch05")
    configs = module.model_configs
    configs[TINY_SIZE] = dict(size)
    try:
        model = impl.attr("ch05", "exercise_5_6_build_and_load")(TINY_SIZE, params)
    finally:
        configs.pop(TINY_SIZE, None)
    training = bool(model.training)
    model.to(torch.float64)
    with torch.no_grad():
        out = model(x)
    return {"logits": out, "training": training}


# ---- exercises 5.4 and 5.5 -------------------------------------------------------------------


@recipe("ch05.resume")
def resume(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
           batches: list[list[torch.Tensor]], split: int, lr: float = 4e-4, weight_decay: float = 0.1,
           seed: int = 0) -> dict[str, Any]:
    """Exercise 5.4 in a scratch folder; the final state and what the checkpoint file holds."""
    fn = impl.attr("ch05", "exercise_5_4_resume_training")
    pairs = [(x, y) for x, y in batches]
    with scratch_dir(impl) as folder:
        path = os.path.join(folder, "checkpoint.pth")
        torch.manual_seed(seed)
        final = fn(dict(cfg), state_dict, pairs, path, split, lr=lr, weight_decay=weight_decay, device="cpu")
        file = _read_file(path) if os.path.exists(path) else {"missing": True}
    keys = file.get("keys")
    return {"final": dict(final) if isinstance(final, dict) else final, "file_keys": keys,
            "file_error": file.get("load_error") or ("missing" if file.get("missing") else None)}


@recipe("ch05.train_uninterrupted")
def train_uninterrupted(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
                        batches: list[list[torch.Tensor]], lr: float = 4e-4, weight_decay: float = 0.1,
                        seed: int = 0, restart_optimizer_at: int | None = None) -> dict[str, torch.Tensor]:
    """Exercise 5.4's baseline: one model, one AdamW, every batch (the impl is not used).

    ``restart_optimizer_at``: a fresh AdamW from that batch on (the optimizer-state slip)."""
    import reference.ch05

    model = gpt(cfg, state_dict, dtype="float32")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    torch.manual_seed(seed)
    model.train()
    for i, (x, y) in enumerate(batches):
        if restart_optimizer_at is not None and i == restart_optimizer_at:
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        optimizer.zero_grad()
        reference.ch05.calc_loss_batch(x, y, model, "cpu").backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return dict(model.state_dict())


@recipe("ch05.losses_of_text")
def losses_of_text(impl: Impl, cfg: dict[str, Any], seed: int, text: str, context_length: int,
                   train_ratio: float | None = None, batch_size: int | None = None,
                   train: bool = False, val_drop_last: bool = False) -> dict[str, Any]:
    """Exercise 5.5 on a seeded GPT-2-vocabulary reference model; ``val_drop_last`` (reference
    side only) computes the validation loss with drop_last=True, for the named mistake."""
    model = gpt(cfg, seed=seed, train=train)
    rec = CallRecorder(model)
    kwargs: dict[str, Any] = {}
    if train_ratio is not None:
        kwargs["train_ratio"] = train_ratio
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if val_drop_last:
        return {"losses": _losses_val_drop_last(model, text, context_length, **kwargs), "calls": []}
    out = impl.attr("ch05", "exercise_5_5_losses")(model, text, context_length, "cpu", **kwargs)
    losses = [as_float(v) for v in out] if isinstance(out, (tuple, list)) else out
    return {"losses": losses, "calls": rec.calls}


def _losses_val_drop_last(model: nn.Module, text: str, context_length: int, train_ratio: float = 0.9,
                          batch_size: int = 2) -> list[float]:
    import reference.ch02
    import reference.ch05

    split = int(train_ratio * len(text))
    result = []
    for part in (text[:split], text[split:]):
        dl = reference.ch02.create_dataloader_v1(part, batch_size=batch_size, max_length=context_length,
                                                 stride=context_length, shuffle=False, drop_last=True)
        model.eval()
        with torch.no_grad():
            result.append(reference.ch05.calc_loss_loader(dl, model, "cpu"))
    return result

