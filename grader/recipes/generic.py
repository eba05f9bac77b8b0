"""Recipes every chapter uses: build an nn.Module and run it forward and backward; call a function.

Inputs and outputs are plain data. Module recipes build the class of whichever side they run on
(``impl``), load the state_dict they are given (so both sides have identical weights), run in
float64 unless asked otherwise, and return outputs, gradients and facts about the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grader.recipes import Impl, recipe
from grader.recipes.support import DTYPES



def build(impl: Impl, module: str, name: str, args: Sequence[Any] = (),
          kwargs: dict[str, Any] | None = None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    built = impl.attr(module, name)(*args, **(kwargs or {}))
    if not isinstance(built, torch.nn.Module):
        raise TypeError(f"{name}(...) should create a torch.nn.Module, got {type(built).__name__}")
    return built


def state_shapes(m: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in m.state_dict().items()}


def load_observing(m: torch.nn.Module, state_dict: dict[str, torch.Tensor],
                   keep_buffers: bool = True) -> dict[str, torch.Tensor]:
    """Load ``state_dict`` into ``m`` but keep the buffers ``m`` built itself (a causal mask made in
    ``__init__``): the grader observes them, it never overwrites them. Returns copies of those
    buffers as built, for comparison with the reference's. ``keep_buffers=False`` loads everything
    (to tell whether a wrong output comes from the buffers alone)."""
    own = m.state_dict()
    names = {name for name, _ in m.named_buffers(remove_duplicate=False)} & set(state_dict)
    kept = {name: own[name].detach().clone() for name in sorted(names)}
    m.load_state_dict({**state_dict, **kept} if keep_buffers else state_dict)
    return kept


def plain_tensor_attributes(m: torch.nn.Module) -> list[str]:
    """Tensor attributes that are neither parameters nor buffers: they don't move with ``.to()``."""
    found = []
    for prefix, sub in m.named_modules():
        for key, value in vars(sub).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                found.append(f"{prefix}.{key}" if prefix else key)
    return found


@recipe("module.info")
def module_info(impl: Impl, module: str, name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                seed: int = 0) -> dict[str, Any]:
    """State_dict names and shapes, parameter count, and tensors not registered as buffers."""
    m = build(impl, module, name, args, kwargs, seed)
    return {"state": state_shapes(m),
            "num_params": sum(p.numel() for p in m.parameters()),
            "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad),
            "plain_tensors": plain_tensor_attributes(m),
            "buffers": [k for k, _ in m.named_buffers()]}


@recipe("module.state_dict")
def module_state_dict(impl: Impl, module: str, name: str, args: Sequence[Any] = (),
                      kwargs: dict[str, Any] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    return dict(build(impl, module, name, args, kwargs, seed).state_dict())


@recipe("module.forward")
def module_forward(impl: Impl, module: str, name: str, args: Sequence[Any] = (),
                   kwargs: dict[str, Any] | None = None, state_dict: dict[str, torch.Tensor] | None = None,
                   inputs: Sequence[Any] = (), train: bool = False, seed: int = 0, dtype: str = "float64",
                   grad_output: torch.Tensor | None = None, device: str | None = None,
                   repeat: int = 1, grad_seed: int | None = None, keep_buffers: bool = True,
                   trace: bool = False) -> dict[str, Any]:
    """Build, load ``state_dict`` (the module's own buffers kept, see :func:`load_observing`), run
    ``forward(*inputs)`` (``repeat`` times) and backward.

    ``trace``: also return ``trace``, ``[name, output]`` for each named submodule in the order the
    first forward pass ran them (a failed check asks for it, to say where the outputs part).

    Floating inputs are cast to ``dtype`` and require grad; with ``grad_output`` (or ``grad_seed``,
    which draws it from a seeded generator in the output's shape) the recipe backpropagates
    ``(output * grad_output).sum()`` and returns every gradient by name.
    """
    device = device or impl.device
    m = build(impl, module, name, args, kwargs, seed)
    result: dict[str, Any] = {"state": state_shapes(m)}
    if state_dict is not None:
        own = m.state_dict()
        if set(own) != set(state_dict) or any(list(own[k].shape) != list(v.shape) for k, v in state_dict.items()):
            result["load_failed"] = True
            return result
        result["buffers"] = load_observing(m, state_dict, keep_buffers)
    dt = DTYPES[dtype]
    m.to(device=device, dtype=dt)
    m.train(train)
    xs = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            x = x.detach().clone().to(device)  # never touch the caller's tensors
            if x.is_floating_point():
                x = x.to(dt).requires_grad_(grad_output is not None or grad_seed is not None)
        xs.append(x)
    attention = _capture_attention(m) if module == "ch03" else None
    traced = _trace_submodules(m) if trace else None
    torch.manual_seed(seed)
    outputs = [m(*xs) for _ in range(repeat)]
    out = outputs[0]
    result["output"] = out
    if traced is not None:
        result["trace"] = traced
    if attention:
        result["attention"] = attention[0]
    if repeat > 1:
        result["outputs"] = outputs
    if grad_seed is not None and isinstance(out, torch.Tensor) and out.is_floating_point():
        generator = torch.Generator().manual_seed(grad_seed)
        grad_output = torch.randn(out.shape, generator=generator, dtype=out.dtype)
        result["grad_output"] = grad_output
    if grad_output is not None and isinstance(out, torch.Tensor) and out.shape == grad_output.shape:
        loss = (out * grad_output.to(device=device, dtype=out.dtype)).sum()
        torch.autograd.backward(loss)
        result["param_grads"] = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
        result["input_grads"] = [x.grad if isinstance(x, torch.Tensor) else None for x in xs]
    return result


TRACE_MAX_ELEMENTS = 2_000_000  # all traced outputs together: a tiny model's, not a real one's


def _trace_submodules(m: torch.nn.Module) -> list[list[Any]]:
    """``[name, output]`` of each named submodule's first call, in call order (the first tensor of a
    tuple output); stops recording past :data:`TRACE_MAX_ELEMENTS`."""
    traced: list[list[Any]] = []
    seen: set[str] = set()
    budget = [TRACE_MAX_ELEMENTS]

    def hook_for(name: str) -> Any:
        def keep(_module: torch.nn.Module, _args: Any, output: Any) -> None:
            if name in seen:
                return
            seen.add(name)
            value = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(value, torch.Tensor) and value.numel() <= budget[0]:
                budget[0] -= value.numel()
                traced.append([name, value.detach().clone(memory_format=torch.contiguous_format).cpu()])
        return keep

    for name, sub in m.named_modules():
        if name:
            sub.register_forward_hook(hook_for(name))
    return traced


def _capture_attention(m: torch.nn.Module) -> list[torch.Tensor]:
    """The attention weights of the first forward pass, as they enter the book's ``self.dropout``
    (first sequence, first head), for the report's heatmaps; empty when the module has no dropout."""
    captured: list[torch.Tensor] = []
    dropout = getattr(m, "dropout", None)
    if not isinstance(dropout, torch.nn.Module):
        return captured

    def keep(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if not captured and args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
            weights = args[0].detach()
            while weights.dim() > 2:
                weights = weights[0]
            captured.append(weights.clone(memory_format=torch.contiguous_format).cpu())

    dropout.register_forward_pre_hook(keep)
    return captured


@recipe("call")
def call(impl: Impl, module: str, name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
         seed: int | None = None) -> Any:
    """Call a function with plain-data arguments and return its (plain) result."""
    if seed is not None:
        torch.manual_seed(seed)
    return impl.attr(module, name)(*args, **(kwargs or {}))


@recipe("module.constant")
def constant(impl: Impl, module: str, name: str) -> dict[str, Any]:
    """A module-level constant (plain data such as a config dict), or that the module lacks it."""
    if not hasattr(impl.module(module), name):
        return {"defined": False}
    return {"defined": True, "value": getattr(impl.module(module), name)}
