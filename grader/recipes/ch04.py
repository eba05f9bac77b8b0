"""Chapter 4 recipes: the book-size model on the meta device, the shortcut demo's gradients, greedy
generation with a reference model, and exercise 4.2's parameter counting with an allocation probe."""

from __future__ import annotations

from typing import Any

import torch

from grader.recipes import Impl, recipe
from grader.recipes.generic import build
from grader.recipes.support import CropRecorder


@recipe("ch04.book_model_meta")
def book_model_meta(impl: Impl, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """``GPTModel(cfg)`` (default: the module's ``GPT_CONFIG_124M``) built on the meta device: counts, names."""
    config = cfg if cfg is not None else impl.attr("ch04", "GPT_CONFIG_124M")
    with torch.device("meta"):
        model = impl.attr("ch04", "GPTModel")(dict(config))
    total = sum(p.numel() for p in model.parameters())
    out_head = getattr(model, "out_head", None)
    head = getattr(out_head, "weight", None)
    return {"config": dict(config), "total_params": total, "state_entries": len(model.state_dict()),
            "out_head_params": head.numel() if isinstance(head, torch.Tensor) else None}


@recipe("ch04.shortcut_gradients")
def shortcut_gradients(impl: Impl, layer_sizes: list[int], use_shortcut: bool, inputs: list[list[float]],
                       seed: int = 123, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The book's section 4.4 experiment: seed, build, MSE to 0, backward, mean |grad| per weight."""
    model = build(impl, "ch04", "ExampleDeepNeuralNetwork", [layer_sizes, use_shortcut], seed=seed)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    x = torch.tensor(inputs)
    output = model(x)
    loss = torch.nn.MSELoss()(output, torch.zeros_like(output))
    loss.backward()
    grads = {name: float(p.grad.abs().mean()) for name, p in model.named_parameters()
             if name.endswith("weight") and p.grad is not None}
    return {"names": list(grads), "mean_abs_grads": list(grads.values()), "loss": float(loss.detach())}


@recipe("ch04.generate")
def generate(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], idx: torch.Tensor,
             max_new_tokens: int, context_size: int) -> dict[str, Any]:
    """The impl's ``generate_text_simple`` driving a (float64, eval) reference GPTModel."""
    import reference.ch04 as ref_ch04

    torch.manual_seed(0)
    model = ref_ch04.GPTModel(cfg)
    model.load_state_dict(state_dict)
    model.to(torch.float64).eval()
    recorder = CropRecorder(model, cfg["context_length"]).eval()
    out = impl.attr("ch04", "generate_text_simple")(recorder, idx.clone(), max_new_tokens, context_size)
    return {"ids": out, "calls": recorder.calls}


@recipe("ch04.model_size")
def model_size(impl: Impl, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``exercise_4_2_model_size(cfg)`` for each config, and where the parameters it created lived.

    A global parameter-registration hook sees every parameter any module registers during the
    calls; on the meta device they cost no memory.
    """
    devices: set[str] = set()
    largest = 0

    def hook(module: torch.nn.Module, name: str, param: Any) -> None:
        nonlocal largest
        if isinstance(param, torch.Tensor):
            devices.add(param.device.type)
            if param.device.type != "meta":
                largest = max(largest, param.numel())

    fn = impl.attr("ch04", "exercise_4_2_model_size")
    handle = torch.nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        results = {name: fn(dict(cfg)) for name, cfg in configs.items()}
    finally:
        handle.remove()
    return {"results": results, "devices": sorted(devices), "largest_real_param": largest}
