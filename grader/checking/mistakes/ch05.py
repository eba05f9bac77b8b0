"""Chapter 5: what a student's function returns when it makes one recognisable slip.

Each function recomputes, on the trusted side and with the reference model and helpers, the
result of a deliberately wrong version (temperature multiplied, targets flattened in the wrong
order, num_batches ignored, gradients never zeroed, top-k keeping k + 1 tokens, ...). The suites
compute them only after a comparison failed, and name the slip whose result equals the student's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from grader.checking.compare import values_close
from grader.recipes.support import CropRecorder, gpt, loader

State = dict[str, torch.Tensor]


# ---- temperature -----------------------------------------------------------------------------


def softmax_mistakes(logits: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    x = logits.to(torch.float64)
    found = {
        "ch05_temperature_multiplied": torch.softmax(x * temperature, dim=-1),
        "ch05_temperature_ignored": torch.softmax(x, dim=-1),
    }
    if x.dim() > 1:
        found["ch05_softmax_wrong_dim"] = torch.softmax(x / temperature, dim=0)
    return {k: v.to(logits.dtype) for k, v in found.items()}


# ---- losses ----------------------------------------------------------------------------------


def loss_mistakes(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    flat = logits.flatten(0, 1)
    return {
        "ch05_loss_summed": F.cross_entropy(flat, targets.flatten(), reduction="sum"),
        "ch05_loss_targets_wrong_order": F.cross_entropy(flat, targets.T.flatten()),
        "ch05_loss_against_inputs": F.cross_entropy(flat, inputs.flatten()),
    }


def loss_error_diagnosis(message: str) -> str | None:
    """A shape error from cross_entropy: the logits or the targets were not flattened."""
    if "Expected target size" in message or "to match target batch_size" in message:
        return "ch05_loss_not_flattened"
    return None


def loader_mistakes(batch_losses: Sequence[float], num_batches: int | None) -> dict[str, float]:
    n = len(batch_losses)
    k = n if num_batches is None else min(num_batches, n)
    first = sum(batch_losses[:k])
    found: dict[str, float] = {"ch05_loader_num_batches_ignored": sum(batch_losses) / n}
    wrong_counts = {float(n), float(num_batches) if num_batches is not None else float(n)}
    for count in sorted(wrong_counts - {float(k)}):
        found.setdefault("ch05_loader_wrong_count", first / count)
    found["ch05_loader_sum_not_mean"] = first
    if found["ch05_loader_num_batches_ignored"] == first / k:
        del found["ch05_loader_num_batches_ignored"]
    return found


# ---- decoding --------------------------------------------------------------------------------


def generate_variant(cfg: dict[str, Any], state: State, idx: torch.Tensor, max_new_tokens: int,
                     context_size: int, temperature: float = 0.0, top_k: int | None = None,
                     eos_id: int | None = None, seed: int = 0, *, temp: str = "divide", topk: str = "right",
                     eos: str = "right", crop: bool = True) -> torch.Tensor:
    """The book's ``generate`` (batch size 1) with one slip selected by the switches."""
    model = gpt(cfg, state)
    wrapped = CropRecorder(model, cfg["context_length"]).eval()
    idx = idx.clone()
    torch.manual_seed(seed)
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:] if crop else idx
        with torch.no_grad():
            logits = wrapped(idx_cond)[:, -1, :]
        if top_k is not None and topk != "ignored":
            k = min(top_k + 1, logits.shape[-1]) if topk == "k_plus_one" else top_k
            top_logits, _ = torch.topk(logits, k)
            min_val = top_logits[:, -1:]
            fill = 0.0 if topk == "zero" else float("-inf")
            logits = torch.where(logits < min_val, torch.tensor(fill, dtype=logits.dtype), logits)
        if temperature > 0.0:
            scaled = {"divide": logits / temperature, "none": logits, "multiply": logits * temperature}[temp]
            idx_next = torch.multinomial(torch.softmax(scaled, dim=-1), num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if eos_id is not None and eos != "ignored" and bool((idx_next == eos_id).all()):
            if eos == "appended":
                idx = torch.cat((idx, idx_next), dim=1)
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


GENERATE_SLIPS: dict[str, dict[str, Any]] = {
    "ch05_generate_temperature_not_applied": {"temp": "none"},
    "ch05_generate_temperature_multiplied": {"temp": "multiply"},
    "ch05_generate_topk_keeps_k_plus_one": {"topk": "k_plus_one"},
    "ch05_generate_topk_masked_with_zero": {"topk": "zero"},
    "ch05_generate_topk_ignored": {"topk": "ignored"},
    "ch05_generate_eos_ignored": {"eos": "ignored"},
    "ch05_generate_eos_appended": {"eos": "appended"},
    "ch05_generate_no_crop": {"crop": False},
}


def generate_mistakes(request: dict[str, Any], expected: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the slips that change this request's result (batch size 1 only)."""
    if request["idx"].shape[0] != 1:
        return {}
    args = {k: request[k] for k in ("cfg", "state_dict", "idx", "max_new_tokens", "context_size",
                                    "temperature", "top_k", "eos_id", "seed")}
    args["state"] = args.pop("state_dict")
    found = {}
    for diagnosis, switches in GENERATE_SLIPS.items():
        out = generate_variant(**args, **switches)
        if not values_close(out, expected):
            found[diagnosis] = out
    return found


# ---- training --------------------------------------------------------------------------------


def train_variant(cfg: dict[str, Any], state_dict: State, train_x: torch.Tensor, train_y: torch.Tensor,
                  val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int, num_epochs: int, eval_freq: int,
                  eval_iter: int, lr: float = 1e-3, seed: int = 0, start_in_train_mode: bool = False, *,
                  zero_grad: bool = True, tokens: str = "numel", first_step: int = 0,
                  train_call: bool = True) -> dict[str, Any]:
    """The book's train_model_simple with one slip; same set-up as the ``ch05.train`` recipe."""
    import reference.ch05

    model = gpt(cfg, state_dict, train=start_in_train_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    torch.manual_seed(seed)
    train_losses: list[float] = []
    val_losses: list[float] = []
    seen: list[int] = []
    tokens_seen, global_step = 0, first_step - 1
    train_data = loader(train_x, train_y, batch_size)
    val_data = loader(val_x, val_y, batch_size)
    for _ in range(num_epochs):
        if train_call:
            model.train()
        for x, y in train_data:
            if zero_grad:
                optimizer.zero_grad()
            loss = reference.ch05.calc_loss_batch(x, y, model, "cpu")
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            tokens_seen += {"numel": x.numel(), "sequences": x.shape[0], "row": x.shape[-1]}[tokens]
            global_step += 1
            if global_step % eval_freq == 0:
                tl, vl = reference.ch05.evaluate_model(model, train_data, val_data, "cpu", eval_iter)
                train_losses.append(tl)
                val_losses.append(vl)
                seen.append(tokens_seen)
    return {"results": [train_losses, val_losses, seen], "final": dict(model.state_dict())}


TRAIN_SLIPS: dict[str, dict[str, Any]] = {
    "ch05_missing_zero_grad": {"zero_grad": False},
    "ch05_tokens_seen_wrong": {"tokens": "sequences"},
    "ch05_tokens_seen_wrong_row": {"tokens": "row"},
    "ch05_eval_schedule_off_by_one": {"first_step": 1},
    "ch05_train_mode_not_set": {"train_call": False},
}


def train_mistakes(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(diagnosis, result) of each training slip (two ways of miscounting tokens share an id)."""
    return [(k.removesuffix("_row"), train_variant(**request, **v)) for k, v in TRAIN_SLIPS.items()]


# ---- weight loading --------------------------------------------------------------------------

_QKV = ("W_query", "W_key", "W_value")


def weight_slip(name: str, got: Any, expected: Mapping[str, torch.Tensor]) -> str | None:
    """The slip that puts ``got`` into parameter ``name`` instead of ``expected[name]``."""
    if not isinstance(got, torch.Tensor):
        return None
    want = expected[name]
    if want.dim() == 2 and values_close(got, want.T, 1e-5, 1e-6):
        return "ch05_weights_not_transposed"
    if name == "out_head.weight":
        return "ch05_out_head_not_tied"
    for own in _QKV:
        if f".att.{own}." in name:
            for other in _QKV:
                twin = name.replace(own, other)
                if other != own and (values_close(got, expected[twin], 1e-5, 1e-6)
                                     or (expected[twin].dim() == 2 and values_close(got, expected[twin].T, 1e-5, 1e-6))):
                    return "ch05_qkv_split_wrong_order"
    for a, b in ((".scale", ".shift"), (".shift", ".scale")):
        if name.endswith(a) and values_close(got, expected[name[: -len(a)] + b], 1e-5, 1e-6):
            return "ch05_ln_gain_bias_swapped"
    return None
