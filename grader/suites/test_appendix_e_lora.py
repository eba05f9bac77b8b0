"""Hidden checks for appendix E (E.4): LoRALayer, LinearWithLoRA and replace_linear_with_lora.

Errata (see BOOK_FACTS): the printed LoRALayer returns ``alpha * (x @ A @ B)``, the repository
``(alpha / rank) * (x @ A @ B)``. Both pass. The checks use ``rank > 1`` with ``alpha`` neither 1
nor ``rank``, recognise the student's result as exactly one of the two (or neither: a failure),
and record which one as the check's ``convention`` property.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import module_structure
from grader.checking.compare import expect_grads, expect_state_keys, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.messages import phrase
from grader.checking.mistakes.appendix_e import SCALES, linear_with_lora, lora, with_grads, wrapped_mistake
from grader.recipes.appendix_e import LINEAR_PATHS
from grader.checking.tolerance import policy, within

TOL64 = policy(torch.float64)


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=_g(seed), dtype=torch.float64)


def _matches(got: Any, expected: torch.Tensor, tol: Any = TOL64) -> bool:
    return (type(got) is torch.Tensor and got.shape == expected.shape
            and within(got, expected, tol))


def _convention(got: Any, outputs: dict[str, torch.Tensor], tol: Any = TOL64) -> str | None:
    """"repository" or "printed" when ``got`` equals exactly that convention's output."""
    for name in ("repository", "printed"):
        if _matches(got, outputs[name], tol):
            return name
    return None


# ---- LoRALayer ------------------------------------------------------------------------------

LL = component("appendix_e", "LoRALayer", section="E.4", title="A low-rank adaptation layer", points=2)


def _lora_state(in_dim: int, out_dim: int, rank: int, seed: int = 2) -> dict[str, torch.Tensor]:
    """A and B as after some training (B is no longer zero)."""
    return {"A": torch.randn(in_dim, rank, generator=_g(seed), dtype=torch.float64) / in_dim ** 0.5,
            "B": torch.randn(rank, out_dim, generator=_g(seed + 1), dtype=torch.float64)}


def _lora_forward(student: Any, ref: Any, args: list[Any], x: torch.Tensor, record: Any = None,
                  dtype: str = "float64") -> str:
    """The repository's convention is the reference's own answer (so that a slip in it can be named
    by a reference mutant); the printed book's is computed here."""
    in_dim, out_dim, rank, alpha = args
    what = f"LoRALayer({in_dim}, {out_dim}, rank={rank}, alpha={alpha})"
    state = _lora_state(in_dim, out_dim, rank)
    grad_output = torch.randn(*x.shape[:-1], out_dim, generator=_g(9), dtype=torch.float64)
    backward = dtype == "float64"
    request = dict(module="appendix_e", name="LoRALayer", args=list(args), kwargs={}, state_dict=state, inputs=[x],
                   dtype=dtype, grad_output=grad_output if backward else None)
    expected = ref.run("module.forward", **request)
    got = student.run("module.forward", what=what, **request)
    if got.get("load_failed"):
        expect_state_keys(got["state"], {k: list(v.shape) for k, v in state.items()}, what)
    outputs = {scale: lora(state["A"], state["B"], x.to(torch.float64), alpha, rank, scale) for scale in SCALES}
    outputs["repository"] = expected["output"].to(torch.float64)
    out = got.get("output")
    tol = policy(getattr(torch, dtype))
    convention = _convention(out, outputs, tol)
    if convention is None:
        wrong = {"appendix_e_lora_alpha_ignored": outputs["none"]} if alpha != rank else {}
        expect_tensor(out, outputs["repository"].to(getattr(torch, dtype)),
                      f"{what} output (repository scaling alpha / rank = {alpha / rank:g}; the printed book's "
                      f"alpha = {alpha:g} is accepted too)", token_dim=None, mistakes=wrong)
        convention = "repository"
    if type(out) is torch.Tensor and out.dtype != getattr(torch, dtype):
        raise GradeFailure("compare.dtype", what=f"{what} output", expected=dtype, got=str(out.dtype))
    if not backward:
        return convention
    if convention == "repository":
        want = {"param_grads": expected["param_grads"], "input_grad": expected["input_grads"][0]}
    else:
        scale = SCALES[convention](alpha, rank)
        want = with_grads(lambda p, xx: scale * (xx @ p["A"] @ p["B"]), state, x, grad_output)
    expect_grads(got.get("param_grads", {}), want["param_grads"], what)
    expect_tensor(got["input_grads"][0], want["input_grad"], phrase("what.gradient_input", what=what), token_dim=None)
    if record is not None and rank != 1:
        record("convention", phrase(f"appendix_e.convention_{convention}"))
    return convention


@LL
def test_parameters_A_and_B(student, ref):
    """A of shape (in_dim, rank) and B of shape (rank, out_dim), registered as parameters."""
    module_structure(student, ref, "appendix_e", "LoRALayer", [6, 5, 4, 8.0])


@LL
def test_fresh_layer_adds_nothing(student, ref):
    """B starts at zero, so a new LoRALayer's output is exactly 0; A starts random (not zero)."""
    args = [6, 5, 4, 8.0]
    what = phrase("what.loralayer_rank_alpha_freshly_created")
    state = student.run("module.state_dict", what=what, module="appendix_e", name="LoRALayer", args=args,
                        kwargs={}, seed=0)
    got = student.run("module.forward", what=what, module="appendix_e", name="LoRALayer", args=args,
                      kwargs={}, inputs=[_x(3, 6)], dtype="float64")
    b = state.get("B")
    b_random = type(b) is torch.Tensor and bool((b != 0).any()) and type(got.get("output")) is torch.Tensor
    expect_tensor(got.get("output"), torch.zeros(3, 5, dtype=torch.float64), f"{what}: output", token_dim=None,
                  mistakes={"appendix_e_lora_b_random_init": got["output"]} if b_random else None)
    a = state.get("A")
    if type(a) is torch.Tensor and (not bool(torch.isfinite(a).all()) or bool((a == 0).all())):
        raise GradeFailure("appendix_e.lora_a_zero", what=what)


@LL
def test_scaling_rank_4(student, ref, record_property):
    """rank=4, alpha=8: the repository's alpha / rank (2) or the printed book's alpha (8), nothing else."""
    _lora_forward(student, ref, [6, 5, 4, 8.0], _x(3, 6), record_property)


@LL
def test_scaling_rank_2_small_alpha(student, ref):
    _lora_forward(student, ref, [4, 7, 2, 0.5], _x(2, 4, seed=3))


@LL
def test_rank_one(student, ref):
    """With rank 1 both conventions agree: alpha * (x @ A @ B)."""
    _lora_forward(student, ref, [5, 3, 1, 2.0], _x(4, 5, seed=4))


@LL
def test_batch_of_token_sequences(student, ref):
    """x of shape (batch, tokens, in_dim) gives (batch, tokens, out_dim)."""
    _lora_forward(student, ref, [6, 5, 2, 3.0], _x(2, 3, 6, seed=5))


@LL
def test_float32_output_dtype(student, ref):
    _lora_forward(student, ref, [6, 5, 2, 3.0], _x(3, 6, seed=6).float(), dtype="float32")


# ---- LinearWithLoRA -------------------------------------------------------------------------

LW = component("appendix_e", "LinearWithLoRA", section="E.4", title="A linear layer with LoRA", points=2,
               depends=("appendix_e.LoRALayer",))
SWAP_LW = ("appendix_e.LoRALayer",)


def _wrap_state(in_f: int, out_f: int, rank: int, bias: bool = True, seed: int = 3) -> dict[str, torch.Tensor]:
    state = {"linear.weight": torch.randn(out_f, in_f, generator=_g(seed), dtype=torch.float64) / in_f ** 0.5}
    if bias:
        state["linear.bias"] = torch.randn(out_f, generator=_g(seed + 1), dtype=torch.float64)
    lo = _lora_state(in_f, out_f, rank, seed + 2)
    state.update({"lora.A": lo["A"], "lora.B": lo["B"]})
    return state


def _wrap(student: Any, ref: Any, in_f: int, out_f: int, rank: int, alpha: float, *, bias: bool = True,
          swap: tuple[str, ...] = SWAP_LW, dtype: str = "float32", with_state: bool = True,
          record: Any = None) -> dict[str, Any]:
    what = f"LinearWithLoRA(nn.Linear({in_f}, {out_f}, bias={bias}), rank={rank}, alpha={alpha})"
    x = _x(3, in_f, seed=7)
    state = _wrap_state(in_f, out_f, rank, bias) if with_state else None
    grad_output = torch.randn(3, out_f, generator=_g(8), dtype=torch.float64)
    inputs = dict(in_features=in_f, out_features=out_f, rank=rank, alpha=alpha, x=x, bias=bias, dtype=dtype,
                  state_dict=state, grad_output=grad_output if with_state else None)
    expected = ref.run("appendix_e.linear_with_lora", **inputs)
    got = student.run("appendix_e.linear_with_lora", swap=swap, what=what, **inputs)
    expect_state_keys(got["state"], expected["state"], what)
    if state is None:
        return got
    outputs = {scale: linear_with_lora(state, x, alpha, rank, scale=scale) for scale in SCALES}
    out = got.get("output")
    convention = _convention(out, outputs) if not swap else ("repository" if _matches(out, outputs["repository"])
                                                              else None)
    if convention is None:
        wrong = {"appendix_e_lora_missing_linear": linear_with_lora(state, x, alpha, rank, parts="lora"),
                 "appendix_e_lora_update_missing": linear_with_lora(state, x, alpha, rank, parts="linear")}
        expect_tensor(out, outputs["repository"], f"{what} output", token_dim=None, mistakes=wrong)
        convention = "repository"
    scale = convention
    ref_grads = with_grads(lambda p, xx: linear_with_lora(p, xx, alpha, rank, scale=scale), state, x, grad_output)
    expect_grads(got.get("param_grads", {}), ref_grads["param_grads"], what)
    expect_tensor(got.get("input_grad"), ref_grads["input_grad"], phrase("what.gradient_input", what=what), token_dim=None)
    if record is not None:
        record("convention", phrase(f"appendix_e.convention_{convention}"))
    return got


@LW
def test_wrapper_parameter_names(student, ref):
    """self.linear is the given layer; self.lora a LoRALayer of matching size."""
    got = _wrap(student, ref, 6, 5, 2, 4.0, with_state=False)
    if not got["keeps_linear"]:
        raise GradeFailure("appendix_e.linear_not_kept", what="LinearWithLoRA(linear, rank=2, alpha=4.0)")


@LW
def test_fresh_wrap_equals_the_linear_layer(student, ref):
    got = _wrap(student, ref, 6, 5, 2, 4.0, with_state=False)
    out = got["fresh_output"]
    expect_tensor(out, got["linear_output"], "LinearWithLoRA(linear, rank=2, alpha=4.0)(x) right after wrapping "
                  "(B is zero, so it must equal linear(x))", token_dim=None, tol=policy(torch.float32),
                  mistakes={"appendix_e_lora_missing_linear": torch.zeros_like(got["linear_output"])})


@LW
def test_forward_and_gradients(student, ref):
    _wrap(student, ref, 6, 5, 4, 8.0)


@LW
def test_linear_without_bias(student, ref):
    _wrap(student, ref, 4, 6, 2, 3.0, bias=False)


@LW
@pytest.mark.extension
def test_lora_follows_the_linear_dtype(student, ref):
    """A float64 nn.Linear: the LoRA parameters are created in float64 too. Beyond the book, whose
    LoRALayer always creates float32 parameters."""
    got = _wrap(student, ref, 6, 5, 2, 4.0, with_state=False, dtype="float64")
    expect_tensor(got["fresh_output"], got["linear_output"], "LinearWithLoRA(float64 linear)(x)", token_dim=None)


@LW
@pytest.mark.integration
def test_with_your_lora_layer(student, ref, record_property):
    _wrap(student, ref, 6, 5, 4, 8.0, swap=(), record=record_property)


# ---- replace_linear_with_lora ---------------------------------------------------------------

RL = component("appendix_e", "replace_linear_with_lora", section="E.4",
               title="Swapping every Linear for LinearWithLoRA", points=2, depends=("appendix_e.LinearWithLoRA",))
SWAP_RL = ("appendix_e.LinearWithLoRA",)
RANK, ALPHA = 2, 6.0


def _replace(student: Any, ref: Any, *, calls: int = 1, swap: tuple[str, ...] = SWAP_RL,
             trained: bool = False, alpha: float = ALPHA) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]:
    what = f"replace_linear_with_lora(model, rank={RANK}, alpha={alpha})"
    if calls > 1:
        what = phrase("what.called_twice", call=what)
    x = _x(4, 6, seed=11)
    inputs: dict[str, Any] = dict(rank=RANK, alpha=alpha, x=x, calls=calls)
    if trained:
        plain = ref.run("appendix_e.replace", **inputs)
        state = {k: v.clone() for k, v in plain["after"].items()}
        for k in sorted(state):
            if k.endswith("lora.B"):
                state[k] = torch.randn(state[k].shape, generator=_g(len(k)), dtype=state[k].dtype)
        inputs["state_dict"] = state
    expected = ref.run("appendix_e.replace", **inputs)
    got = student.run("appendix_e.replace", swap=swap, what=what, **inputs)
    return got, expected, what, inputs


def _expect_wrapped(got: dict[str, Any], what: str) -> None:
    wrapped = sorted(got["wrapped"])
    if wrapped != sorted(LINEAR_PATHS):
        raise GradeFailure("appendix_e.wrapped_paths", what=what, expected=sorted(LINEAR_PATHS), got=wrapped,
                           diagnosis=wrapped_mistake(wrapped))


@RL
def test_every_linear_is_wrapped(student, ref):
    """Top-level Linear layers, those inside blocks and Sequentials, and nothing else."""
    got, _, what, _ = _replace(student, ref)
    _expect_wrapped(got, what)


@RL
def test_parameter_names_after_replacement(student, ref):
    got, expected, what, _ = _replace(student, ref)
    expect_state_keys(got["state"], expected["state"], phrase("what.model_after", what=what))


@RL
def test_original_weights_are_kept(student, ref):
    """Each LinearWithLoRA wraps the model's own layer: its weights are the ones from before."""
    got, _, what, _ = _replace(student, ref)
    before, after = got["before"], got["after"]
    for path in LINEAR_PATHS:
        for kind in ("weight", "bias"):
            old = before.get(f"{path}.{kind}")
            if old is None:
                continue
            new = after.get(f"{path}.linear.{kind}")
            if new is None:
                raise GradeFailure("appendix_e.wrapped_paths", what=what, expected=sorted(LINEAR_PATHS),
                                   got=sorted(got["wrapped"]), diagnosis=wrapped_mistake(sorted(got["wrapped"])))
            expect_tensor(new, old, f"{path}.linear.{kind} after {what} (the original {path}.{kind})", token_dim=None)


@RL
def test_output_unchanged_right_after(student, ref):
    got, _, what, _ = _replace(student, ref)
    expect_tensor(got["out_after"], got["out_before"], phrase("what.model_output_right_after", what=what), token_dim=None)


@RL
def test_forward_with_trained_adapters(student, ref):
    got, expected, what, _ = _replace(student, ref, trained=True)
    if got.get("load_failed"):
        expect_state_keys(got["state"], expected["state"], phrase("what.model_after", what=what))
    expect_tensor(got.get("out_loaded"), expected["out_loaded"], phrase("what.output_after_and_loading_trained", what=what), token_dim=None)


@RL
@pytest.mark.extension
def test_second_call_wraps_nothing_again(student, ref):
    """Layers that already are LinearWithLoRA are left alone. Beyond the book, whose function wraps
    again when called twice."""
    got, _, what, _ = _replace(student, ref, calls=2)
    _expect_wrapped(got, what)


@RL
@pytest.mark.integration
def test_with_your_lora_classes(student, ref, record_property):
    got, expected, what, inputs = _replace(student, ref, swap=(), trained=True)
    _expect_wrapped(got, what)
    if got.get("load_failed"):
        expect_state_keys(got["state"], expected["state"], phrase("what.model_after", what=what))
    # the printed convention alpha * xAB is the repository's (alpha' / rank) * xAB with alpha' = alpha * rank
    printed = ref.run("appendix_e.replace", **{**inputs, "alpha": ALPHA * RANK})
    outputs = {"repository": expected["out_loaded"], "printed": printed["out_loaded"]}
    convention = _convention(got.get("out_loaded"), outputs)
    if convention is None:
        expect_tensor(got.get("out_loaded"), expected["out_loaded"], phrase("what.output_after_and_loading_trained_2", what=what), token_dim=None)
        convention = "repository"
    record_property("convention", phrase(f"appendix_e.convention_{convention}"))
