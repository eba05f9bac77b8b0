"""Hidden checks for chapter 4's TransformerBlock (4.5), GPTModel (4.6) and generate_text_simple (4.7)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import reference.ch04 as ref_ch04
from grader.checking.book_forms import expect_constant
from grader.checking.checks import (Perturbed, expect_no_dropout_in_eval, module_forward, module_structure,
                                    reference_state)
from grader.checking.compare import expect_equal, expect_state_keys, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.gpt import block_dropout_mistakes, block_mistakes, gpt, gpt_mistakes, greedy
from grader.messages import phrase

BLOCK = component("ch04", "TransformerBlock", section="4.5", title="The transformer block", points=4,
                  depends=("ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm"))
GPT = component("ch04", "GPTModel", section="4.6", title="The GPT model", points=4,
                helpers=("GPT_CONFIG_124M",), depends=("ch04.TransformerBlock", "ch04.LayerNorm"))
GEN = component("ch04", "generate_text_simple", section="4.7", title="Greedy text generation", points=2,
                uses=("ch04.GPTModel",))

CFG: dict[str, Any] = {"vocab_size": 50, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
                       "drop_rate": 0.0, "qkv_bias": False}
BLOCK_SWAP = ("ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm")
GPT_SWAP = ("ch04.TransformerBlock", "ch04.LayerNorm")
BOOK_TOTAL_PARAMS = 163_009_536  # GPTModel(GPT_CONFIG_124M), BOOK_FACTS chapter 4
BOOK_STATE_ENTRIES = 173


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _ids(batch: int, tokens: int, vocab: int = 50, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, tokens), generator=torch.Generator().manual_seed(seed))


def _same_initial_weights(student, ref, name: str, cfg: dict[str, Any], swap: tuple[str, ...], order: str) -> None:
    request = dict(module="ch04", name=name, args=[cfg], kwargs={}, seed=123)
    expected = ref.run("module.state_dict", **request)
    got = student.run("module.state_dict", swap=swap, what=f"{name} (torch.manual_seed(123))", **request)
    expect_state_keys({k: list(v.shape) for k, v in got.items()}, {k: list(v.shape) for k, v in expected.items()},
                      name)
    for key, value in expected.items():
        if not (got[key].shape == value.shape and torch.equal(got[key].to(value.dtype), value)):
            raise GradeFailure("ch04.init_order", what=name, name=key, order=order)


# ---- TransformerBlock --------------------------------------------------------------------------


@BLOCK
def test_block_state_dict_names(student, ref):
    module_structure(student, ref, "ch04", "TransformerBlock", [CFG], swap=BLOCK_SWAP)


@BLOCK
def test_block_initial_weights_follow_book_order(student, ref):
    _same_initial_weights(student, ref, "TransformerBlock", CFG, BLOCK_SWAP, "att, ff, norm1, norm2, drop_shortcut")


@BLOCK
def test_block_forward_and_gradients(student, ref):
    """Pre-LayerNorm with both shortcuts; LayerNorm scales and shifts are random so norm1/norm2 differ."""
    module_forward(student, Perturbed(ref), "ch04", "TransformerBlock", [CFG], [_x(2, 6, 16)], swap=BLOCK_SWAP,
                   mistakes=block_mistakes(2))


@BLOCK
def test_block_full_context_and_single_token(student, ref):
    module_forward(student, Perturbed(ref), "ch04", "TransformerBlock", [CFG], [_x(1, 8, 16, seed=2)],
                   swap=BLOCK_SWAP, mistakes=block_mistakes(2))
    module_forward(student, Perturbed(ref), "ch04", "TransformerBlock", [CFG], [_x(3, 1, 16, seed=3)],
                   swap=BLOCK_SWAP)


@BLOCK
def test_block_eval_mode_disables_dropout(student, ref):
    expect_no_dropout_in_eval(student, ref, "TransformerBlock", {**CFG, "drop_rate": 0.5}, [_x(2, 5, 16, seed=4)],
                              swap=BLOCK_SWAP)


@BLOCK
def test_block_dropout_rate_one_in_training(student, ref):
    """drop_rate 1.0 in training mode: attention weights and both sub-layer outputs are dropped, so the
    block must return its input unchanged (shortcuts only)."""
    module_forward(student, Perturbed(ref), "ch04", "TransformerBlock", [{**CFG, "drop_rate": 1.0}],
                   [_x(2, 5, 16, seed=5)], swap=BLOCK_SWAP, train=True, mistakes=block_dropout_mistakes(2),
                   what="TransformerBlock (training mode, drop_rate 1.0)")


@BLOCK
@pytest.mark.integration
def test_block_with_your_attention_feedforward_and_layernorm(student, ref):
    module_forward(student, Perturbed(ref), "ch04", "TransformerBlock", [CFG], [_x(2, 6, 16, seed=6)],
                   mistakes=block_mistakes(2))


# ---- GPTModel ----------------------------------------------------------------------------------


@GPT
def test_gpt_state_dict_names(student, ref):
    module_structure(student, ref, "ch04", "GPTModel", [CFG], swap=GPT_SWAP)


@GPT
def test_gpt_book_size_parameter_count(student, ref):
    """GPTModel(GPT_CONFIG_124M) built on the meta device, with the book's config given by us."""
    got = student.run("ch04.book_model_meta", swap=GPT_SWAP, what="GPTModel(GPT_CONFIG_124M)",
                      cfg=dict(ref_ch04.GPT_CONFIG_124M), time_limit_s=30)
    expect_equal(got["total_params"], BOOK_TOTAL_PARAMS, phrase("what.parameters_gptmodel_gpt_config_m"))
    expect_equal(got["state_entries"], BOOK_STATE_ENTRIES, phrase("what.state_dict_entries_gptmodel_gpt"))


@GPT
@pytest.mark.extension
def test_gpt_config_constant(student, ref):
    """GPT_CONFIG_124M as in the book (a notebook cell there, so its own check, not counted)."""
    expect_constant(student, ref, "ch04", "GPT_CONFIG_124M", "ch04.GPTModel")


@GPT
def test_gpt_initial_weights_follow_book_order(student, ref):
    _same_initial_weights(student, ref, "GPTModel", CFG, GPT_SWAP,
                          "tok_emb, pos_emb, drop_emb, trf_blocks, final_norm, out_head")


@GPT
def test_gpt_logits_and_gradients(student, ref):
    module_forward(student, Perturbed(ref), "ch04", "GPTModel", [CFG], [_ids(2, 6)], swap=GPT_SWAP,
                   mistakes=gpt_mistakes(2))


@GPT
def test_gpt_different_lengths_and_batch_sizes(student, ref):
    for batch, tokens, seed in ((1, 8, 2), (3, 1, 3), (4, 3, 4)):
        module_forward(student, Perturbed(ref), "ch04", "GPTModel", [CFG], [_ids(batch, tokens, seed=seed)],
                       swap=GPT_SWAP, mistakes=gpt_mistakes(2), backward=False,
                       what=phrase("what.gptmodel_on_batch_x_tokens", batch=batch, tokens=tokens))


@GPT
def test_gpt_eval_mode_disables_dropout(student, ref):
    expect_no_dropout_in_eval(student, ref, "GPTModel", {**CFG, "drop_rate": 0.5}, [_ids(2, 5, seed=5)],
                              swap=GPT_SWAP)


def _gpt_dropout_mistakes(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
    sd64 = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in sd.items()}
    with torch.no_grad():
        return {"ch04_gpt_missing_embedding_dropout":
                gpt(sd64, inputs[0], 2, attn_dropped=True, shortcut_dropped=True)}


@GPT
def test_gpt_dropout_rate_one_in_training(student, ref):
    """drop_rate 1.0 in training mode: the embedding dropout zeroes the input of the blocks."""
    module_forward(student, Perturbed(ref), "ch04", "GPTModel", [{**CFG, "drop_rate": 1.0}], [_ids(2, 5, seed=6)],
                   swap=GPT_SWAP, train=True, mistakes=_gpt_dropout_mistakes,
                   what="GPTModel (training mode, drop_rate 1.0)")


@GPT
@pytest.mark.integration
def test_gpt_with_your_blocks_and_layernorm(student, ref):
    module_forward(student, Perturbed(ref), "ch04", "GPTModel", [CFG], [_ids(2, 7, seed=7)],
                   mistakes=gpt_mistakes(2))


# ---- generate_text_simple ----------------------------------------------------------------------

GEN_CFG: dict[str, Any] = {**CFG, "vocab_size": 40}


def _generate(student, ref, *, batch: int, prompt: int, new: int, context_size: int,
              seed: int = 11) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor], torch.Tensor]:
    state = reference_state(Perturbed(ref), "ch04", "GPTModel", [GEN_CFG], seed=seed)
    idx = _ids(batch, prompt, vocab=GEN_CFG["vocab_size"], seed=seed)
    request = dict(cfg=GEN_CFG, state_dict=state, idx=idx, max_new_tokens=new, context_size=context_size)
    expected = ref.run("ch04.generate", **request)
    got = student.run("ch04.generate", what="generate_text_simple", **request)
    return got, expected, state, idx


def _model(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    torch.manual_seed(0)
    model = ref_ch04.GPTModel(GEN_CFG)
    model.load_state_dict(state)
    return model.to(torch.float64).eval()


def _expect_ids(got: Any, expected: torch.Tensor, what: str, alternatives: dict[str, torch.Tensor]) -> None:
    diagnosis = None
    if isinstance(got, torch.Tensor) and not (got.shape == expected.shape and torch.equal(got, expected)):
        for name, alt in alternatives.items():
            if got.shape == alt.shape and torch.equal(got, alt):
                diagnosis = name
                break
    if isinstance(got, torch.Tensor) and got.shape != expected.shape:
        raise GradeFailure("compare.shape", what=what, expected=list(expected.shape), got=list(got.shape),
                           diagnosis=diagnosis)
    expect_equal(got, expected, what, diagnosis=diagnosis)


@GEN
def test_generate_greedy_tokens(student, ref):
    got, expected, state, idx = _generate(student, ref, batch=2, prompt=3, new=5, context_size=8)
    alternatives = {"ch04_generate_first_token_logits": greedy(_model(state), idx, 5, 8, position=0)}
    _expect_ids(got["ids"], expected["ids"], "generate_text_simple(model, idx (2 x 3), 5, 8)", alternatives)


@GEN
def test_generate_crops_to_context_size(student, ref):
    """Prompt of 5 tokens, 6 new ones, context_size 8 = the model's context: the last calls must be cropped."""
    got, expected, state, idx = _generate(student, ref, batch=2, prompt=5, new=6, context_size=8, seed=12)
    longest = max((c["tokens"] for c in got["calls"]), default=0)
    if longest > 8:
        raise GradeFailure("ch04.generate_context_exceeded", got=longest, context_size=8,
                           diagnosis="ch04_generate_no_crop")
    _expect_ids(got["ids"], expected["ids"], "generate_text_simple(model, idx (2 x 5), 6, 8)", {})


@GEN
def test_generate_smaller_context_size(student, ref):
    """context_size 4 while the model supports 8: only the last 4 tokens condition each step."""
    got, expected, state, idx = _generate(student, ref, batch=3, prompt=3, new=4, context_size=4, seed=13)
    model = _model(state)
    alternatives = {"ch04_generate_no_crop": greedy(model, idx, 4, 4, crop=False),
                    "ch04_generate_first_token_logits": greedy(model, idx, 4, 4, position=0)}
    _expect_ids(got["ids"], expected["ids"], "generate_text_simple(model, idx (3 x 3), 4, 4)", alternatives)


@GEN
def test_generate_shape_dtype_and_zero_new_tokens(student, ref):
    got, expected, _, _ = _generate(student, ref, batch=1, prompt=1, new=3, context_size=8, seed=14)
    ids = got["ids"]
    if isinstance(ids, torch.Tensor) and ids.dtype != expected["ids"].dtype:
        raise GradeFailure("compare.dtype", what="generate_text_simple result", expected=str(expected["ids"].dtype),
                           got=str(ids.dtype))
    _expect_ids(ids, expected["ids"], "generate_text_simple(model, idx (1 x 1), 3, 8)", {})
    got, expected, _, _ = _generate(student, ref, batch=2, prompt=4, new=0, context_size=8, seed=15)
    _expect_ids(got["ids"], expected["ids"], "generate_text_simple(model, idx (2 x 4), 0, 8)", {})


@GEN
def test_generate_without_gradients(student, ref):
    got, expected, _, _ = _generate(student, ref, batch=1, prompt=2, new=2, context_size=8, seed=16)
    if any(c["grad_enabled"] for c in got["calls"]):
        raise GradeFailure("ch04.generate_grad_enabled")
    expect_tensor(got["ids"], expected["ids"], "generate_text_simple(model, idx (1 x 2), 2, 8)")
