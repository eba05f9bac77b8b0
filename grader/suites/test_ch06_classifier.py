"""Hidden checks for the classifier (sections 6.5-6.6): ch06.prepare_classifier, problem 6.2,
ch06.calc_accuracy_loader, ch06.calc_loss_batch and problem 6.3.

Models are tiny reference GPTs (vocab 96, context 16, 2 layers); sizes from the book (the 124M
model) are checked on the meta device.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_grads, expect_state_keys, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch06 import Lazy, accuracy_mistakes, all_logits, expect_number, loss_mistakes
from grader.messages import phrase

PREPARE_CLASSIFIER = component("ch06", "prepare_classifier", section="6.5", title="Adding a classification head",
                               points=2,
                               uses=("ch04.GPTModel",))
CALC_ACCURACY_LOADER = component("ch06", "calc_accuracy_loader", section="6.6",
                                 title="Classification accuracy from the last token", points=2,
                                 uses=("ch04.GPTModel",))
CALC_LOSS_BATCH = component("ch06", "calc_loss_batch", section="6.6", title="Classification loss from the last token",
                            points=2, symbols=("calc_loss_batch", "calc_loss_loader"),
                            uses=("ch04.GPTModel",))
EX62 = problem("6.2", "ch06", section="6.5", title="Fine-tuning the whole model", points=1,
               symbols=("exercise_6_2_make_all_trainable",), depends=("ch06.prepare_classifier",))
EX63 = problem("6.3", "ch06", section="6.6", title="Fine-tuning the first versus the last token", points=1,
               symbols=("exercise_6_3_first_token_loss",), depends=("ch06.calc_loss_batch",))

CFG = dict(vocab_size=96, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
DROPOUT_CFG = {**CFG, "drop_rate": 0.5}
GPT2_124M = dict(vocab_size=50257, context_length=1024, emb_dim=768, n_heads=12, n_layers=12,
                 drop_rate=0.0, qkv_bias=True)


def _ids(batch: int, tokens: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, 96, (batch, tokens), generator=torch.Generator().manual_seed(seed))


# ---- prepare_classifier ---------------------------------------------------------------------


def _short(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _surgery_diagnosis(wrong_trainable: list[str], wrong_frozen: list[str], n_layers: int) -> str | None:
    last = f"trf_blocks.{n_layers - 1}."
    if any(n.startswith("tok_emb") or n.startswith("pos_emb") for n in wrong_trainable):
        return "ch06_surgery_not_frozen"
    if any(n.startswith("trf_blocks.0.") for n in wrong_trainable) and any(n.startswith(last) for n in wrong_frozen):
        return "ch06_surgery_first_block_unfrozen"
    if any(n.startswith(last) for n in wrong_frozen):
        return "ch06_surgery_last_block_frozen"
    if any(n.startswith("final_norm.") for n in wrong_frozen):
        return "ch06_surgery_final_norm_frozen"
    if any(n.startswith("out_head.") for n in wrong_frozen):
        return "ch06_surgery_head_frozen"
    return None


def expect_trainable(got: list[str], expected: list[str], what: str, n_layers: int) -> None:
    wrong_trainable = sorted(set(got) - set(expected))
    wrong_frozen = sorted(set(expected) - set(got))
    if wrong_trainable or wrong_frozen:
        raise GradeFailure("ch06.trainable_wrong", what=what,
                           trainable=_short(wrong_trainable) or "-", frozen=_short(wrong_frozen) or "-",
                           diagnosis=_surgery_diagnosis(wrong_trainable, wrong_frozen, n_layers),
                           details={"wrongly_trainable": wrong_trainable, "wrongly_frozen": wrong_frozen})


def _surgery(student: Any, ref: Any, num_classes: int = 2, seed: int = 123,
             x: torch.Tensor | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    state = ref.run("ch06.gpt_state", cfg=CFG)
    inputs = dict(cfg=CFG, state_dict=state, num_classes=num_classes, seed=seed, x=x)
    expected = ref.run("ch06.prepare_classifier", **inputs)
    got = student.run("ch06.prepare_classifier", what=f"prepare_classifier(model, num_classes={num_classes})",
                      **inputs)
    return got, expected


@PREPARE_CLASSIFIER
def test_new_head_layout(student, ref):
    got, expected = _surgery(student, ref)
    expect_equal(got["head_type"], "Linear", phrase("what.type_model_out_head_after"))
    expect_state_keys(got["state"], expected["state"], phrase("what.classifier_state_dict"))
    expect_equal(got["same_object"], True, phrase("what.prepare_classifier_returns_model_it"))


@PREPARE_CLASSIFIER
def test_which_parameters_are_trainable(student, ref):
    got, expected = _surgery(student, ref)
    expect_trainable(got["trainable"], expected["trainable"], "prepare_classifier(model)", CFG["n_layers"])


@PREPARE_CLASSIFIER
def test_head_initialised_from_the_callers_seed(student, ref):
    got, expected = _surgery(student, ref, seed=7)
    if set(got["head"]) != set(expected["head"]):
        expect_state_keys({k: list(v.shape) for k, v in got["head"].items()},
                          {k: list(v.shape) for k, v in expected["head"].items()}, "model.out_head")
    seeded_inside = ref.run("ch06.prepare_classifier", cfg=CFG, seed=123)["head"]
    for name, value in expected["head"].items():
        g = got["head"][name]
        diagnosis = ("ch06_surgery_seeds_inside" if isinstance(g, torch.Tensor) and g.shape == value.shape
                     and torch.equal(g, seeded_inside[name]) and not torch.equal(g, value) else None)
        if diagnosis:
            raise GradeFailure("ch06.head_init", what=f"out_head.{name}", diagnosis=diagnosis)
        expect_tensor(g, value, phrase("what.out_head_right_after_prepare", name=name))


@PREPARE_CLASSIFIER
def test_three_class_outputs(student, ref):
    got, expected = _surgery(student, ref, num_classes=3, x=_ids(2, 7))
    expect_tensor(got.get("output"), expected["output"], phrase("what.classifier_logits_with_num_classes"), token_dim=1)


@PREPARE_CLASSIFIER
def test_gpt2_small_trainable_count(student, ref):
    """The book: 7,090,946 trainable parameters after the surgery on GPT-2 124M (meta device)."""
    got = student.run("ch06.prepare_classifier", what=phrase("what.prepare_classifier_gpt_m_on"),
                      time_limit_s=20, cfg=GPT2_124M, meta=True)
    expect_equal(got["trainable"], 7_090_946, phrase("what.trainable_parameters_gpt_m_classifier"))


# ---- 6.2 --------------------------------------------------------------------------------------


def _all_trainable(student: Any, ref: Any, own: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(cfg=CFG, own_surgery=own)
    expected = ref.run("ch06.make_all_trainable", **inputs)
    swap = () if own else ("ch06.prepare_classifier",)
    got = student.run("ch06.make_all_trainable", swap=swap, what="exercise_6_2_make_all_trainable(model)",
                      **inputs)
    return got, expected


@EX62
def test_every_parameter_trainable(student, ref):
    got, expected = _all_trainable(student, ref, own=False)
    expect_equal(got["frozen"], [], phrase("what.parameters_still_frozen_after_exercise"))
    expect_equal(got["trainable"], expected["trainable"], phrase("what.trainable_parameters"))


@EX62
def test_weights_and_object_unchanged(student, ref):
    got, _ = _all_trainable(student, ref, own=False)
    expect_equal(got["changed"], [], phrase("what.weights_changed_by_exercise_make"))
    expect_equal(got["same_object"], True, phrase("what.exercise_make_all_trainable_returns"))


@EX62
def test_gpt2_small_fully_trainable(student, ref):
    """GPT-2 124M classifier, all trainable: 124,441,346 parameters (meta device)."""
    got = student.run("ch06.make_all_trainable", swap=("ch06.prepare_classifier",), time_limit_s=20,
                      what="exercise_6_2_make_all_trainable(GPT-2 124M classifier)", cfg=GPT2_124M, meta=True)
    expect_equal(got["trainable"], 124_441_346, phrase("what.trainable_parameters_gpt_m_classifier"))


@EX62
@pytest.mark.integration
def test_after_your_prepare_classifier(student, ref):
    got, expected = _all_trainable(student, ref, own=True)
    expect_equal(got["trainable"], expected["trainable"], phrase("what.trainable_parameters_after_your_surgery"))


# ---- calc_accuracy_loader ----------------------------------------------------------------------


def _labels(state: dict[str, torch.Tensor], inputs: torch.Tensor, flip: list[int]) -> torch.Tensor:
    """The reference's last-token predictions, flipped at ``flip``: a known, non-trivial accuracy."""
    pred = all_logits(CFG, state, inputs)[:, -1, :].argmax(-1)
    for i in flip:
        pred[i] = 1 - pred[i]
    return pred


ACC_X = _ids(7, 9, seed=3)
ACC_FLIP = [0, 2, 3]
_ACC_SETUP: dict[str, Any] = {}


def _accuracy(student: Any, ref: Any, batch_size: int, num_batches: int | None, *, cfg: dict[str, Any] = CFG,
              train: bool = False) -> dict[str, Any]:
    if not _ACC_SETUP:
        state = ref.run("ch06.classifier_state", cfg=CFG, seed=2)
        _ACC_SETUP.update(state=state, labels=_labels(state, ACC_X, ACC_FLIP))
    state, labels = _ACC_SETUP["state"], _ACC_SETUP["labels"]
    inputs = dict(fn="calc_accuracy_loader", cfg=cfg, state_dict=state, inputs=ACC_X, labels=labels,
                  batch_size=batch_size, num_batches=num_batches, train=train)
    what = f"calc_accuracy_loader(7 examples, batch_size={batch_size}, num_batches={num_batches})"
    expected = ref.run("ch06.metric", **inputs)
    got = student.run("ch06.metric", what=what, **inputs)
    exp = expected["value"]
    wrong = Lazy(lambda: {k: v for k, v in accuracy_mistakes(CFG, state, ACC_X, labels, batch_size,
                                                              num_batches).items() if v != exp})
    expect_number(got["value"], exp, what, mistakes=wrong)
    return got


@CALC_ACCURACY_LOADER
def test_accuracy_over_all_batches(student, ref):
    _accuracy(student, ref, batch_size=2, num_batches=None)


@CALC_ACCURACY_LOADER
def test_accuracy_over_the_first_batches(student, ref):
    _accuracy(student, ref, batch_size=2, num_batches=2)


@CALC_ACCURACY_LOADER
def test_num_batches_beyond_the_loader(student, ref):
    _accuracy(student, ref, batch_size=3, num_batches=10)


@CALC_ACCURACY_LOADER
def test_uneven_last_batch(student, ref):
    """Batches of 3, 3 and 1: the accuracy counts examples, not batches."""
    _accuracy(student, ref, batch_size=3, num_batches=None)


@CALC_ACCURACY_LOADER
def test_eval_mode_without_gradients(student, ref):
    got = _accuracy(student, ref, batch_size=4, num_batches=None, cfg=DROPOUT_CFG, train=True)
    if any(got["training"]):
        raise GradeFailure("ch06.forward_in_train_mode", what="calc_accuracy_loader")
    if any(got["grad_enabled"]):
        raise GradeFailure("ch06.forward_with_grad", what="calc_accuracy_loader")


# ---- calc_loss_batch / calc_loss_loader ------------------------------------------------------------


def _loss(student: Any, ref: Any, batch: int, tokens: int, *, fn: str = "calc_loss_batch", graded: str = "last",
          swap: tuple[str, ...] = (), seed: int = 4) -> None:
    state = ref.run("ch06.classifier_state", cfg=CFG, seed=5)
    x = _ids(batch, tokens, seed=seed)
    y = torch.randint(0, 2, (batch,), generator=torch.Generator().manual_seed(seed + 1))
    inputs = dict(fn=fn, cfg=CFG, state_dict=state, inputs=x, labels=y)
    what = f"{fn}(inputs {list(x.shape)}, labels {list(y.shape)})"
    expected = ref.run("ch06.loss_batch", **inputs)
    got = student.run("ch06.loss_batch", swap=swap, what=what, **inputs)
    wrong = Lazy(lambda: loss_mistakes(CFG, state, x, y, graded=graded) if tokens > 1 else {})
    expect_tensor(got["loss"], expected["loss"], f"{what} loss", mistakes=wrong)
    expect_grads(got["grads"], expected["grads"], phrase("what.gradient", what=what))


@CALC_LOSS_BATCH
def test_loss_and_gradients(student, ref):
    _loss(student, ref, 4, 8)


@CALC_LOSS_BATCH
def test_batch_of_one(student, ref):
    _loss(student, ref, 1, 5, seed=9)


@CALC_LOSS_BATCH
def test_longest_context(student, ref):
    _loss(student, ref, 3, 16, seed=11)


@CALC_LOSS_BATCH
def test_single_token_inputs(student, ref):
    _loss(student, ref, 3, 1, seed=13)


def _loss_loader(student: Any, ref: Any, n: int, batch_size: int, num_batches: int | None) -> None:
    state = ref.run("ch06.classifier_state", cfg=CFG, seed=6)
    x = _ids(max(n, 1), 6, seed=21)[:n]
    y = torch.randint(0, 2, (max(n, 1),), generator=torch.Generator().manual_seed(22))[:n]
    inputs = dict(fn="calc_loss_loader", cfg=CFG, state_dict=state, inputs=x, labels=y,
                  batch_size=batch_size, num_batches=num_batches)
    what = f"calc_loss_loader({n} examples, batch_size={batch_size}, num_batches={num_batches})"
    expected = ref.run("ch06.metric", **inputs)
    got = student.run("ch06.metric", what=what, **inputs)

    def compute() -> dict[str, float]:
        if not n:
            return {}
        limit = len(range(0, n, batch_size)) if num_batches is None else min(num_batches, len(range(0, n, batch_size)))
        batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)][:limit]
        first = [float(loss_mistakes(CFG, state, xb, yb)["ch06_logits_first_token"]) for xb, yb in batches]
        return {"ch06_logits_first_token": sum(first) / len(first)}

    expect_number(got["value"], expected["value"], what, mistakes=Lazy(compute))


@CALC_LOSS_BATCH
def test_loss_loader_mean_over_batches(student, ref):
    _loss_loader(student, ref, 8, 3, None)


@CALC_LOSS_BATCH
def test_loss_loader_num_batches(student, ref):
    _loss_loader(student, ref, 8, 2, 2)
    _loss_loader(student, ref, 8, 2, 10)


@CALC_LOSS_BATCH
def test_loss_loader_empty_is_nan(student, ref):
    _loss_loader(student, ref, 0, 2, None)


# ---- 6.3 ---------------------------------------------------------------------------------------

SWAP_63 = ("ch06.calc_loss_batch",)


@EX63
def test_first_token_loss_and_gradients(student, ref):
    _loss(student, ref, 4, 8, fn="exercise_6_3_first_token_loss", graded="first", swap=SWAP_63)


@EX63
def test_first_token_loss_batch_of_one(student, ref):
    _loss(student, ref, 1, 6, fn="exercise_6_3_first_token_loss", graded="first", swap=SWAP_63, seed=17)


@EX63
@pytest.mark.integration
def test_first_token_loss_with_your_code(student, ref):
    _loss(student, ref, 2, 5, fn="exercise_6_3_first_token_loss", graded="first", seed=19)
