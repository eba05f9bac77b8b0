"""Hidden checks for ch06.train_classifier_simple (6.7) and ch06.classify_review (6.8).

The loop runs a few AdamW steps on a tiny float64 classifier (frozen as in the book) with identical
initial weights, data and seed on both sides; losses, accuracies, examples_seen and the final
weights are compared.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure, NotStarted
from grader.checking.mistakes.ch06 import expect_number, expect_numbers, labels_by_position, train_variant
from grader.recipes.ch06 import char_ids
from grader.checking.pictures import losses_pair, pictures_on_failure
from grader.messages import phrase

TRAIN_CLASSIFIER_SIMPLE = component("ch06", "train_classifier_simple", section="6.7",
                                    title="The classification fine-tuning loop", points=3,
                                    symbols=("train_classifier_simple", "evaluate_model"),
                                    depends=("ch06.calc_loss_batch", "ch06.calc_accuracy_loader"),
                                    uses=("ch04.GPTModel", "ch06.prepare_classifier"))
CLASSIFY_REVIEW = component("ch06", "classify_review", section="6.8", title="Classifying new text", points=2,
                            uses=("ch04.GPTModel",))

CFG = dict(vocab_size=96, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.1, qkv_bias=False)
TOKENS = 8


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 96, (n, TOKENS), generator=g), torch.randint(0, 2, (n,), generator=g)


TRAIN_X, TRAIN_Y = _data(9, 31)
VAL_X, VAL_Y = _data(4, 32)
SETUP = dict(batch_size=3, num_epochs=2, eval_freq=2, eval_iter=2, lr=1e-2, seed=0)
SWAP = ("ch06.calc_loss_batch", "ch06.calc_accuracy_loader")


_REFERENCE_RUN: dict[str, Any] = {}  # the reference's training run, shared by the checks of this module
_STUDENT_RUNS: dict[Any, Any] = {}


def _train(student: Any, ref: Any, swap: tuple[str, ...] = SWAP) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    if not _REFERENCE_RUN:
        state = ref.run("ch06.classifier_state", cfg=CFG, seed=8)
        inputs = dict(cfg=CFG, state_dict=state, train_x=TRAIN_X, train_y=TRAIN_Y, val_x=VAL_X, val_y=VAL_Y, **SETUP)
        _REFERENCE_RUN.update(inputs=inputs, expected=ref.run("ch06.train", **inputs))
    inputs, expected = _REFERENCE_RUN["inputs"], _REFERENCE_RUN["expected"]
    # The four core checks read different parts of one deterministic run: run it once per worker.
    key = (str(student.worker.submission), id(student.worker), swap)
    if key not in _STUDENT_RUNS:
        try:
            _STUDENT_RUNS[key] = student.run("ch06.train", swap=swap, time_limit_s=20, **inputs,
                                             what="train_classifier_simple(2 epochs, 3 batches each)")
        except (GradeFailure, NotStarted) as exc:
            _STUDENT_RUNS[key] = exc
    got = _STUDENT_RUNS[key]
    if isinstance(got, Exception):
        raise got
    return got, expected, inputs


def _variant_diagnosis(got: dict[str, Any], inputs: dict[str, Any], part: int | None) -> str | None:
    """The named slip whose simulated run gives the student's numbers (part: index in the results)."""
    args = {k: v for k, v in inputs.items() if k not in ("cfg", "state_dict")}
    for diagnosis, kw in (("ch06_train_no_zero_grad", {"zero_grad": False}),
                          ("ch06_train_step_count_off_by_one", {"first_step": 0})):
        sim = train_variant(inputs["cfg"], inputs["state_dict"], **args, **kw)
        if part is None:
            same = all(torch.allclose(got["final"][k], v, rtol=1e-6, atol=1e-8)
                       for k, v in sim["final"].items() if isinstance(got["final"].get(k), torch.Tensor))
        else:
            g, s = got["results"][part], sim["results"][part]
            same = (isinstance(g, list) and len(g) == len(s)
                    and all(abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b))) for a, b in zip(g, s)))
        if same:
            return diagnosis
    return None


def _expect_list(got: dict[str, Any], expected: dict[str, Any], inputs: dict[str, Any], part: int, what: str) -> None:
    try:
        with pictures_on_failure(loss_curve=losses_pair(got["results"], expected["results"], part)):
            expect_numbers(got["results"][part], expected["results"][part], what)
    except GradeFailure as failure:
        diagnosis = _variant_diagnosis(got, inputs, part)
        if diagnosis is None:
            raise
        raise GradeFailure(failure.message_id, diagnosis=diagnosis, details=failure.details,
                           **failure.params) from None


@TRAIN_CLASSIFIER_SIMPLE
def test_losses_every_eval_freq_steps(student, ref):
    got, expected, inputs = _train(student, ref)
    _expect_list(got, expected, inputs, 0, "train_losses (recorded at steps 0, 2, 4)")
    _expect_list(got, expected, inputs, 1, "val_losses (recorded at steps 0, 2, 4)")


@TRAIN_CLASSIFIER_SIMPLE
def test_accuracies_after_each_epoch(student, ref):
    got, expected, inputs = _train(student, ref)
    _expect_list(got, expected, inputs, 2, phrase("what.one_per_epoch", name="train_accs"))
    _expect_list(got, expected, inputs, 3, phrase("what.one_per_epoch", name="val_accs"))


@TRAIN_CLASSIFIER_SIMPLE
def test_examples_seen(student, ref):
    got, expected, _ = _train(student, ref)
    value, exp = got["results"][4], expected["results"][4]
    diagnosis = "ch06_examples_seen_counts_tokens" if value == exp * TOKENS else None
    expect_equal(value, exp, phrase("what.examples_seen_epochs_examples"), diagnosis=diagnosis)


@TRAIN_CLASSIFIER_SIMPLE
def test_final_weights(student, ref):
    got, expected, inputs = _train(student, ref)
    for name, value in expected["final"].items():
        try:
            expect_tensor(got["final"].get(name), value, phrase("what.weight_after_fine_tuning", name=name))
        except GradeFailure as failure:
            diagnosis = _variant_diagnosis(got, inputs, None)
            if diagnosis is None:
                raise
            raise GradeFailure(failure.message_id, diagnosis=diagnosis, details=failure.details,
                               **failure.params) from None


@TRAIN_CLASSIFIER_SIMPLE
def test_evaluate_model_in_eval_mode(student, ref):
    state = ref.run("ch06.classifier_state", cfg={**CFG, "drop_rate": 0.5}, seed=8)
    inputs = dict(cfg={**CFG, "drop_rate": 0.5}, state_dict=state, train_x=TRAIN_X, train_y=TRAIN_Y,
                  val_x=VAL_X, val_y=VAL_Y, batch_size=3, eval_iter=2)
    what = "evaluate_model(model, train_loader, val_loader, device, eval_iter=2)"
    expected = ref.run("ch06.evaluate", **inputs)
    got = student.run("ch06.evaluate", swap=SWAP, what=what, **inputs)
    if any(got["training"]):
        raise GradeFailure("ch06.forward_in_train_mode", what="evaluate_model")
    if any(got["grad_enabled"]):
        raise GradeFailure("ch06.forward_with_grad", what="evaluate_model")
    expect_numbers(got["losses"], expected["losses"], f"{what} (train_loss, val_loss)")
    if not got["training_after"]:
        raise GradeFailure("ch06.left_in_eval_mode", what="evaluate_model")


@TRAIN_CLASSIFIER_SIMPLE
@pytest.mark.integration
def test_with_your_loss_and_accuracy(student, ref):
    got, expected, inputs = _train(student, ref, swap=())
    for part, what in enumerate(("train_losses", "val_losses", "train_accs", "val_accs")):
        expect_numbers(got["results"][part], expected["results"][part], phrase("what.with_your_loss_and_accuracy", what=what))


# ---- classify_review ---------------------------------------------------------------------------

CLS_CFG = dict(vocab_size=96, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
TEXTS = ["You are a winner you have been specially selected to receive $1000 cash or a $2000 award.",
         "Hey, just wanted to check if we're still on for dinner tonight? Let me know!",
         "Free entry now", "ok", "Call me", "URGENT! claim your prize", "lunch at 12?", "see u"]
# The book always calls classify_review with max_length (the training set's, never above the context).
BOOK_CALL = {"max_length": 16, "pad_token_id": 0}


def _classify(student: Any, ref: Any, cases: list[dict[str, Any]], *, cfg: dict[str, Any] = CLS_CFG,
              seed: int = 3, head_bias: list[float] | None = None, train: bool = False,
              what: str = "classify_review") -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    state = ref.run("ch06.classifier_state", cfg=cfg, seed=seed, head_bias=head_bias)
    inputs = dict(cfg=cfg, state_dict=state, cases=cases, train=train)
    expected = ref.run("ch06.classify", **inputs)
    got = student.run("ch06.classify", what=what, **inputs)
    return got, expected, state


def _expect_model_inputs(got: dict[str, Any], expected: dict[str, Any], cases: list[dict[str, Any]],
                         alternatives: list[list[list[int]]] | None = None) -> None:
    for i, (calls, exp_calls) in enumerate(zip(got["calls"], expected["calls"])):
        what = f"classify_review({cases[i]['text'][:24]!r}..., max_length={cases[i].get('max_length')})"
        if len(calls) != 1:
            raise GradeFailure("ch06.model_calls", what=what, count=len(calls))
        ids = calls[0]["input"]
        if alternatives is not None and isinstance(ids, torch.Tensor) and ids.dim() == 2 \
                and ids.tolist()[0] in alternatives[i]:
            continue  # the printed book's convention (pos_emb.weight.shape[1]): accepted
        expect_tensor(ids, exp_calls[0]["input"], phrase("what.token_ids_given_to_model", what=what), token_dim=1)


def _expect_inputs_and_labels(student: Any, ref: Any, cases: list[dict[str, Any]], what: str) -> None:
    got, expected, _ = _classify(student, ref, cases)
    _expect_model_inputs(got, expected, cases)
    expect_equal(got["labels"], expected["labels"], what)


@CLASSIFY_REVIEW
def test_labels_match_the_reference(student, ref):
    cases = [{"text": t, **BOOK_CALL} for t in TEXTS]
    got, expected, state = _classify(student, ref, cases)
    diagnosis = None
    if got["labels"] != expected["labels"]:
        first = labels_by_position(CLS_CFG, state, [char_ids(t)[:16] for t in TEXTS], 0)
        diagnosis = "ch06_logits_first_token" if got["labels"] == first else None
    expect_equal(got["labels"], expected["labels"], phrase("what.labels_texts_max_length"), diagnosis=diagnosis)


@CLASSIFY_REVIEW
def test_class_one_means_spam(student, ref):
    for bias, label in (([-20.0, 20.0], "spam"), ([20.0, -20.0], "not spam")):
        got, _, _ = _classify(student, ref, [{"text": "ok", **BOOK_CALL}], head_bias=bias)
        expect_equal(got["labels"], [label], phrase("what.label_when_class_wins", index=1 if label == 'spam' else 0))


@CLASSIFY_REVIEW
def test_pads_to_max_length(student, ref):
    cases = [{"text": t, "max_length": 12, "pad_token_id": 0} for t in ("ok", "Call me", "URGENT! claim your prize")]
    _expect_inputs_and_labels(student, ref, cases, phrase("what.labels_with_max_length", max_length=12))


@CLASSIFY_REVIEW
def test_truncates_to_max_length(student, ref):
    cases = [{"text": TEXTS[0], **BOOK_CALL}, {"text": TEXTS[1], "max_length": 10, "pad_token_id": 0}]
    _expect_inputs_and_labels(student, ref, cases, phrase("what.labels_of_long_texts"))


@CLASSIFY_REVIEW
@pytest.mark.extension
def test_without_max_length(student, ref):
    """Beyond the book, which always passes max_length (its ``min(max_length, ...)`` fails on None)."""
    cases = [{"text": t} for t in TEXTS]
    _expect_inputs_and_labels(student, ref, cases, phrase("what.labels_without_max_length"))


@CLASSIFY_REVIEW
@pytest.mark.extension
def test_max_length_beyond_the_context(student, ref):
    """Beyond the book, which pads to max_length even past the model's context length."""
    cases = [{"text": TEXTS[1], "max_length": 40, "pad_token_id": 0}]
    _expect_inputs_and_labels(student, ref, cases, phrase("what.labels_beyond_context"))


@CLASSIFY_REVIEW
def test_eval_mode(student, ref):
    cases = [{"text": t, **BOOK_CALL} for t in TEXTS[:4]]
    got, expected, _ = _classify(student, ref, cases, cfg={**CLS_CFG, "drop_rate": 0.5}, train=True)
    if any(call["training"] for calls in got["calls"] for call in calls):
        raise GradeFailure("ch06.forward_in_train_mode", what="classify_review")
    expect_equal(got["labels"], expected["labels"], phrase("what.labels_model_given_in_training"))


@CLASSIFY_REVIEW
def test_embedding_size_erratum_accepted(student, ref):
    """Context 16, emb_dim 8: the book's ``pos_emb.weight.shape[1]`` (8) and ``shape[0]`` (16) both pass."""
    cfg = {**CLS_CFG, "emb_dim": 8}
    cases = [{"text": "Claim your prize", "max_length": 12, "pad_token_id": 0},
             {"text": "hello", "max_length": 12, "pad_token_id": 0}]
    got, expected, _ = _classify(student, ref, cases, cfg=cfg)
    printed = [char_ids(c["text"])[:8] for c in cases]  # truncated to min(max_length, emb_dim)
    # padded to max_length as printed, or to the truncation length as the exercise asks
    _expect_model_inputs(got, expected, cases, alternatives=[[ids + [0] * (12 - len(ids)), ids + [0] * (8 - len(ids))]
                                                             for ids in printed])
