"""Hidden checks for loading OpenAI's GPT-2 weights (section 5.5): ch05.load_weights_into_gpt
(with ``assign``; ``model_configs``, a notebook cell in the book, is an extension check) and problem 5.6.

The weights come in the book's ``params`` layout (numpy float32 arrays, linear weights stored
(in, out), query/key/value side by side in ``c_attn``), made from a tiny reference GPT with random
LayerNorm scales/shifts and biases, so a transposed, swapped or untied weight shows by name.
The real GPT-2 sizes of problem 5.6 are built on the meta device (shapes only).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.book_forms import expect_constant
from grader.checking.compare import expect_equal, expect_tensor, raise_student_error, values_close
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch05 import weight_slip
from grader.messages import phrase

EX56 = problem("5.6", "ch05", section="5.5", title="Loading larger GPT-2 models", points=1,
               symbols=("exercise_5_6_build_and_load",), depends=("ch05.load_weights_into_gpt", "ch04.GPTModel"))

CFG = dict(vocab_size=64, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=True)
SEED = 5
BOOK_MODEL_CONFIGS = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}
GPT_STACK = ("ch04.GPTModel", "ch04.TransformerBlock", "ch04.LayerNorm", "ch04.FeedForward", "ch04.GELU",
             "ch03.MultiHeadAttention")


def _ids(batch: int, tokens: int, vocab: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, tokens), generator=torch.Generator().manual_seed(seed))


def _load(student: Any, ref: Any, cfg: dict[str, Any] = CFG) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                                                    dict[str, torch.Tensor], dict[str, Any]]:
    request = dict(cfg=cfg, seed=SEED, x=_ids(2, cfg["context_length"]))
    got = student.run("ch05.load_weights", what="load_weights_into_gpt(gpt, params)", **request)
    expected_state = ref.run("ch05.expected_loaded_state", cfg=cfg, seed=SEED)
    initial = ref.run("ch05.gpt_state", cfg=cfg, seed=0)
    expected = ref.run("ch05.load_weights", **request)
    return got, expected_state, initial, expected


def _expect_loaded(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], initial: dict[str, torch.Tensor],
                   wanted: Any) -> None:
    for name in sorted(n for n in expected if wanted(n)):
        if name not in got:
            raise GradeFailure("compare.keys_missing", what=phrase("what.model_after_load_weights_into"), names=name)
        value, want = got[name], expected[name]
        if isinstance(value, torch.Tensor) and value.shape == want.shape and values_close(value, want, 1e-6, 1e-7):
            continue
        diagnosis = weight_slip(name, value, expected)
        if diagnosis is None and values_close(value, initial.get(name), 0.0, 0.0):
            raise GradeFailure("ch05.weight_not_loaded", name=name)
        if isinstance(value, torch.Tensor) and value.shape != want.shape:
            raise GradeFailure("ch05.weight_shape", name=name, got=list(value.shape), expected=list(want.shape),
                               diagnosis=diagnosis)
        diff = float((value.to(torch.float64) - want.to(torch.float64)).abs().max()) \
            if isinstance(value, torch.Tensor) else float("nan")
        raise GradeFailure("ch05.weight_differs", name=name, max_diff=diff, diagnosis=diagnosis,
                           details={"parameter": name, "max_abs_diff": diff})


pytestmark = component("ch05", "load_weights_into_gpt", section="5.5", title="Loading OpenAI GPT-2 weights", points=4,
                       symbols=("assign", "load_weights_into_gpt"), helpers=("model_configs",),
                       uses=("ch04.GPTModel",))


def test_assign_returns_a_parameter_with_the_values(student, ref):
    right = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    got = student.run("ch05.assign", what="assign(left, right)", left_shape=[3, 5], right=right)
    if "error" in got:
        raise_student_error(got, phrase("what.call_with_matching_shapes", call="assign(left, right)"))
    expect_equal(got["is_parameter"], True, f"assign(...) returns a torch.nn.Parameter (got a {got['type']})")
    expect_tensor(got["value"], right, phrase("what.values_assign_returns"), check_dtype=True)
    expect_equal(got["requires_grad"], True, "assign(...) returns a trainable parameter (requires_grad)")


def test_assign_rejects_a_shape_mismatch(student, ref):
    got = student.run("ch05.assign", what="assign(left, right)", left_shape=[3, 5], right=torch.zeros(5, 3))
    if got.get("error") != "ValueError":
        raise GradeFailure("ch05.expected_error", what="assign(left (3, 5), right (5, 3))", expected="ValueError",
                           got=got.get("error") or "no error")


def test_embeddings_and_final_norm(student, ref):
    got, expected, initial, _ = _load(student, ref)
    _expect_loaded(got["state"], expected, initial,
                   lambda n: n.startswith(("tok_emb.", "pos_emb.", "final_norm.")))


def test_attention_weights_and_biases(student, ref):
    got, expected, initial, _ = _load(student, ref)
    _expect_loaded(got["state"], expected, initial, lambda n: ".att." in n and not n.endswith(".mask"))


def test_feed_forward_and_block_norms(student, ref):
    got, expected, initial, _ = _load(student, ref)
    _expect_loaded(got["state"], expected, initial, lambda n: ".ff." in n or ".norm" in n)


def test_output_head_tied_to_token_embedding(student, ref):
    got, expected, initial, _ = _load(student, ref)
    _expect_loaded(got["state"], expected, initial, lambda n: n.startswith("out_head."))


def test_three_block_model_logits(student, ref):
    cfg = {**CFG, "n_layers": 3}
    got, _, _, expected = _load(student, ref, cfg)
    expect_tensor(got["logits"], expected["logits"], phrase("what.logits_loaded_block_model"), token_dim=1)


@pytest.mark.extension
def test_model_configs_constant(student, ref):
    """model_configs (the four GPT-2 sizes) as in the book: a notebook cell there, so not counted here."""
    assert ref.run("module.constant", module="ch05", name="model_configs")["value"] == BOOK_MODEL_CONFIGS
    expect_constant(student, ref, "ch05", "model_configs", "ch05.load_weights_into_gpt")


# ---- exercise 5.6 ---------------------------------------------------------------------------

TINY = {"emb_dim": 16, "n_layers": 2, "n_heads": 2}


@EX56
def test_every_gpt2_size_on_the_meta_device(student, ref):
    names = list(BOOK_MODEL_CONFIGS)
    swap = ("ch05.load_weights_into_gpt", *GPT_STACK)
    got = student.run("ch05.build_and_load_meta", swap=swap, what="exercise_5_6_build_and_load", names=names,
                      time_limit_s=60)
    expected = ref.run("ch05.build_and_load_meta", names=names)
    for name in names:
        for fact, want in expected[name].items():
            have = got.get(name, {}).get(fact)
            if have != want:
                raise GradeFailure("ch05.ex56_fact", name=name, fact=fact, got=have, expected=want)


def _tiny(student: Any, ref: Any, swap: tuple[str, ...]) -> None:
    request = dict(size=TINY, seed=SEED, x=_ids(2, 10, vocab=50257, seed=4))
    got = student.run("ch05.build_and_load_tiny", swap=swap, what="exercise_5_6_build_and_load", **request)
    expected = ref.run("ch05.build_and_load_tiny", **request)
    expect_equal(got["training"], False, phrase("what.model_exercise_build_and_load"))
    expect_tensor(got["logits"], expected["logits"], phrase("what.logits_model_exercise_build_and"),
                  token_dim=1)


@EX56
def test_loaded_weights_give_the_reference_logits(student, ref):
    _tiny(student, ref, ("ch05.load_weights_into_gpt", *GPT_STACK))


@pytest.mark.integration
@EX56
def test_with_your_load_weights_into_gpt(student, ref):
    _tiny(student, ref, ())
