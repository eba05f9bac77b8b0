"""Hidden checks for ch07.majority_vote (sample_answers + majority_vote, section 7.8) and problem 7.4
(LoRA fine-tuning, section 7.6). Models are tiny reference GPTs; the 355M count runs on the meta device."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import expect_same_outcome
from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch06 import expect_numbers
from grader.checking.pictures import loss_curve, pictures_on_failure
from grader.messages import phrase

MAJORITY_VOTE = component("ch07", "majority_vote", section="7.8", title="Inference-time scaling by majority vote",
                          points=2, symbols=("sample_answers", "majority_vote"),
                          depends=("ch05.generate",))
EX74 = problem("7.4", "ch07", section="7.6", title="Parameter-efficient fine-tuning with LoRA", points=2,
               symbols=("exercise_7_4_add_lora", "exercise_7_4_training_step"),
               depends=("appendix_e.replace_linear_with_lora", "ch05.calc_loss_batch"))

CFG = dict(vocab_size=96, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
GPT2_355M = dict(vocab_size=50257, context_length=1024, emb_dim=1024, n_heads=16, n_layers=24,
                 drop_rate=0.0, qkv_bias=True)


def _vote(student: Any, ref: Any, answers: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(module="ch07", name="majority_vote", args=[answers], kwargs={})
    expected = ref.run("ch06.call_or_error", **inputs)
    got = student.run("ch06.call_or_error", what="majority_vote", **inputs)
    if answers:  # an empty list must raise: test_no_answers_raise
        expect_same_outcome(student, got, expected, f"majority_vote({answers})")
    return got, expected


# ---- majority_vote -----------------------------------------------------------------------------


@MAJORITY_VOTE
def test_most_frequent_string(student, ref):
    answers = ["Paris", "Lyon", "Paris", "Nice", "Paris", "Lyon"]
    got, expected = _vote(student, ref, answers)
    expect_equal(got.get("value"), expected.get("value"), f"majority_vote({answers})")


@MAJORITY_VOTE
def test_token_id_lists(student, ref):
    answers = [[7, 8], [5, 6], [7], [5, 6], [7, 8], [5, 6]]
    got, expected = _vote(student, ref, answers)
    expect_equal(got.get("value"), expected.get("value"), f"majority_vote({answers})")


@MAJORITY_VOTE
def test_tie_goes_to_the_first_seen(student, ref):
    answers = ["b", "a", "a", "b", "c"]
    got, expected = _vote(student, ref, answers)
    expect_equal(got.get("value"), expected.get("value"), phrase("what.majority_vote_tie_answer_seen", answers=answers),
                 diagnosis="ch07_vote_tie_not_first_seen" if got.get("value") == "a" else None)


@MAJORITY_VOTE
def test_no_answers_raise(student, ref):
    got, _ = _vote(student, ref, [])
    if got.get("error") != "ValueError":
        raise GradeFailure("ch06.expected_error", what="majority_vote([])", error="ValueError",
                           got=got.get("error") or repr(got.get("value")))


def _samples(student: Any, ref: Any, swap: tuple[str, ...] = ("ch05.generate",), **kwargs: Any) -> None:
    state = ref.run("ch06.gpt_state", cfg=CFG, seed=4)
    inputs = dict(cfg=CFG, state_dict=state, idx=torch.tensor([[5, 17, 33]]), num_samples=4, max_new_tokens=6,
                  context_size=16, temperature=1.5, top_k=8, seed=3)
    inputs.update(kwargs)
    what = "sample_answers(model, prompt, num_samples=4, ...)"
    expected = ref.run("ch07.sample_answers", **inputs)
    got = student.run("ch07.sample_answers", swap=swap, what=what, **inputs)
    expect_equal(got, expected, phrase("what.new_token_ids_each_sample", what=what))


@MAJORITY_VOTE
def test_sample_answers_seeded(student, ref):
    _samples(student, ref)


@MAJORITY_VOTE
def test_sample_answers_cut_at_eos(student, ref):
    state = ref.run("ch06.gpt_state", cfg=CFG, seed=4)
    probe = ref.run("ch07.sample_answers", cfg=CFG, state_dict=state, idx=torch.tensor([[5, 17, 33]]),
                    num_samples=4, max_new_tokens=6, context_size=16, temperature=1.5, top_k=8, seed=3)
    eos = probe[0][2]  # a token the first sample produces: its answer is cut there
    _samples(student, ref, eos_id=int(eos))


@MAJORITY_VOTE
def test_sample_answers_one_dimensional_prompt(student, ref):
    _samples(student, ref, idx=torch.tensor([9, 2, 40, 41]), temperature=0.0, top_k=None, num_samples=2)


# ---- 7.4 ---------------------------------------------------------------------------------------


def _lora(student: Any, ref: Any, swap: tuple[str, ...] = ("appendix_e.replace_linear_with_lora",),
          **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = ref.run("ch06.gpt_state", cfg=CFG, seed=6)
    inputs: dict[str, Any] = dict(cfg=CFG, state_dict=state, rank=4, alpha=8,
                                  x=torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]]))
    inputs.update(kwargs)
    expected = ref.run("ch07.add_lora", **inputs)
    got = student.run("ch07.add_lora", swap=swap, what="exercise_7_4_add_lora(model, rank=4, alpha=8)", **inputs)
    return got, expected


@EX74
def test_trainable_counts_before_and_after(student, ref):
    got, expected = _lora(student, ref)
    expect_equal(got["counts"], expected["counts"], phrase("what.trainable_before_trainable_after_tiny"))


@EX74
def test_only_lora_matrices_trainable(student, ref):
    got, expected = _lora(student, ref)
    wrong = sorted(set(got["trainable"]) ^ set(expected["trainable"]))
    if wrong:
        raise GradeFailure("ch07.lora_trainable", names=", ".join(wrong[:6]),
                           diagnosis="ch07_lora_base_not_frozen" if any(not n.endswith((".A", ".B"))
                                                                        for n in got["trainable"]) else None)


@EX74
def test_output_unchanged_by_lora(student, ref):
    got, expected = _lora(student, ref)
    expect_tensor(got["after"], expected["before"], phrase("what.model_output_right_after_adding"),
                  tol=None, token_dim=1)


@EX74
def test_gpt2_medium_counts(student, ref):
    """The book: 406,286,336 trainable before and 7,898,384 LoRA parameters after (rank 16, 355M)."""
    got = student.run("ch07.add_lora", swap=("appendix_e.replace_linear_with_lora",), time_limit_s=20,
                      what="exercise_7_4_add_lora(GPT-2 355M on the meta device, rank=16)",
                      cfg=GPT2_355M, rank=16, alpha=16, meta=True)
    expect_equal(got["counts"], [406_286_336, 7_898_384], phrase("what.trainable_before_trainable_after_gpt"))


def _steps(student: Any, ref: Any, swap: tuple[str, ...], own: bool = False) -> None:
    cfg = {**CFG, "drop_rate": 0.1}
    state = ref.run("ch06.gpt_state", cfg=cfg, seed=7)
    g = torch.Generator().manual_seed(8)
    x = torch.randint(0, 96, (2, 6), generator=g)
    y = torch.randint(0, 96, (2, 6), generator=g)
    y[1, 4:] = -100
    inputs = dict(cfg=cfg, state_dict=state, inputs=x, targets=y, steps=3, own_lora=own)
    if not own:  # the reference's set-up, as the names it leaves trainable
        inputs["trainable"] = ref.run("ch07.add_lora", cfg=cfg, state_dict=state, rank=4, alpha=8)["trainable"]
    expected = ref.run("ch07.lora_steps", **inputs)
    got = student.run("ch07.lora_steps", swap=swap, what="exercise_7_4_training_step (3 steps)", **inputs)
    with pictures_on_failure(loss_curve=loss_curve(got["losses"], expected["losses"])):
        expect_numbers(got["losses"], expected["losses"], phrase("what.losses_lora_training_steps"))
    if not got["training"]:
        raise GradeFailure("ch07.step_not_training", what="exercise_7_4_training_step")
    for name, value in expected["final"].items():
        expect_tensor(got["final"].get(name), value, phrase("what.lora_weight_after_steps", name=name))


@EX74
def test_training_steps(student, ref):
    _steps(student, ref, swap=("appendix_e.replace_linear_with_lora", "ch05.calc_loss_batch"))


@EX74
@pytest.mark.integration
def test_with_your_lora_layers(student, ref):
    _steps(student, ref, swap=("ch05.calc_loss_batch",), own=True)
