"""Hidden checks for section 5.1 and exercise 5.5: ch05.text_to_token_ids, ch05.token_ids_to_text,
ch05.calc_loss_batch, ch05.calc_loss_loader, ch05.evaluate_model and problem 5.5.

Losses are computed with tiny float64 reference GPTs (vocab 96 for the character tokenizer;
the GPT-2 vocabulary with 16-dimensional embeddings where the book's data loader is used).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_grads, expect_number, raise_student_error
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch05 import loader_mistakes, loss_error_diagnosis, loss_mistakes
from grader.messages import phrase

TEXT_TO_TOKEN_IDS = component("ch05", "text_to_token_ids", section="5.1.1", title="Text to a batch of token ids",
                              points=1)
TOKEN_IDS_TO_TEXT = component("ch05", "token_ids_to_text", section="5.1.1", title="A batch of token ids back to text",
                              points=1)
CALC_LOSS_BATCH = component("ch05", "calc_loss_batch", section="5.1.3", title="Cross-entropy loss of one batch",
                            points=2,
                            uses=("ch04.GPTModel",))
CALC_LOSS_LOADER = component("ch05", "calc_loss_loader", section="5.1.3", title="Average loss over a data loader",
                             points=2, depends=("ch05.calc_loss_batch",))
EVALUATE_MODEL = component("ch05", "evaluate_model", section="5.2", title="Train and validation loss in eval mode",
                           points=1, depends=("ch05.calc_loss_loader",))
EX55 = problem("5.5", "ch05", section="5.5", title="Training and validation loss of a given model", points=1,
               symbols=("exercise_5_5_losses",), depends=("ch05.calc_loss_loader", "ch02.create_dataloader_v1"))

CFG = dict(vocab_size=96, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
DROPOUT_CFG = {**CFG, "drop_rate": 0.5}
GPT2_VOCAB_CFG = dict(vocab_size=50257, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.5,
                      qkv_bias=False)
LOSS_DEPS = ("ch05.calc_loss_batch",)
LOADER_DEPS = ("ch05.calc_loss_loader", "ch05.calc_loss_batch")


def _ids(batch: int, tokens: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, 96, (batch, tokens), generator=torch.Generator().manual_seed(seed))


def _state(ref: Any, cfg: dict[str, Any] = CFG, seed: int = 0) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = ref.run("ch05.gpt_state", cfg=cfg, seed=seed, logit_scale=3.0)
    return state


# ---- text_to_token_ids / token_ids_to_text ----------------------------------------------------


def _encode(student: Any, ref: Any, text: str, tokenizer: str = "gpt2") -> None:
    what = f"text_to_token_ids({text!r}, {'GPT-2 tokenizer' if tokenizer == 'gpt2' else 'a character tokenizer'})"
    (expected,) = ref.run("ch05.text_to_ids", texts=[text], tokenizer=tokenizer)
    (got,) = student.run("ch05.text_to_ids", what=what, texts=[text], tokenizer=tokenizer)
    if "error" in got:
        special = "special token" in got.get("message", "") and "<|endoftext|>" in text
        raise_student_error(got, what, "ch05_endoftext_not_allowed" if special else None)
    value, want = got["value"], expected["value"]
    if isinstance(value, torch.Tensor) and value.dim() == 1 and list(value.shape) == list(want.shape[1:]):
        raise GradeFailure("compare.shape", what=what, expected=list(want.shape), got=list(value.shape),
                           diagnosis="ch05_missing_batch_dimension")
    expect_equal(value, want, what)
    expect_equal(str(value.dtype), str(want.dtype), phrase("what.dtype", what=what))


@TEXT_TO_TOKEN_IDS
def test_book_sentence(student, ref):
    _encode(student, ref, "Every effort moves you")


@TEXT_TO_TOKEN_IDS
def test_end_of_text_token_is_allowed(student, ref):
    _encode(student, ref, "Hello, world.<|endoftext|>In the sunlit terraces")


@TEXT_TO_TOKEN_IDS
def test_uses_the_given_tokenizer(student, ref):
    _encode(student, ref, "Hi there!", tokenizer="chars")


@TEXT_TO_TOKEN_IDS
def test_single_token_text(student, ref):
    _encode(student, ref, "Hello")


def _decode(student: Any, ref: Any, ids: list[list[int]], tokenizer: str = "gpt2") -> None:
    batches = [torch.tensor(ids)]
    what = f"token_ids_to_text(tensor({ids}))"
    expected = ref.run("ch05.ids_to_text", batches=batches, tokenizer=tokenizer)
    got = student.run("ch05.ids_to_text", what=what, batches=batches, tokenizer=tokenizer)
    expect_equal(got, expected, what)


@TOKEN_IDS_TO_TEXT
def test_book_ids_back_to_text(student, ref):
    _decode(student, ref, [[6109, 3626, 6100, 345]])


@TOKEN_IDS_TO_TEXT
def test_batch_with_a_single_token(student, ref):
    _decode(student, ref, [[15496]])


@TOKEN_IDS_TO_TEXT
def test_end_of_text_id(student, ref):
    _decode(student, ref, [[15496, 50256, 6894]])


@TOKEN_IDS_TO_TEXT
def test_uses_the_given_tokenizer_to_decode(student, ref):
    _decode(student, ref, [[41, 74, 1, 85, 73, 70, 83, 70]], tokenizer="chars")


# ---- calc_loss_batch ---------------------------------------------------------------------------


def _loss_batch(student: Any, ref: Any, inputs: torch.Tensor, targets: torch.Tensor, cfg: dict[str, Any] = CFG,
                train: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    what = f"calc_loss_batch(inputs {list(inputs.shape)}, targets {list(targets.shape)})"
    request = dict(cfg=cfg, state_dict=_state(ref, cfg), inputs=inputs, targets=targets, train=train)
    expected = ref.run("ch05.loss_batch", **request)
    got = student.run("ch05.loss_batch", what=what, **request)
    if "error" in got:
        raise_student_error(got, what, loss_error_diagnosis(got.get("message", "")))
    if got["type"] != "Tensor":
        raise GradeFailure("ch05.loss_not_tensor", what=what, got=got["type"])
    if train and not got["training_after"]:
        raise GradeFailure("ch05.loss_changed_mode", what="calc_loss_batch")
    loss = got["loss"]
    if loss.dim() != 0:
        raise GradeFailure("compare.shape", what=phrase("what.loss", what=what), expected=[], got=list(loss.shape))

    def wrong() -> dict[str, float]:
        logits = ref.run("ch05.logits", cfg=cfg, state_dict=request["state_dict"], inputs=inputs)
        return {k: float(v) for k, v in loss_mistakes(logits, inputs, targets).items()}

    if not math.isclose(float(loss), float(expected["loss"]), rel_tol=1e-6, abs_tol=1e-8):
        expect_number(float(loss), float(expected["loss"]), phrase("what.loss", what=what), wrong())
    if not got.get("requires_grad"):
        raise GradeFailure("ch05.loss_no_grad", what=what)
    return got, expected


@CALC_LOSS_BATCH
def test_loss_value(student, ref):
    _loss_batch(student, ref, _ids(2, 6), _ids(2, 6, seed=2))


@CALC_LOSS_BATCH
def test_gradients_of_every_parameter(student, ref):
    got, expected = _loss_batch(student, ref, _ids(3, 5, seed=3), _ids(3, 5, seed=4))
    expect_grads(got.get("grads", {}), expected["grads"], phrase("what.calc_loss_batch_backward_parameter"))


@CALC_LOSS_BATCH
def test_batch_of_one_at_full_context(student, ref):
    _loss_batch(student, ref, _ids(1, 8, seed=5), _ids(1, 8, seed=6))


@CALC_LOSS_BATCH
def test_leaves_the_model_mode_alone(student, ref):
    """In train mode with dropout the loss uses dropout (same masks), and the model stays in train mode."""
    _loss_batch(student, ref, _ids(2, 6, seed=7), _ids(2, 6, seed=8), cfg=DROPOUT_CFG, train=True)


# ---- calc_loss_loader --------------------------------------------------------------------------

LOADER_X, LOADER_Y = _ids(9, 6, seed=11), _ids(9, 6, seed=12)


def _loss_loader(student: Any, ref: Any, num_batches: int | None, swap: tuple[str, ...] = LOSS_DEPS,
                 inputs: torch.Tensor = LOADER_X, targets: torch.Tensor = LOADER_Y
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The student's answer and the reference's, after comparing the loss."""
    state = _state(ref)
    request = dict(cfg=CFG, state_dict=state, inputs=inputs, targets=targets, batch_size=2,
                   num_batches=num_batches, pass_num_batches=num_batches is not None)
    shown = "" if num_batches is None else f", num_batches={num_batches}"
    what = phrase("what.calc_loss_loader_loader_batches", batches=(len(inputs) + 1) // 2, shown=shown)
    expected = ref.run("ch05.loss_loader", **request)
    got = student.run("ch05.loss_loader", swap=swap, what=what, **request)
    if isinstance(expected["value"], float) and math.isnan(expected["value"]):
        if not (isinstance(got["value"], float) and math.isnan(got["value"])):
            raise GradeFailure("ch05.empty_loader", got=repr(got["value"]))
        return got, expected
    losses = ref.run("ch05.batch_losses", cfg=CFG, state_dict=state, inputs=inputs, targets=targets, batch_size=2)
    expect_number(got["value"], expected["value"], what, loader_mistakes(losses, num_batches))
    return got, expected


@CALC_LOSS_LOADER
def test_average_over_every_batch(student, ref):
    _loss_loader(student, ref, None)


@CALC_LOSS_LOADER
def test_first_num_batches_only(student, ref):
    got, expected = _loss_loader(student, ref, 2)
    if got["calls"] > expected["calls"]:  # the reference stops after 2
        raise GradeFailure("ch05.loader_extra_batches", calls=got["calls"], num_batches=2)


@CALC_LOSS_LOADER
def test_num_batches_larger_than_the_loader(student, ref):
    _loss_loader(student, ref, 9)


@CALC_LOSS_LOADER
def test_empty_loader_gives_nan(student, ref):
    _loss_loader(student, ref, None, inputs=LOADER_X[:0], targets=LOADER_Y[:0])


@CALC_LOSS_LOADER
def test_returns_a_python_float(student, ref):
    got, _ = _loss_loader(student, ref, 3)
    if got["type"] != "float":
        raise GradeFailure("ch05.loader_not_float", got=got["type"], diagnosis="ch05_loader_returns_tensor"
                           if got["type"] == "Tensor" else None)


@pytest.mark.integration
@CALC_LOSS_LOADER
def test_with_your_calc_loss_batch(student, ref):
    _loss_loader(student, ref, 3, swap=())


# ---- evaluate_model ----------------------------------------------------------------------------


def _evaluate(student: Any, ref: Any, swap: tuple[str, ...] = LOADER_DEPS) -> tuple[dict[str, Any], dict[str, Any]]:
    request = dict(cfg=DROPOUT_CFG, state_dict=_state(ref, DROPOUT_CFG), train_x=_ids(8, 6, seed=21),
                   train_y=_ids(8, 6, seed=22), val_x=_ids(6, 6, seed=23), val_y=_ids(6, 6, seed=24),
                   batch_size=2, eval_iter=2)
    expected = ref.run("ch05.evaluate", **request)
    got = student.run("ch05.evaluate", swap=swap, what="evaluate_model(model, ..., eval_iter=2)", **request)
    if not isinstance(got["losses"], list) or len(got["losses"]) != 2:
        raise GradeFailure("ch05.not_pair", what="evaluate_model", got=repr(got["losses"])[:200])
    return dict(got), dict(expected)


@EVALUATE_MODEL
def test_losses_computed_in_eval_mode(student, ref):
    got, expected = _evaluate(student, ref)
    in_train = any(c["training"] for c in got["calls"])
    for part, have, want in zip(("train", "validation"), got["losses"], expected["losses"]):
        if in_train and not math.isclose(float(have), want, rel_tol=1e-6):
            raise GradeFailure("ch05.number", what=f"evaluate_model's {part} loss", expected=want, got=float(have),
                               diagnosis="ch05_eval_not_in_eval_mode")
        expect_number(have, want, f"evaluate_model's {part} loss")


@EVALUATE_MODEL
def test_model_back_in_train_mode(student, ref):
    got, _ = _evaluate(student, ref)
    if not got["training_after"]:
        raise GradeFailure("ch05.mode_after_eval", diagnosis="ch05_eval_mode_not_restored")


@EVALUATE_MODEL
def test_eval_iter_batches_from_each_loader(student, ref):
    got, expected = _evaluate(student, ref)
    if len(got["calls"]) != len(expected["calls"]):
        raise GradeFailure("ch05.eval_calls", got=len(got["calls"]), expected=len(expected["calls"]),
                           diagnosis="ch05_eval_iter_ignored" if len(got["calls"]) > len(expected["calls"]) else None)


@EVALUATE_MODEL
def test_no_gradients_during_evaluation(student, ref):
    got, _ = _evaluate(student, ref)
    if any(c["grad_enabled"] for c in got["calls"]):
        raise GradeFailure("ch05.eval_with_grad")


@pytest.mark.integration
@EVALUATE_MODEL
def test_with_your_calc_loss_loader(student, ref):
    got, expected = _evaluate(student, ref, swap=())
    for part, have, want in zip(("train", "validation"), got["losses"], expected["losses"]):
        expect_number(have, want, f"evaluate_model's {part} loss")


# ---- exercise 5.5 ------------------------------------------------------------------------------

TEXT = " ".join([
    "I had always thought Jack Gisburn rather a cheap genius, though a good fellow enough,",
    "so it was no great surprise to me to hear that, in the height of his glory, he had dropped",
    "his painting, married a rich widow, and established himself in a villa on the Riviera.",
    "The height of his glory, that was what the women called it. I can hear Mrs. Gideon Thwing,",
    "his last Chicago sitter, deploring his unaccountable abdication. Of course it was going to",
    "send the value of his pictures up; but I did not think of that, Mrs. Thwing. The loss to",
    "Arrt is all I think of. The word, on Mrs. Thwing's lips, multiplied its rs as though they",
    "were reflected in an endless vista of mirrors. And it was not only the Mrs. Thwings who",
    "mourned. Had not the exquisite Hermia Croft, at the last Grafton Gallery show, stopped me",
    "before Gisburn's Moon-dancers to say, with tears in her eyes: We shall not look upon its",
    "like again? Well, I went off to the hotel, and then I called on the painter, and he",
    "showed me the study where the portrait hung, and we talked of the sketch, the light,",
    "the terrace, the sea, and the last picture he never finished, while the afternoon faded.",
])
EX55_DEPS = ("ch05.calc_loss_loader", "ch05.calc_loss_batch", "ch02.create_dataloader_v1", "ch02.GPTDatasetV1")


def _ex55(student: Any, ref: Any, swap: tuple[str, ...] = EX55_DEPS, train: bool = False,
          **kwargs: Any) -> dict[str, Any]:
    request = dict(cfg=GPT2_VOCAB_CFG, seed=4, text=TEXT, context_length=8, train=train, **kwargs)
    shown = "".join(f", {k}={v}" for k, v in kwargs.items())
    what = f"exercise_5_5_losses(model, text, 8, 'cpu'{shown})"
    expected = ref.run("ch05.losses_of_text", **request)
    got = student.run("ch05.losses_of_text", swap=swap, what=what, **request)
    if not isinstance(got["losses"], list) or len(got["losses"]) != 2:
        raise GradeFailure("ch05.not_pair", what="exercise_5_5_losses", got=repr(got["losses"])[:200])
    wrong = ref.run("ch05.losses_of_text", val_drop_last=True, **request)["losses"]
    for i, part in enumerate(("training", "validation")):
        mistakes = {"ch05_ex55_val_drop_last": wrong[1]} if i == 1 else {}
        expect_number(got["losses"][i], expected["losses"][i], phrase("what.loss_2", part=part, what=what), mistakes)
    return dict(got)


@EX55
def test_book_split_and_batch_size(student, ref):
    _ex55(student, ref)


@EX55
def test_other_ratio_and_batch_size(student, ref):
    _ex55(student, ref, train_ratio=0.8, batch_size=3)


@EX55
def test_model_in_train_mode_is_evaluated_without_dropout(student, ref):
    got = _ex55(student, ref, train=True)
    if any(c["training"] for c in got["calls"]):
        raise GradeFailure("ch05.ex55_train_mode")
    if any(c["grad_enabled"] for c in got["calls"]):
        raise GradeFailure("ch05.eval_with_grad")


@pytest.mark.integration
@EX55
def test_with_your_calc_loss_loader_and_data_loader(student, ref):
    _ex55(student, ref, swap=())
