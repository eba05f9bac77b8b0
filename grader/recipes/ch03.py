"""Chapter 3 recipes for the exercises: copying weights (3.1) and modules that a function returns
(3.2, 3.3). Modules that the graded function only receives are built from ``reference.ch03``."""

from __future__ import annotations

from typing import Any

import torch

from grader.recipes import Impl, recipe
from grader.recipes.generic import load_observing


def _classes(impl: Impl, own: bool) -> Any:
    if own:
        return impl.module("ch03")
    import reference.ch03

    return reference.ch03


@recipe("ch03.copy_weights")
def copy_weights(impl: Impl, d_in: int, d_out: int, x: torch.Tensor, seed: int = 123,
                 own_classes: bool = False) -> dict[str, Any]:
    """Build SelfAttention_v1 and _v2 (seeded), call the student's ``exercise_3_1_copy_weights``.

    Returns both modules' weights before and after, their outputs on ``x`` (float64) and v1's
    trainable parameters. A ``RuntimeError`` from the copy (shapes) comes back as ``error``.
    """
    ch03 = _classes(impl, own_classes)
    torch.manual_seed(seed)
    v1 = ch03.SelfAttention_v1(d_in, d_out)
    torch.manual_seed(seed + 1)
    v2 = ch03.SelfAttention_v2(d_in, d_out)
    v1_before = {k: v.clone() for k, v in v1.state_dict().items()}
    v2_before = {k: v.clone() for k, v in v2.state_dict().items()}
    try:
        impl.attr("ch03", "exercise_3_1_copy_weights")(v1, v2)
    except NotImplementedError:
        raise
    except RuntimeError as exc:
        return {"error": str(exc)}
    result: dict[str, Any] = {
        "v1_before": v1_before, "v2_before": v2_before,
        "v1_after": dict(v1.state_dict()), "v2_after": dict(v2.state_dict()),
        "v1_trainable": sorted(n for n, p in v1.named_parameters() if p.requires_grad),
    }
    with torch.no_grad():
        result["v1_out"] = v1.double()(x.double())
        result["v2_out"] = v2.double()(x.double())
    return result


@recipe("ch03.returned_module")
def returned_module(impl: Impl, function: str, args: list[Any], x: torch.Tensor,
                    weights: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call ``function(*args)`` (it returns a module); describe it and run it on ``x``.

    ``weights`` = ``{"class": name, "args": [...], "seed": n}``: build that reference module and
    load its state_dict into the returned one first, so outputs do not depend on how it was seeded.
    Forward runs in float64, twice in training mode and once in eval mode.
    """
    torch.manual_seed(0)
    m = impl.attr("ch03", function)(*args)
    if not isinstance(m, torch.nn.Module):
        raise TypeError(f"{function} should return a torch.nn.Module, got {type(m).__name__}")
    info: dict[str, Any] = {
        "type": type(m).__name__,
        "state": {k: list(v.shape) for k, v in m.state_dict().items()},
        "num_params": sum(p.numel() for p in m.parameters()),
        "dropout": [float(d.p) for d in m.modules() if isinstance(d, torch.nn.Dropout)],
        "attrs": {a: getattr(m, a) for a in ("d_out", "num_heads", "head_dim") if isinstance(getattr(m, a, None), int)},
    }
    if weights is not None:
        import reference.ch03

        torch.manual_seed(int(weights.get("seed", 0)))
        source = getattr(reference.ch03, weights["class"])(*weights["args"])
        own = m.state_dict()
        state = source.state_dict()
        if set(own) != set(state) or any(own[k].shape != v.shape for k, v in state.items()):
            info["load_failed"] = True
            return info
        info["buffers"] = load_observing(m, state)
    m.double()
    xs = x.double()
    with torch.no_grad():
        m.train(True)
        torch.manual_seed(1)
        info["train_outputs"] = [m(xs), m(xs)]
        m.train(False)
        info["eval_output"] = m(xs)
    return info
