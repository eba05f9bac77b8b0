"""Hidden checks for chapter 4's building blocks: LayerNorm (4.2), GELU and FeedForward (4.3) and the
shortcut demo network (4.4)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import Perturbed, module_forward, module_structure
from grader.checking.compare import expect_state_keys, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.gpt import (deep_network_mistakes, feed_forward_mistakes, gelu_mistakes,
                                          layernorm_mistakes)
from grader.messages import phrase

LN = component("ch04", "LayerNorm", section="4.2", title="Layer normalization", points=2)
GELU = component("ch04", "GELU", section="4.3", title="The GELU activation (tanh approximation)", points=1)
FF = component("ch04", "FeedForward", section="4.3", title="The feed-forward module", points=2, depends=("ch04.GELU",))
DNN = component("ch04", "ExampleDeepNeuralNetwork", section="4.4", title="Shortcut connections", points=2,
                depends=("ch04.GELU",))

CFG: dict[str, Any] = {"vocab_size": 50, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
                       "drop_rate": 0.0, "qkv_bias": False}
BOOK_SIZES = [3, 3, 3, 3, 3, 1]
# Book section 4.4 (seed 123, input [[1., 0., -1.]], MSE to 0): mean |grad| of each layer's weight.
BOOK_GRADS = {False: [0.000202, 0.000120, 0.000715, 0.001399, 0.005050],
              True: [0.2217, 0.2069, 0.3290, 0.2666, 1.3259]}


def _x(*shape: int, seed: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---- LayerNorm ---------------------------------------------------------------------------------


@LN
def test_layernorm_state_dict_names(student, ref):
    module_structure(student, ref, "ch04", "LayerNorm", [16])


@LN
def test_layernorm_initial_scale_ones_shift_zeros(student, ref):
    request = dict(module="ch04", name="LayerNorm", args=[16], seed=0)
    expected = ref.run("module.state_dict", **request)
    got = student.run("module.state_dict", what="LayerNorm(16)", **request)
    expect_state_keys({k: list(v.shape) for k, v in got.items()}, {k: list(v.shape) for k, v in expected.items()},
                      "LayerNorm(16)")
    for name, value in expected.items():
        expect_tensor(got[name], value, what=phrase("what.layernorm_initial", name=name))


@LN
def test_layernorm_forward_and_gradients(student, ref):
    """Random scale and shift, rows with mean about 2 and standard deviation about 3."""
    module_forward(student, Perturbed(ref), "ch04", "LayerNorm", [16], [3 * _x(2, 5, 16) + 2],
                   mistakes=layernorm_mistakes())


@LN
def test_layernorm_small_variance_rows(student, ref):
    """Rows with variance ~1e-5, where eps (inside the square root) matters as much as the variance."""
    module_forward(student, Perturbed(ref), "ch04", "LayerNorm", [16], [0.003 * _x(2, 4, 16, seed=2) - 1],
                   mistakes=layernorm_mistakes())


@LN
def test_layernorm_constant_rows_stay_finite(student, ref):
    x = _x(2, 3, 16, seed=3)
    x[0, 1] = 0.5
    x[1, 2] = 0.0
    request = dict(module="ch04", name="LayerNorm", args=[16], inputs=[x], seed=0)
    got = student.run("module.forward", what="LayerNorm", **request)
    out = got.get("output")
    if isinstance(out, torch.Tensor) and out.is_floating_point() and not bool(torch.isfinite(out).all()):
        bad = ~torch.isfinite(out)
        index = [int(i) for i in bad.nonzero()[0].tolist()]
        raise GradeFailure("compare.nonfinite", what=phrase("what.layernorm_output_for_rows_that"),
                           count=int(bad.sum()), index=index, diagnosis="ch04_layernorm_missing_eps")
    module_forward(student, ref, "ch04", "LayerNorm", [16], [x], mistakes=layernorm_mistakes())


@LN
def test_layernorm_any_leading_shape_float32(student, ref):
    module_forward(student, Perturbed(ref), "ch04", "LayerNorm", [8], [_x(4, 8, seed=4, dtype=torch.float32)],
                   dtype="float32", token_dim=None, backward=False, mistakes=layernorm_mistakes())
    module_forward(student, Perturbed(ref), "ch04", "LayerNorm", [8], [_x(2, 2, 3, 8, seed=5)], token_dim=2,
                   mistakes=layernorm_mistakes())


# ---- GELU --------------------------------------------------------------------------------------

GRID = torch.linspace(-6, 6, 241, dtype=torch.float64)


@GELU
def test_gelu_values_on_a_grid(student, ref):
    module_forward(student, ref, "ch04", "GELU", [], [GRID], token_dim=None, backward=False,
                   mistakes=gelu_mistakes())


@GELU
def test_gelu_gradient_on_a_grid(student, ref):
    module_forward(student, ref, "ch04", "GELU", [], [GRID.flip(0).reshape(1, 241)], token_dim=None,
                   mistakes=gelu_mistakes())


@GELU
def test_gelu_keeps_shape_and_float32(student, ref):
    module_forward(student, ref, "ch04", "GELU", [], [_x(2, 3, 4, dtype=torch.float32)], dtype="float32",
                   backward=False)


@GELU
def test_gelu_large_inputs_stay_finite(student, ref):
    x = torch.tensor([[-100.0, -30.0, -8.0, 0.0, 8.0, 30.0, 100.0]])
    module_forward(student, ref, "ch04", "GELU", [], [x], dtype="float32", token_dim=None)


@GELU
def test_gelu_has_no_parameters(student, ref):
    """GELU has nothing to learn: an empty state_dict (and a forward pass on a 1-D input)."""
    got, expected = module_forward(student, ref, "ch04", "GELU", [], [_x(5, seed=2)], token_dim=None)
    expect_state_keys(got["state"], expected["state"], "GELU()")


# ---- FeedForward -------------------------------------------------------------------------------


@FF
def test_feedforward_state_dict_names(student, ref):
    module_structure(student, ref, "ch04", "FeedForward", [CFG], swap=("ch04.GELU",))


@FF
def test_feedforward_forward_and_gradients(student, ref):
    module_forward(student, ref, "ch04", "FeedForward", [CFG], [_x(2, 5, 16)], swap=("ch04.GELU",),
                   mistakes=feed_forward_mistakes())


@FF
def test_feedforward_other_width_single_token(student, ref):
    cfg = {**CFG, "emb_dim": 8}
    module_forward(student, ref, "ch04", "FeedForward", [cfg], [_x(1, 1, 8, seed=2)], swap=("ch04.GELU",),
                   mistakes=feed_forward_mistakes())


@FF
def test_feedforward_float32(student, ref):
    module_forward(student, ref, "ch04", "FeedForward", [CFG], [_x(2, 3, 16, seed=3, dtype=torch.float32)],
                   dtype="float32", swap=("ch04.GELU",))


@FF
@pytest.mark.integration
def test_feedforward_with_your_gelu(student, ref):
    module_forward(student, ref, "ch04", "FeedForward", [CFG], [_x(2, 5, 16, seed=4)])


# ---- ExampleDeepNeuralNetwork ------------------------------------------------------------------


@DNN
def test_deep_network_state_dict_names(student, ref):
    module_structure(student, ref, "ch04", "ExampleDeepNeuralNetwork", [BOOK_SIZES, True], swap=("ch04.GELU",))


@DNN
def test_deep_network_with_shortcuts(student, ref):
    module_forward(student, ref, "ch04", "ExampleDeepNeuralNetwork", [BOOK_SIZES, True], [_x(4, 3)],
                   swap=("ch04.GELU",), token_dim=None, mistakes=deep_network_mistakes(True))


@DNN
def test_deep_network_without_shortcuts(student, ref):
    module_forward(student, ref, "ch04", "ExampleDeepNeuralNetwork", [BOOK_SIZES, False], [_x(4, 3)],
                   swap=("ch04.GELU",), token_dim=None, mistakes=deep_network_mistakes(False))


@DNN
def test_deep_network_shortcut_only_where_shapes_match(student, ref):
    sizes = [4, 4, 2, 2, 2, 3]
    module_forward(student, ref, "ch04", "ExampleDeepNeuralNetwork", [sizes, True], [_x(3, 4, seed=2)],
                   swap=("ch04.GELU",), token_dim=None, mistakes=deep_network_mistakes(True))


@DNN
def test_deep_network_book_gradient_magnitudes(student, ref):
    """Section 4.4: torch.manual_seed(123), layer sizes [3,3,3,3,3,1], input [[1., 0., -1.]]."""
    for use_shortcut in (False, True):
        request = dict(layer_sizes=BOOK_SIZES, use_shortcut=use_shortcut, inputs=[[1.0, 0.0, -1.0]], seed=123)
        expected = ref.run("ch04.shortcut_gradients", **request)
        got = student.run("ch04.shortcut_gradients", swap=("ch04.GELU",),
                          what="ExampleDeepNeuralNetwork (section 4.4 experiment)", **request)
        want = torch.tensor(expected["mean_abs_grads"], dtype=torch.float64)
        have = torch.tensor(got["mean_abs_grads"], dtype=torch.float64)
        if have.shape != want.shape or not torch.allclose(have, want, rtol=1e-4, atol=1e-9):
            raise GradeFailure("ch04.book_gradients", shortcut=use_shortcut,
                               got=[round(v, 6) for v in got["mean_abs_grads"]],
                               expected=BOOK_GRADS[use_shortcut])


@DNN
@pytest.mark.integration
def test_deep_network_with_your_gelu(student, ref):
    module_forward(student, ref, "ch04", "ExampleDeepNeuralNetwork", [BOOK_SIZES, True], [_x(4, 3, seed=3)],
                   token_dim=None)

