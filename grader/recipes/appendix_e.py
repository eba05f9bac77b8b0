"""Appendix E recipes: wrap an ``nn.Linear`` with the student's LinearWithLoRA, and run the
student's replace_linear_with_lora on a small model (:class:`TinyNet`).
LoRALayer itself is graded with the generic ``module.*`` recipes."""

from __future__ import annotations

from typing import Any

import torch

from grader.recipes import Impl, recipe


class Duck(torch.nn.Module):
    """A projection that is not an nn.Linear, though it has in_features/out_features and a weight."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / in_features ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.weight.T)


class Block(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.attn = torch.nn.Linear(d, d, bias=False)
        self.ff = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.GELU(), torch.nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x))
        return x + self.ff(x)  # type: ignore[no-any-return]


class TinyNet(torch.nn.Module):
    """Linear layers at the top level, inside blocks and inside Sequentials, next to modules that
    must stay as they are (LayerNorm, GELU, a Linear-like Duck, an Embedding)."""

    def __init__(self, d_in: int = 6, d: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(d_in, d)
        self.pos = torch.nn.Embedding(4, d)
        self.blocks = torch.nn.Sequential(Block(d), Block(d))
        self.duck = Duck(d, d)
        self.head = torch.nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + self.pos.weight[: x.shape[-2]]
        h = self.blocks(h)
        return self.head(self.duck(h))  # type: ignore[no-any-return]


LINEAR_PATHS = ["inp", "blocks.0.attn", "blocks.0.ff.0", "blocks.0.ff.2", "blocks.1.attn", "blocks.1.ff.0",
                "blocks.1.ff.2", "head"]
TOP_LEVEL_LINEARS = ["inp", "head"]


def _forward(m: torch.nn.Module, x: torch.Tensor, grad_output: torch.Tensor | None) -> dict[str, Any]:
    xx = x.detach().to(torch.float64).requires_grad_(grad_output is not None)
    out = m(xx)
    result: dict[str, Any] = {"output": out}
    if grad_output is not None and isinstance(out, torch.Tensor):
        (out * grad_output).sum().backward()  # type: ignore[no-untyped-call]
        result["param_grads"] = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
        result["input_grad"] = xx.grad
    return result


def _load(m: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> bool:
    own = m.state_dict()
    if set(own) != set(state_dict) or any(list(own[k].shape) != list(v.shape) for k, v in state_dict.items()):
        return False
    m.load_state_dict(state_dict)
    return True


@recipe("appendix_e.linear_with_lora")
def linear_with_lora(impl: Impl, in_features: int, out_features: int, rank: int, alpha: float,
                     x: torch.Tensor, bias: bool = True, dtype: str = "float32", seed: int = 0,
                     state_dict: dict[str, torch.Tensor] | None = None,
                     grad_output: torch.Tensor | None = None) -> dict[str, Any]:
    """Wrap a seeded ``nn.Linear`` (of ``dtype``) with ``LinearWithLoRA(linear, rank, alpha)``.

    Returns the state_dict shapes, whether ``.linear`` is the given layer, and the output of the
    fresh wrap next to the linear layer's own output on ``x`` (in ``dtype``, no ``.to()`` by us).
    With ``state_dict``: load it, convert to float64 and run forward and backward.
    """
    torch.manual_seed(seed)
    dt = getattr(torch, dtype)
    linear = torch.nn.Linear(in_features, out_features, bias=bias).to(dt)
    wrapped = impl.attr("appendix_e", "LinearWithLoRA")(linear, rank, alpha)
    info: dict[str, Any] = {"state": {k: list(v.shape) for k, v in wrapped.state_dict().items()},
                            "keeps_linear": getattr(wrapped, "linear", None) is linear}
    with torch.no_grad():
        info["linear_output"] = linear(x.to(dt))
        info["fresh_output"] = wrapped(x.to(dt))
    if state_dict is not None:
        if not _load(wrapped, state_dict):
            info["load_failed"] = True
            return info
        wrapped.double()
        info.update(_forward(wrapped, x, grad_output))
    return info


@recipe("appendix_e.replace")
def replace(impl: Impl, rank: int, alpha: float, x: torch.Tensor, seed: int = 0, calls: int = 1,
            state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """``replace_linear_with_lora(TinyNet(), rank, alpha)`` (``calls`` times) and what it became.

    Returns the type of every submodule by path, the state_dict shapes, the original weights'
    survival, outputs before and after (fresh), and with ``state_dict`` the output after loading it.
    """
    torch.manual_seed(seed)
    model = TinyNet().double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out_before = model(x)
    fn = impl.attr("appendix_e", "replace_linear_with_lora")
    returned = None
    for _ in range(calls):
        returned = fn(model, rank, alpha)
    lora_cls = impl.attr("appendix_e", "LinearWithLoRA")
    info: dict[str, Any] = {
        "types": {name: type(m).__name__ for name, m in model.named_modules() if name},
        "wrapped": [name for name, m in model.named_modules() if name and isinstance(m, lora_cls)],
        "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        "returned_model": returned is model, "returned_none": returned is None,
        "out_before": out_before,
    }
    info["after"] = {k: v.clone() for k, v in model.state_dict().items()}
    model.double()
    with torch.no_grad():
        info["out_after"] = model(x)
    if state_dict is not None:
        if not _load(model, state_dict):
            info["load_failed"] = True
            return info
        with torch.no_grad():
            info["out_loaded"] = model.double()(x)
    info["before"] = before
    return info
