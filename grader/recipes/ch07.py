"""Chapter 7 recipes: instruction data sets and loaders, sampling answers, LoRA for exercise 7.4.

Tokenizers come from ``grader.recipes.ch06`` (GPT-2 BPE from ``reference.ch02`` or a character
tokenizer); models are tiny reference ``GPTModel`` objects built from a ``state_dict`` input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from grader.recipes import Impl, recipe
from grader.recipes.support import get_tokenizer, seeded_gpt


def _ids(value: Any) -> Any:
    """Token ids as a plain list of ints (a tensor or tuple is accepted too)."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return value


@recipe("ch07.instruction_dataset")
def instruction_dataset(impl: Impl, data: list[dict[str, str]], tokenizer: str = "gpt2",
                        masked: bool = False) -> dict[str, Any]:
    """Build ``InstructionDataset`` (or, ``masked``, ``InstructionDatasetMasked``); return its items."""
    cls = impl.attr("ch07", "InstructionDatasetMasked" if masked else "InstructionDataset")
    ds = cls(data, get_tokenizer(tokenizer))
    items: list[Any] = []
    for i in range(len(ds)):
        item = ds[i]
        if masked and isinstance(item, (tuple, list)) and len(item) == 2:
            items.append([int(item[0]), _ids(item[1])])
        else:
            items.append(_ids(item))
    return {"len": len(ds), "items": items}


@recipe("ch07.masked_pipeline")
def masked_pipeline(impl: Impl, data: list[dict[str, str]], allowed_max_length: int | None = None) -> Any:
    """``custom_collate_fn_masked`` over every item of ``InstructionDatasetMasked`` (both the student's)."""
    ds = impl.attr("ch07", "InstructionDatasetMasked")(data, get_tokenizer("gpt2"))
    batch = [ds[i] for i in range(len(ds))]
    return impl.attr("ch07", "custom_collate_fn_masked")(batch, allowed_max_length=allowed_max_length)


@recipe("ch07.prepare_loaders")
def prepare_loaders(impl: Impl, data: list[dict[str, str]], batch_size: int, allowed_max_length: int,
                    seed: int = 123) -> dict[str, Any]:
    """Call ``exercise_7_3_prepare_loaders`` and describe each loader and its batches (one pass)."""
    torch.manual_seed(0)
    loaders = impl.attr("ch07", "exercise_7_3_prepare_loaders")(
        data, get_tokenizer("gpt2"), batch_size=batch_size, allowed_max_length=allowed_max_length, seed=seed)
    if not isinstance(loaders, (tuple, list)) or len(loaders) != 3:
        raise TypeError("exercise_7_3_prepare_loaders should return (train_loader, val_loader, test_loader)")
    out = {}
    for name, dl in zip(("train", "val", "test"), loaders):
        torch.manual_seed(0)
        batches = [list(b) for b in dl]
        out[name] = {"batches": batches, "batch_size": dl.batch_size, "drop_last": dl.drop_last,
                     "dataset_len": len(dl.dataset), "sampler": type(dl.sampler).__name__,
                     "items": [_ids(dl.dataset[i]) for i in range(len(dl.dataset))]}
    return out


@recipe("ch07.sample_answers")
def sample_answers(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], idx: torch.Tensor,
                   num_samples: int, max_new_tokens: int, context_size: int, temperature: float = 1.0,
                   top_k: int | None = None, eos_id: int | None = None, seed: int = 0) -> Any:
    """Seed, then ``sample_answers`` with a tiny reference GPT; the new tokens of each sample."""
    model = seeded_gpt(cfg)
    model.load_state_dict(state_dict)
    model.eval()
    torch.manual_seed(seed)
    samples = impl.attr("ch07", "sample_answers")(model, idx, num_samples, max_new_tokens, context_size,
                                                  temperature=temperature, top_k=top_k, eos_id=eos_id)
    return [_ids(s) for s in samples] if isinstance(samples, (list, tuple)) else samples


def _trainable(model: nn.Module) -> list[str]:
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


@recipe("ch07.add_lora")
def add_lora(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None,
             rank: int = 4, alpha: float = 8, x: torch.Tensor | None = None, meta: bool = False,
             seed: int = 0) -> dict[str, Any]:
    """``exercise_7_4_add_lora`` on a reference GPT; counts, trainable names, outputs before/after."""
    fn = impl.attr("ch07", "exercise_7_4_add_lora")
    if meta:
        with torch.device("meta"):
            model = seeded_gpt(cfg)
            counts = fn(model, rank=rank, alpha=alpha)
        return {"counts": list(counts) if isinstance(counts, (tuple, list)) else counts}
    model = seeded_gpt(cfg)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model.eval()
    result: dict[str, Any] = {}
    if x is not None:
        with torch.no_grad():
            result["before"] = model(x)
    torch.manual_seed(seed)
    counts = fn(model, rank=rank, alpha=alpha)
    result["counts"] = list(counts) if isinstance(counts, (tuple, list)) else counts
    result["trainable"] = _trainable(model)
    result["state"] = {k: list(v.shape) for k, v in model.state_dict().items()}
    if x is not None:
        with torch.no_grad():
            result["after"] = model(x)
    return result


@recipe("ch07.lora_steps")
def lora_steps(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], inputs: torch.Tensor,
               targets: torch.Tensor, steps: int = 2, lr: float = 1e-2, rank: int = 4, alpha: float = 8,
               own_lora: bool = False, trainable: list[str] | None = None) -> dict[str, Any]:
    """A LoRA model, AdamW, ``steps`` calls of the student's ``exercise_7_4_training_step``; the
    losses and the final trainable weights. The model is set up by the impl's
    ``exercise_7_4_add_lora`` with ``own_lora``; else by the reference's ``replace_linear_with_lora``
    with exactly the parameters ``trainable`` left trainable (the names the reference's set-up
    leaves trainable, computed on the trusted side: the worker grading 7.4 holds no 7.4 code)."""
    model = seeded_gpt(cfg)
    model.load_state_dict(state_dict)
    torch.manual_seed(1)
    if own_lora:
        impl.attr("ch07", "exercise_7_4_add_lora")(model, rank=rank, alpha=alpha)
    else:
        import reference.appendix_e

        reference.appendix_e.replace_linear_with_lora(model, rank=rank, alpha=alpha)
        keep = set(trainable or ())
        for name, param in model.named_parameters():
            param.requires_grad_(name in keep)
    model.to(torch.float64)
    model.eval()  # the step must switch to training mode itself
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.1)
    step = impl.attr("ch07", "exercise_7_4_training_step")
    torch.manual_seed(2)
    losses = [step(model, inputs, targets, optimizer, "cpu") for _ in range(steps)]
    return {"losses": [float(v) if isinstance(v, torch.Tensor) else v for v in losses],
            "final": {n: p.detach() for n, p in model.named_parameters() if p.requires_grad},
            "training": model.training}
