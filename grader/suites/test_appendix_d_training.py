"""Hidden checks for appendix D: find_highest_gradient (D.3) and train_model with warmup, cosine
decay and gradient clipping (D.4), on a tiny reference GPT (float64) with an instrumented AdamW.

Errata (see BOOK_FACTS): the printed book clips when ``global_step > warmup_steps``, the
repository from ``global_step >= warmup_steps``. Both pass; the clipping check records which one
the student used (a ``convention`` property on the check), and the losses and final weights are
compared with the reference run of that convention.

The book's forms (BOOK_FACTS): ``find_highest_gradient`` returns ``None`` without any gradient, and
``train_model`` divides by ``warmup_steps`` and has no ``lr_at_step`` helper; raising a
``ValueError`` and a schedule without warmup are extension checks (shown, not counted).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.messages import phrase
from grader.checking.mistakes.appendix_d import schedule_mistakes, simulate
from grader.recipes.appendix_d import CFG
from grader.checking.tolerance import policy
from grader.checking.pictures import loss_curve, pictures_on_failure

# ---- find_highest_gradient ------------------------------------------------------------------

FHG = component("appendix_d", "find_highest_gradient", section="D.3", title="The largest gradient of a model", points=1,
                uses=("ch04.GPTModel",))


def _highest(student: Any, ref: Any, kind: str, *, frozen: tuple[str, ...] = (), backward: bool = True,
             seed: int = 0) -> tuple[dict[str, Any], dict[str, Any], str]:
    state = ref.run("appendix_d.grad_model_state", kind=kind, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    if kind == "gpt":
        inputs = torch.randint(0, CFG["vocab_size"], (2, 5), generator=g)
        targets = torch.randint(0, CFG["vocab_size"], (2, 5), generator=g)
        what = "find_highest_gradient(a small GPTModel after loss.backward())"
    else:
        inputs = torch.randn(5, 4, generator=g, dtype=torch.float64)
        targets = torch.randint(0, 3, (5,), generator=g)
        what = "find_highest_gradient(an MLP after loss.backward())"
    args = dict(kind=kind, state_dict=state, inputs=inputs, targets=targets, frozen=list(frozen),
                backward=backward, seed=seed)
    return student.run("appendix_d.highest_gradient", what=what, time_limit_s=15, **args), \
        ref.run("appendix_d.highest_gradient", **args), what


def _expect_highest(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    if "error" in got:
        raise GradeFailure("appendix_d.highest_raised", what=what, message=got["message"])
    value = got["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GradeFailure("appendix_d.highest_not_number", what=what, got=got["type"])
    want = expected["value"]
    if abs(value - want) <= 1e-12 + 1e-9 * abs(want):
        return
    stats = expected["stats"]
    diagnosis = None
    abs_max = max((max(abs(hi), abs(lo)) for hi, lo in stats.values()), default=None)
    last = stats[expected["order"][-1]][0] if expected["order"] else None
    if abs_max is not None and abs(value - abs_max) <= 1e-12 and abs_max != want:
        diagnosis = "appendix_d_abs_max_gradient"
    elif last is not None and abs(value - last) <= 1e-12 \
            and abs(value - min(hi for hi, _ in stats.values())) > 1e-12:
        # (the last parameter's maximum that is also the smallest one is what a reversed comparison
        # keeps too: then this says nothing)
        diagnosis = "appendix_d_max_not_compared"
    raise GradeFailure("compare.value", what=what, expected=repr(want), got=repr(value), diagnosis=diagnosis)


@FHG
def test_gpt_model_gradients(student, ref):
    _expect_highest(*_highest(student, ref, "gpt"))


@FHG
def test_signed_maximum_not_absolute(student, ref):
    """An MLP whose largest gradient by magnitude is negative: the answer is the largest value."""
    got, expected, what = _highest(student, ref, "mlp", seed=0)
    stats = expected["stats"]
    assert max(max(abs(h), abs(lo)) for h, lo in stats.values()) > expected["value"], "setup: pick another seed"
    _expect_highest(got, expected, what)


@FHG
def test_skips_parameters_without_gradient(student, ref):
    """The output layer is frozen (its .grad is None); the largest gradient lies elsewhere."""
    _expect_highest(*_highest(student, ref, "mlp", frozen=("2.weight", "2.bias"), seed=0))


@FHG
@pytest.mark.extension
def test_no_gradient_raises_value_error(student, ref):
    """Beyond the book: the book's function returns None when no parameter has a gradient."""
    got, _, what = _highest(student, ref, "mlp", backward=False)
    if "error" not in got:
        raise GradeFailure("appendix_d.highest_no_value_error", what=what.replace("after loss.backward()",
                                                                                  "before any backward()"),
                           got=repr(got.get("value")))


# ---- train_model ----------------------------------------------------------------------------

TM = component("appendix_d", "train_model", section="D.4", title="Warmup, cosine decay and gradient clipping", points=4,
               helpers=("lr_at_step",), depends=("ch05.calc_loss_batch", "ch05.evaluate_model"),
               uses=("ch04.GPTModel",))
SWAP = ("ch05.calc_loss_batch", "ch05.evaluate_model")  # the chapter 5 helpers the loop calls
LOOP = dict(n_epochs=2, eval_freq=3, eval_iter=1, warmup_steps=3, initial_lr=1e-4, min_lr=2e-4)
NO_WARMUP = dict(LOOP, warmup_steps=0, n_epochs=1, eval_freq=2)
PEAK = 1e-2
# 8 steps take under a second, but the first optimizer step in a process pays for imports
TRAIN_TIME_LIMIT_S = 30

_CACHE: dict[str, Any] = {}


def _setup(ref: Any) -> dict[str, Any]:
    if "state" not in _CACHE:
        _CACHE["state"] = ref.run("module.state_dict", module="ch04", name="GPTModel", args=[CFG], seed=0)
    return dict(state_dict=_CACHE["state"], n_train=4, n_val=2, batch_size=2, peak_lr=PEAK)


def _what(loop: dict[str, Any]) -> str:
    return ("train_model(..., n_epochs={n_epochs}, eval_freq={eval_freq}, eval_iter={eval_iter}, "
            "warmup_steps={warmup_steps}, initial_lr={initial_lr}, min_lr={min_lr})").format(**loop)


def _run(student: Any, ref: Any, loop: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    key = repr(sorted(loop.items()))
    setup = _setup(ref)
    what = _what(loop)
    if ("student", key) not in _CACHE:
        _CACHE[("student", key)] = student.run("appendix_d.train", swap=SWAP, what=what, setup=setup, loop=loop,
                                                    time_limit_s=TRAIN_TIME_LIMIT_S)
    elif hasattr(student, "answered"):  # this check's evidence too (grader/checking/mutants/)
        student.answered("appendix_d.train", _CACHE[("student", key)], swap=SWAP, setup=setup, loop=loop)
    if getattr(ref, "is_mutant", False):  # a reference mutant naming a mistake: never kept
        expected = ref.run("appendix_d.train", setup=setup, loop=loop)
    else:
        if ("ref", key) not in _CACHE:
            _CACHE[("ref", key)] = ref.run("appendix_d.train", setup=setup, loop=loop)
        expected = _CACHE[("ref", key)]
    got = _CACHE[("student", key)]
    if got.get("returned") not in ("tuple", "list") or "track_lrs" not in got:
        raise GradeFailure("appendix_d.train_returned", what=what, got=got.get("returned"))
    return got, expected, what


@pytest.fixture(autouse=True)
def _fresh_cache(request: pytest.FixtureRequest) -> Any:
    """Results are shared between the checks of one test session (one submission) only."""
    session = id(request.session)
    if _CACHE.get("session") != session:
        _CACHE.clear()
        _CACHE["session"] = session
    yield


def _lrs(got: list[Any], expected: list[float], what: str, loop: dict[str, Any]) -> None:
    total = len(expected)
    wrong = schedule_mistakes(total, loop["warmup_steps"], PEAK, loop["initial_lr"], loop["min_lr"])
    expect_equal(len(got), total, f"len(track_lrs) of {what} (one entry per optimizer step)")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in got):
        raise GradeFailure("appendix_d.lrs_not_numbers", what=what)
    as_t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    expect_tensor(as_t(got), as_t(expected), phrase("what.track_lrs_index_global_step", what=what), token_dim=None,
                  mistakes={d: as_t(v) for d, v in wrong.items() if v != expected})


@TM
def test_learning_rate_schedule(student, ref):
    """Warmup from initial_lr over 3 steps, then half a cosine down to min_lr, over 2 epochs."""
    got, expected, what = _run(student, ref, LOOP)
    _lrs(got["track_lrs"], expected["track_lrs"], what, LOOP)


@TM
@pytest.mark.extension
def test_no_warmup_steps(student, ref):
    """warmup_steps=0: the schedule starts at the peak and must not divide by zero. Beyond the book,
    whose ``lr_increment = (peak_lr - initial_lr) / warmup_steps`` assumes a warmup."""
    got, expected, what = _run(student, ref, NO_WARMUP)
    _lrs(got["track_lrs"], expected["track_lrs"], what, NO_WARMUP)


@TM
def test_optimizer_uses_the_scheduled_rate(student, ref):
    """At every optimizer.step(), every param group's "lr" is that step's scheduled rate."""
    got, expected, what = _run(student, ref, LOOP)
    want = expected["step_lrs"]
    expect_equal(len(got["step_lrs"]), len(want), phrase("what.number_optimizer_step_calls_in", what=what))
    for step, (g, e) in enumerate(zip(got["step_lrs"], want)):
        if any(abs(a - b) > 1e-12 + 1e-9 * abs(b) for a, b in zip(g, e)):
            diagnosis = "appendix_d_lr_not_set_on_optimizer" if all(
                abs(a - PEAK) <= 1e-15 for row in got["step_lrs"] for a in row) else None
            raise GradeFailure("appendix_d.optimizer_lr", what=what, step=step, expected=e, got=g,
                               diagnosis=diagnosis)


def _clipped(got: dict[str, Any]) -> list[bool | None]:
    """Per step: True if the gradients were scaled down before optimizer.step(), None where the
    raw norm was at most 1 (clipping would change nothing)."""
    out: list[bool | None] = []
    for raw, seen in zip(got["raw_norms"], got["step_norms"]):
        out.append(None if raw <= 1.0 + 1e-9 else seen < raw * (1 - 1e-9))
    return out


def _convention(got: dict[str, Any], warmup: int) -> str | None:
    clipped = _clipped(got)
    for name, rule in (("ge", lambda s: s >= warmup), ("gt", lambda s: s > warmup)):
        if all(c is None or c == rule(s) for s, c in enumerate(clipped)):
            return name
    return None


def _reference_for(ref: Any, got: dict[str, Any], expected: dict[str, Any],
                   loop: dict[str, Any]) -> dict[str, Any]:
    """The reference run of the student's clipping convention (the repository's otherwise)."""
    if _convention(got, loop["warmup_steps"]) == "gt":
        key = ("gt", repr(sorted(loop.items())))
        if key not in _CACHE:
            _CACHE[key] = simulate(_setup(ref), dict(loop), clip="gt")
        return dict(_CACHE[key])
    return expected


@TM
def test_gradient_clipping_after_warmup(student, ref, record_property):
    """clip_grad_norm_(max_norm=1.0) from the end of the warmup on (printed book: step > warmup_steps,
    repository: step >= warmup_steps; both accepted), never during the warmup."""
    got, expected, what = _run(student, ref, LOOP)
    warmup = LOOP["warmup_steps"]
    clipped = _clipped(got)
    for step, (c, seen) in enumerate(zip(clipped, got["step_norms"])):
        if c and abs(seen - 1.0) > 1e-6:
            raise GradeFailure("appendix_d.clip_norm", what=what, step=step, got=seen)
    convention = _convention(got, warmup)
    if convention is not None:
        record_property("convention", phrase(f"appendix_d.convention_{convention}"))
        return
    steps = [s for s, c in enumerate(clipped) if c]
    known = [s for s, c in enumerate(clipped) if c is not None]
    diagnosis = None
    if not steps:
        diagnosis = "appendix_d_clipping_never"
    elif steps == known:
        diagnosis = "appendix_d_clipping_always"
    raise GradeFailure("appendix_d.clip_steps", what=what, got=steps, warmup=warmup,
                       ge=[s for s in known if s >= warmup], gt=[s for s in known if s > warmup],
                       diagnosis=diagnosis)


@TM
def test_losses_and_tokens_seen(student, ref):
    """Evaluated every eval_freq steps from step 0: train/val losses and tokens seen."""
    got, expected, what = _run(student, ref, LOOP)
    want = _reference_for(ref, got, expected, LOOP)
    for key, label in (("tokens_seen", "track_tokens_seen"), ("train_losses", "train_losses"),
                       ("val_losses", "val_losses")):
        values = got[key]
        expect_equal(len(values), len(want[key]), phrase("what.length_of", label=label, what=what))
        if key == "tokens_seen":
            expect_equal([int(v) for v in values], [int(v) for v in want[key]], phrase("what.label_of", label=label, what=what))
        else:
            with pictures_on_failure(loss_curve=loss_curve(values, want[key])):
                expect_tensor(torch.tensor(values, dtype=torch.float64), torch.tensor(want[key], dtype=torch.float64),
                              phrase("what.index_evaluation", label=label, what=what), token_dim=None)


@TM
def test_final_weights(student, ref):
    """After 8 steps of AdamW the weights equal the reference's (same convention)."""
    got, expected, what = _run(student, ref, LOOP)
    want = _reference_for(ref, got, expected, LOOP)
    tol = policy(torch.float64)
    for name, value in want["state"].items():
        expect_tensor(got["state"].get(name), value, f"{name} after {what}", tol=tol, token_dim=None)
