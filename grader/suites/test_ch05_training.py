"""Hidden checks for training (sections 5.2 and 5.4): ch05.train_model_simple, ch05.save_checkpoint
(with load_checkpoint) and problem 5.4.

Both sides train the same tiny reference GPT (vocab 96, context 8, 2 layers) from identical
weights and data, seeded identically, in float64 where the student builds nothing; losses, tokens
seen and final weights must agree. A mismatch is compared with recomputed slips (gradients never
zeroed, tokens counted per sequence, an evaluation schedule shifted by one, no train mode).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor, values_close
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch05 import train_mistakes
from grader.checking.pictures import losses_pair, pictures_on_failure
from grader.messages import phrase

TRAIN_MODEL_SIMPLE = component("ch05", "train_model_simple", section="5.2", title="The pretraining loop", points=4,
                               depends=("ch05.calc_loss_batch", "ch05.evaluate_model", "ch04.generate_text_simple", "ch05.text_to_token_ids", "ch05.token_ids_to_text"))
SAVE_CHECKPOINT = component("ch05", "save_checkpoint", section="5.4",
                            title="Saving and loading model and optimizer state", points=2,
                            symbols=("save_checkpoint", "load_checkpoint"),
                            uses=("ch04.GPTModel", "ch05.calc_loss_batch"))
EX54 = problem("5.4", "ch05", section="5.4", title="Resuming training from a checkpoint", points=2,
               symbols=("exercise_5_4_resume_training",), depends=("ch05.save_checkpoint", "ch05.train_model_simple", "ch04.GPTModel"))

CFG = dict(vocab_size=96, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.2, qkv_bias=False)
NO_DROPOUT = {**CFG, "drop_rate": 0.0}
TRAIN_DEPS = ("ch05.calc_loss_batch", "ch05.evaluate_model", "ch05.calc_loss_loader", "ch05.text_to_token_ids",
              "ch05.token_ids_to_text", "ch04.generate_text_simple")
# The first torch.optim optimizer in a process imports torch._dynamo (about 2 s on a busy CPU).
OPTIMIZER_TIME_LIMIT_S = 30.0
GPT_STACK = ("ch04.GPTModel", "ch04.TransformerBlock", "ch04.LayerNorm", "ch04.FeedForward", "ch04.GELU",
             "ch03.MultiHeadAttention")


def _ids(batch: int, tokens: int, seed: int) -> torch.Tensor:
    return torch.randint(1, 96, (batch, tokens), generator=torch.Generator().manual_seed(seed))


def _state(ref: Any, cfg: dict[str, Any] = CFG) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = ref.run("ch05.gpt_state", cfg=cfg, seed=2)
    return state


# ---- train_model_simple -------------------------------------------------------------------------


def _train(student: Any, ref: Any, swap: tuple[str, ...] = TRAIN_DEPS, num_epochs: int = 2, eval_freq: int = 2,
           eval_iter: int = 1) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    request = dict(cfg=CFG, state_dict=_state(ref, CFG), train_x=_ids(6, 8, 1), train_y=_ids(6, 8, 2),
                   val_x=_ids(4, 8, 3), val_y=_ids(4, 8, 4), batch_size=2, num_epochs=num_epochs,
                   eval_freq=eval_freq, eval_iter=eval_iter, lr=1e-3, seed=5)
    expected = ref.run("ch05.train", **request)
    what = f"train_model_simple(num_epochs={num_epochs}, eval_freq={eval_freq}, eval_iter={eval_iter})"
    got = student.run("ch05.train", swap=swap, what=what, time_limit_s=OPTIMIZER_TIME_LIMIT_S, **request)
    return dict(got), dict(expected), request


def _slip(got: dict[str, Any], request: dict[str, Any], part: str) -> str | None:
    for diagnosis, wrong in train_mistakes(request):
        if part == "results" and values_close(got["results"], wrong["results"]):
            return diagnosis
        if part == "final" and all(values_close(got["final"].get(k), v) for k, v in wrong["final"].items()):
            return diagnosis
    return None


def _expect_results(got: dict[str, Any], expected: dict[str, Any], request: dict[str, Any]) -> None:
    names = ("train_losses", "val_losses", "track_tokens_seen")
    have, want = got["results"], expected["results"]
    if values_close(have, want):
        return
    diagnosis = _slip(got, request, "results")
    for name, h, w in zip(names, have, want):
        if len(h) != len(w):
            raise GradeFailure("ch05.train_list_length", name=name, got=len(h), expected=len(w), diagnosis=diagnosis)
    for name, h, w in zip(names, have, want):
        for i, (a, b) in enumerate(zip(h, w)):
            if not values_close(a, b):
                raise GradeFailure("ch05.train_list_value", name=name, index=i, got=a, expected=b,
                                   diagnosis=diagnosis)


@TRAIN_MODEL_SIMPLE
def test_losses_and_tokens_seen(student, ref):
    got, expected, request = _train(student, ref)
    with pictures_on_failure(loss_curve=losses_pair(got["results"], expected["results"])):
        _expect_results(got, expected, request)


@TRAIN_MODEL_SIMPLE
def test_final_weights_after_six_steps(student, ref):
    got, expected, request = _train(student, ref)
    for name, want in expected["final"].items():
        have = got["final"].get(name)
        if not values_close(have, want):
            diagnosis = _slip(got, request, "final")
            diff = float((have.to(torch.float64) - want).abs().max()) if isinstance(have, torch.Tensor) else float("nan")
            raise GradeFailure("ch05.final_weight", name=name, max_diff=diff, diagnosis=diagnosis,
                               details={"parameter": name, "max_abs_diff": diff})


@TRAIN_MODEL_SIMPLE
def test_every_step_in_train_mode(student, ref):
    got, _, _ = _train(student, ref)
    modes = got["training_steps_mode"]
    if not modes or not all(modes):
        raise GradeFailure("ch05.train_step_eval_mode", step=modes.index(False) if False in modes else 0,
                           diagnosis="ch05_train_mode_not_set")


@TRAIN_MODEL_SIMPLE
def test_evaluation_at_every_step(student, ref):
    got, expected, request = _train(student, ref, num_epochs=1, eval_freq=1, eval_iter=2)
    _expect_results(got, expected, request)


@pytest.mark.integration
@TRAIN_MODEL_SIMPLE
def test_with_your_loss_and_evaluation(student, ref):
    got, expected, request = _train(student, ref, swap=())
    _expect_results(got, expected, request)


# ---- save_checkpoint / load_checkpoint ----------------------------------------------------------

CKPT_BATCHES = [[_ids(2, 8, 31), _ids(2, 8, 32)], [_ids(2, 8, 33), _ids(2, 8, 34)]]


def _checkpoint(student: Any, ref: Any, saver: str, loader_side: str) -> tuple[dict[str, Any], dict[str, Any]]:
    request = dict(cfg=NO_DROPOUT, state_dict=_state(ref, NO_DROPOUT), batches=CKPT_BATCHES, saver=saver,
                   loader_side=loader_side)
    what = phrase(f"what.checkpoint_saved_by_{saver}_loaded_by_{loader_side}")
    expected = ref.run("ch05.checkpoint", **{**request, "saver": "reference", "return_file": saver == "reference",
                                             "loader_side": "none" if loader_side == "none" else "reference"})
    if saver == "reference":  # the reference's file, saved here: the student's worker holds no reference save
        request.update(saver="given", saved_file=expected.pop("file_bytes"))
    got = student.run("ch05.checkpoint", what=what, time_limit_s=OPTIMIZER_TIME_LIMIT_S, **request)
    return dict(got), dict(expected)


def _expect_state(have: Any, want: dict[str, torch.Tensor], what: str) -> None:
    if not isinstance(have, dict):
        raise GradeFailure("ch05.checkpoint_entry", what=what, got=type(have).__name__)
    for name, value in want.items():
        expect_tensor(have.get(name), value, f"{what}: {name}")


def _expect_optimizer(have: Any, want: dict[str, Any], what: str, diagnosis: str | None = None) -> None:
    if not isinstance(have, dict) or not isinstance(have.get("state"), dict) or \
            len(have["state"]) != len(want["state"]):
        raise GradeFailure("ch05.optimizer_state_missing", what=what, diagnosis=diagnosis)
    for index, entry in want["state"].items():
        for key, value in entry.items():
            got = have["state"].get(index, {}).get(key)
            if not values_close(got, value):
                raise GradeFailure("ch05.optimizer_state_differs", what=what, key=f"{index}.{key}",
                                   diagnosis=diagnosis)


@SAVE_CHECKPOINT
def test_file_holds_model_and_optimizer_state(student, ref):
    got, expected = _checkpoint(student, ref, "impl", "none")
    file = got["file"]
    if file.get("missing"):
        raise GradeFailure("ch05.checkpoint_missing")
    if "load_error" in file:
        raise GradeFailure("ch05.checkpoint_unreadable", error=file["load_error"])
    keys = file["keys"]
    if "model_state_dict" not in keys:
        raise GradeFailure("ch05.checkpoint_keys", got=keys)
    if "optimizer_state_dict" not in keys:
        raise GradeFailure("ch05.checkpoint_keys", got=keys, diagnosis="ch05_checkpoint_missing_optimizer")
    _expect_state(file["model"], got["saved_model"], phrase("what.entry_in_file", name="model_state_dict"))
    _expect_optimizer(file["optimizer"], got["saved_optimizer"], phrase("what.entry_in_file", name="optimizer_state_dict"))


@SAVE_CHECKPOINT
def test_restores_the_model_weights(student, ref):
    got, _ = _checkpoint(student, ref, "reference", "impl")
    _expect_state(got["restored_model"], got["saved_model"], phrase("what.model_after", what="load_checkpoint"))


@SAVE_CHECKPOINT
def test_restores_the_optimizer_state(student, ref):
    got, _ = _checkpoint(student, ref, "reference", "impl")
    _expect_optimizer(got["restored_optimizer"], got["saved_optimizer"], phrase("what.optimizer_after", what="load_checkpoint"),
                      diagnosis="ch05_checkpoint_optimizer_not_restored")


@SAVE_CHECKPOINT
def test_resumed_step_equals_continued_step(student, ref):
    got, _ = _checkpoint(student, ref, "impl", "impl")
    for name, value in got["continued"].items():
        expect_tensor(got["resumed"].get(name), value,
                      phrase("what.after_save_load_and_one", name=name))


# ---- exercise 5.4 ---------------------------------------------------------------------------------

RESUME_BATCHES = [[_ids(2, 8, 40 + i), _ids(2, 8, 50 + i)] for i in range(4)]
EX54_DEPS = ("ch05.save_checkpoint", "ch05.train_model_simple", "ch05.calc_loss_batch", *GPT_STACK)


def _resume(student: Any, ref: Any, split: int, cfg: dict[str, Any] = NO_DROPOUT,
            swap: tuple[str, ...] = EX54_DEPS) -> dict[str, Any]:
    state = _state(ref, cfg)
    request = dict(cfg=cfg, state_dict=state, batches=RESUME_BATCHES, lr=1e-3, weight_decay=0.1, seed=9)
    what = f"exercise_5_4_resume_training(..., split={split})"
    got = student.run("ch05.resume", swap=swap, what=what, split=split, time_limit_s=OPTIMIZER_TIME_LIMIT_S,
                      **request)
    expected = ref.run("ch05.train_uninterrupted", **request)
    final = got["final"]
    if not isinstance(final, dict):
        raise GradeFailure("ch05.checkpoint_entry", what=phrase("what.value_returns", what=what), got=type(final).__name__)
    for name, want in expected.items():
        have = final.get(name)
        if not values_close(have, want, 1e-4, 1e-6):
            wrong = ref.run("ch05.train_uninterrupted", restart_optimizer_at=split, **request)
            diagnosis = "ch05_resume_optimizer_not_restored" if 0 < split < len(RESUME_BATCHES) and all(
                values_close(final.get(k), v, 1e-4, 1e-6) for k, v in wrong.items()) else None
            diff = float((have - want).abs().max()) if isinstance(have, torch.Tensor) and \
                have.shape == want.shape else float("nan")
            raise GradeFailure("ch05.resume_differs", name=name, split=split, max_diff=diff, diagnosis=diagnosis)
    return dict(got)


@EX54
def test_resumed_training_equals_uninterrupted_training(student, ref):
    _resume(student, ref, 2)


@EX54
def test_checkpoint_file_written(student, ref):
    got = _resume(student, ref, 1)
    if got["file_error"] is not None:
        raise GradeFailure("ch05.resume_file", error=got["file_error"])
    expect_equal(sorted(k for k in got["file_keys"] if k in ("model_state_dict", "optimizer_state_dict")),
                 ["model_state_dict", "optimizer_state_dict"], phrase("what.entries_checkpoint_file"))


@EX54
def test_split_at_the_start_and_at_the_end(student, ref):
    _resume(student, ref, 0)
    _resume(student, ref, len(RESUME_BATCHES))


@EX54
def test_dropout_random_stream_unchanged(student, ref):
    """With dropout, resumed training draws the same masks as uninterrupted training."""
    _resume(student, ref, 2, cfg=CFG)


@pytest.mark.integration
@EX54
def test_with_your_checkpoint_and_loss(student, ref):
    _resume(student, ref, 2, swap=())
