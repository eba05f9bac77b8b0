"""Hidden checks for chapter 4's exercises: 4.1 (parameter counts of one block), 4.2 (GPT-2 sizes on the
meta device) and 4.3 (separate dropout rates)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import Perturbed, call_function, expect_no_dropout_in_eval, module_forward
from grader.checking.compare import expect_equal, expect_state_keys
from grader.checking.declare import problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.gpt import separate_dropout_mistakes
from reference.ch04 import GPT_CONFIG_124M, exercise_4_2_model_configs
from grader.messages import phrase

EX41 = problem("4.1", "ch04", section="4.6", title="Parameters in the feed forward versus attention modules", points=1,
               symbols=("exercise_4_1_parameter_counts",), depends=("ch04.TransformerBlock",))
EX42 = problem("4.2", "ch04", section="4.6", title="Initializing larger GPT models", points=2,
               symbols=("exercise_4_2_model_configs", "exercise_4_2_model_size"), depends=("ch04.GPTModel",))
EX43 = problem("4.3", "ch04", section="4.6", title="Using separate dropout parameters", points=2,
               symbols=("exercise_4_3_config", "TransformerBlockSeparateDropout", "GPTModelSeparateDropout"),
               depends=("ch04.GPTModel",))

TINY: dict[str, Any] = {"vocab_size": 50, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
                        "drop_rate": 0.0, "qkv_bias": False}
BOOK_41 = {"feed_forward": 4_722_432, "attention": 2_360_064}  # BOOK_FACTS, exercise 4.1
BOOK_42 = {  # BOOK_FACTS, exercise 4.2: total, without out_head, float32 MB
    "gpt2-small": (163_009_536, 124_412_160, 621.83),
    "gpt2-medium": (406_212_608, 354_749_440, 1549.58),
    "gpt2-large": (838_220_800, 773_891_840, 3197.56),
    "gpt2-xl": (1_637_792_000, 1_557_380_800, 6247.68),
}
SWAP_41 = ("ch04.TransformerBlock",)
SWAP_42 = ("ch04.GPTModel",)
SWAP_43 = ("ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm")


# ---- Exercise 4.1 ------------------------------------------------------------------------------


@EX41
def test_ex41_book_config_counts(student, ref):
    got, expected = call_function(student, ref, "ch04", "exercise_4_1_parameter_counts", [GPT_CONFIG_124M],
                                  swap=SWAP_41, what="exercise_4_1_parameter_counts(GPT_CONFIG_124M)",
                                  time_limit_s=30)
    assert expected == BOOK_41, expected  # the reference reproduces the book
    expect_equal(got, expected, "exercise_4_1_parameter_counts(GPT_CONFIG_124M)")


@EX41
def test_ex41_counts_follow_the_config(student, ref):
    got, expected = call_function(student, ref, "ch04", "exercise_4_1_parameter_counts", [TINY], swap=SWAP_41,
                                  what="exercise_4_1_parameter_counts(emb_dim=16 config)")
    expect_equal(got, expected, phrase("what.exercise_parameter_counts_with_emb"))


@EX41
def test_ex41_qkv_bias_counts(student, ref):
    cfg = {**GPT_CONFIG_124M, "qkv_bias": True}
    got, expected = call_function(student, ref, "ch04", "exercise_4_1_parameter_counts", [cfg], swap=SWAP_41,
                                  what="exercise_4_1_parameter_counts(qkv_bias=True)", time_limit_s=30)
    expect_equal(got, expected, phrase("what.exercise_parameter_counts_with_qkv"))


@EX41
@pytest.mark.integration
def test_ex41_with_your_transformer_block(student, ref):
    for cfg in (TINY, GPT_CONFIG_124M):
        got, expected = call_function(student, ref, "ch04", "exercise_4_1_parameter_counts", [cfg],
                                      what="exercise_4_1_parameter_counts", time_limit_s=30)
        expect_equal(got, expected, f"exercise_4_1_parameter_counts (emb_dim {cfg['emb_dim']})")


# ---- Exercise 4.2 ------------------------------------------------------------------------------


@EX42
def test_ex42_model_configs(student, ref):
    got, expected = call_function(student, ref, "ch04", "exercise_4_2_model_configs",
                                  what="exercise_4_2_model_configs()")
    if not isinstance(got, dict):
        expect_equal(got, expected, "exercise_4_2_model_configs()")
    expect_equal(sorted(got), sorted(expected), phrase("what.model_names_returned_by_exercise"))
    for name, cfg in expected.items():
        if not isinstance(got[name], dict):
            expect_equal(got[name], cfg, f"exercise_4_2_model_configs()['{name}']")
        expect_equal(sorted(got[name]), sorted(cfg), phrase("what.keys_exercise_model_configs", name=name))
        for key, value in cfg.items():
            expect_equal(got[name][key], value, f"exercise_4_2_model_configs()['{name}']['{key}']")


def _sizes(student, ref, configs: dict[str, dict[str, Any]], swap: tuple[str, ...] = SWAP_42) -> None:
    expected = ref.run("ch04.model_size", configs=configs)
    got = student.run("ch04.model_size", swap=swap, what="exercise_4_2_model_size", time_limit_s=30,
                      configs=configs)
    if got["devices"] and got["devices"] != ["meta"]:
        raise GradeFailure("ch04.model_size_allocates", devices=", ".join(got["devices"]),
                           diagnosis="ch04_model_size_not_on_meta")
    for name, want in expected["results"].items():
        have = got["results"][name]
        what = f"exercise_4_2_model_size({name} config)"
        if not isinstance(have, dict):
            expect_equal(have, want, what)
        expect_equal(sorted(have), sorted(want), phrase("what.keys_returned_by", what=what))
        for key in ("total_params", "params_without_out_head"):
            expect_equal(have[key], want[key], f"{what}['{key}']")
        size = have["size_mb"]
        if not isinstance(size, (int, float)) or abs(size - want["size_mb"]) > 0.01:
            decimal = want["total_params"] * 4 / 1e6
            diagnosis = "ch04_size_mb_decimal" if isinstance(size, (int, float)) and abs(size - decimal) < 0.01 \
                else None
            raise GradeFailure("compare.value", what=f"{what}['size_mb']", expected=f"{want['size_mb']:.2f}",
                               got=repr(size), diagnosis=diagnosis)


@EX42
def test_ex42_counts_on_the_meta_device(student, ref):
    """GPT-2 small counted without allocating its 163 million parameters."""
    _sizes(student, ref, {"gpt2-small": exercise_4_2_model_configs()["gpt2-small"]})


@EX42
def test_ex42_sizes_of_the_four_models(student, ref):
    configs = dict(reversed(list(exercise_4_2_model_configs().items())))  # XL first: fails fast off the meta device
    expected = ref.run("ch04.model_size", configs=configs)
    for name, (total, without, mb) in BOOK_42.items():  # the reference reproduces the book
        result = expected["results"][name]
        assert (result["total_params"], result["params_without_out_head"]) == (total, without), name
        assert abs(result["size_mb"] - mb) < 0.01, name
    _sizes(student, ref, configs)


@EX42
def test_ex42_qkv_bias_count(student, ref):
    cfg = {**GPT_CONFIG_124M, "qkv_bias": True}
    _sizes(student, ref, {"gpt2-small with qkv_bias=True": cfg})


@EX42
@pytest.mark.integration
def test_ex42_with_your_gpt_model(student, ref):
    configs = exercise_4_2_model_configs()
    _sizes(student, ref, {"gpt2-small": configs["gpt2-small"], "gpt2-medium": configs["gpt2-medium"]}, swap=())


# ---- Exercise 4.3 ------------------------------------------------------------------------------

TINY3: dict[str, Any] = {**{k: v for k, v in TINY.items() if k != "drop_rate"},
                         "drop_rate_emb": 0.0, "drop_rate_attn": 0.0, "drop_rate_shortcut": 0.0}


def _ids(batch: int, tokens: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, TINY["vocab_size"], (batch, tokens), generator=torch.Generator().manual_seed(seed))


@EX43
def test_ex43_config(student, ref):
    got, expected = call_function(student, ref, "ch04", "exercise_4_3_config", what="exercise_4_3_config()")
    expect_equal(got, expected, "exercise_4_3_config()")


@EX43
def test_ex43_state_dict_interchangeable_with_gpt_model(student, ref):
    for name, base, cfg_base in (("TransformerBlockSeparateDropout", "TransformerBlock", TINY),
                                 ("GPTModelSeparateDropout", "GPTModel", TINY)):
        expected = ref.run("module.info", module="ch04", name=base, args=[cfg_base], kwargs={})
        got = student.run("module.info", swap=SWAP_43, what=name, module="ch04", name=name, args=[TINY3],
                          kwargs={})
        expect_state_keys(got["state"], expected["state"], phrase("what.compared_with", name=name, base=base))


@EX43
def test_ex43_eval_mode_equals_gpt_model(student, ref):
    rates = {"drop_rate_emb": 0.5, "drop_rate_attn": 0.5, "drop_rate_shortcut": 0.5}
    expect_no_dropout_in_eval(student, ref, "GPTModelSeparateDropout", {**TINY3, **rates}, [_ids(2, 6)],
                              swap=SWAP_43)


def _one_rate(student, ref, place: str, seed: int) -> None:
    cfg = {**TINY3, f"drop_rate_{place}": 1.0}
    module_forward(student, Perturbed(ref), "ch04", "GPTModelSeparateDropout", [cfg], [_ids(2, 5, seed=seed)],
                   swap=SWAP_43, train=True, mistakes=separate_dropout_mistakes(2, place),
                   what=f"GPTModelSeparateDropout (training mode, only drop_rate_{place} = 1.0)")


@EX43
def test_ex43_attention_rate_drops_attention_weights(student, ref):
    _one_rate(student, ref, "attn", seed=2)


@EX43
def test_ex43_shortcut_rate_drops_sublayer_outputs(student, ref):
    _one_rate(student, ref, "shortcut", seed=3)


@EX43
def test_ex43_embedding_rate_drops_embeddings(student, ref):
    _one_rate(student, ref, "emb", seed=4)


@EX43
@pytest.mark.integration
def test_ex43_with_your_components(student, ref):
    cfg = {**TINY3, "drop_rate_attn": 1.0}
    module_forward(student, Perturbed(ref), "ch04", "GPTModelSeparateDropout", [cfg], [_ids(2, 6, seed=5)],
                   train=True, mistakes=separate_dropout_mistakes(2, "attn"),
                   what="GPTModelSeparateDropout (training mode, drop_rate_attn = 1.0)")
