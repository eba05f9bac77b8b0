"""Hidden checks for appendix A: NeuralNetwork (A.5), ToyDataset (A.6), compute_accuracy (A.7) and
exercises A.3 and A.4. The toy data are our own, made like the book's (two features, two classes)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import call_function, module_forward, module_structure, reference_state
from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.appendix_a import accuracy_mistakes, mlp, mlp_mistakes
from grader.messages import phrase

EXA3 = problem("A.3", "appendix_a", section="A.5", title="Counting NeuralNetwork parameters", points=1,
               symbols=("exercise_a_3_num_parameters",), depends=("appendix_a.NeuralNetwork",))
EXA4 = problem("A.4", "appendix_a", section="A.9", title="Timing matrix multiplication on CPU and the best device",
               points=1, symbols=("exercise_a_4_time_matmul",))


def _x(rows: int, cols: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- NeuralNetwork --------------------------------------------------------------------------

NN = component("appendix_a", "NeuralNetwork", section="A.5", title="A multilayer perceptron", points=2)


@NN
def test_layers_and_parameter_names(student, ref):
    """Linear(5, 30), ReLU, Linear(30, 20), ReLU, Linear(20, 3) in self.layers."""
    module_structure(student, ref, "appendix_a", "NeuralNetwork", [5, 3])


@NN
def test_book_size_parameter_names(student, ref):
    """The book's network: 50 inputs, 3 outputs."""
    module_structure(student, ref, "appendix_a", "NeuralNetwork", [50, 3])


@NN
def test_logits_and_gradients(student, ref):
    module_forward(student, ref, "appendix_a", "NeuralNetwork", [5, 3], [_x(4, 5)], token_dim=None,
                   mistakes=mlp_mistakes)


@NN
def test_batch_of_one(student, ref):
    module_forward(student, ref, "appendix_a", "NeuralNetwork", [2, 2], [_x(1, 2, seed=3)], token_dim=None,
                   mistakes=mlp_mistakes)


@NN
def test_float32_output_dtype(student, ref):
    module_forward(student, ref, "appendix_a", "NeuralNetwork", [5, 3], [_x(3, 5).float()], dtype="float32",
                   token_dim=None, backward=False)


# ---- ToyDataset -----------------------------------------------------------------------------

TD = component("appendix_a", "ToyDataset", section="A.6", title="A custom Dataset", points=1)
X_TRAIN = torch.tensor([[-1.1, 3.0], [-0.8, 2.7], [-0.4, 2.5], [2.1, -1.3], [2.9, -1.4]])
Y_TRAIN = torch.tensor([0, 0, 0, 1, 1])


def _dataset(student: Any, ref: Any, X: torch.Tensor, y: torch.Tensor, batch_size: int = 2) -> tuple[Any, Any]:
    what = f"ToyDataset(X of shape {list(X.shape)}, y of shape {list(y.shape)})"
    expected = ref.run("appendix_a.toy_dataset", X=X, y=y, batch_size=batch_size)
    got = student.run("appendix_a.toy_dataset", what=what, X=X, y=y, batch_size=batch_size)
    return got, expected


@TD
def test_length_is_the_number_of_examples(student, ref):
    got, expected = _dataset(student, ref, X_TRAIN, Y_TRAIN)
    diagnosis = "appendix_a_dataset_len_counts_features" if got["len"] == X_TRAIN.shape[1] else None
    expect_equal(got["len"], expected["len"], "len(ToyDataset(X_train, y_train))", diagnosis=diagnosis)
    if not got["len_is_int"]:
        raise GradeFailure("appendix_a.len_not_int", what="ToyDataset.__len__")


@TD
def test_items_are_feature_label_pairs(student, ref):
    got, expected = _dataset(student, ref, X_TRAIN, Y_TRAIN)
    _compare_items(got, expected, X_TRAIN, Y_TRAIN)


@TD
def test_more_features_and_classes(student, ref):
    X = _x(7, 4, seed=5).float()
    y = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    got, expected = _dataset(student, ref, X, y, batch_size=3)
    expect_equal(got["len"], expected["len"], phrase("what.len_toydataset_with_examples_features"),
                 diagnosis="appendix_a_dataset_len_counts_features" if got["len"] == 4 else None)
    _compare_items(got, expected, X, y)


@TD
def test_batches_of_a_dataloader(student, ref):
    got, expected = _dataset(student, ref, X_TRAIN, Y_TRAIN, batch_size=2)
    expect_equal(len(got["batches"]), len(expected["batches"]), phrase("what.number_batches_dataloader_ds_batch"))
    for b, (g, e) in enumerate(zip(got["batches"], expected["batches"])):
        if len(g) != 2:
            raise GradeFailure("appendix_a.item_not_pair", what=phrase("what.batch_dataloader", b=b), got=len(g))
        expect_tensor(g[0], e[0], phrase("what.features_batch", b=b), token_dim=None)
        expect_tensor(g[1], e[1], phrase("what.labels_batch", b=b), token_dim=None)


def _compare_items(got: dict[str, Any], expected: dict[str, Any], X: torch.Tensor, y: torch.Tensor) -> None:
    for i, (g, e) in enumerate(zip(got["items"], expected["items"])):
        if not isinstance(g, list) or len(g) != 2:
            raise GradeFailure("appendix_a.item_not_pair", what=f"ds[{i}]", got=type(g).__name__)
        swapped = (type(g[0]) is torch.Tensor and g[0].shape == y[i].shape and bool(torch.equal(g[0], y[i])))
        diagnosis = "appendix_a_dataset_pair_swapped" if swapped else None
        if not (type(g[0]) is torch.Tensor and g[0].shape == X[i].shape and bool(torch.equal(g[0], X[i]))):
            raise GradeFailure("compare.value", what=phrase("what.ds_features_example", i=i),
                               expected=repr(e[0].tolist()),
                               got=repr(g[0].tolist() if type(g[0]) is torch.Tensor else g[0]),
                               diagnosis=diagnosis)
        expect_tensor(g[1], e[1], phrase("what.ds_label_example", i=i), token_dim=None)


# ---- compute_accuracy -----------------------------------------------------------------------

CA = component("appendix_a", "compute_accuracy", section="A.7", title="Accuracy over a data loader", points=1,
               uses=("appendix_a.NeuralNetwork", "appendix_a.ToyDataset"))
# The book divides float32 tensors, ``(correct / total_examples).item()``: 0.6 comes back as
# 0.6000000238. Accuracies of a few examples differ by far more than float32's rounding.
ACCURACY_TOL = 1e-6


def _labels_for(state: dict[str, torch.Tensor], X: torch.Tensor, right: list[bool]) -> torch.Tensor:
    """Labels that the model gets right exactly where ``right`` is True."""
    with torch.no_grad():
        pred = mlp(state, X).argmax(dim=1)
    classes = state["layers.4.weight"].shape[0]
    return torch.where(torch.tensor(right), pred, (pred + 1) % classes)


def _accuracy(student: Any, ref: Any, X: torch.Tensor, right: list[bool], batch_size: int,
              classes: int = 2, dropout: float = 0.0) -> None:
    state = reference_state(ref, "appendix_a", "NeuralNetwork", [X.shape[1], classes], seed=4)
    y = _labels_for(state, X, right)
    what = f"compute_accuracy(model, DataLoader of {len(right)} examples, batch_size={batch_size})"
    inputs = dict(state_dict=state, X=X, y=y, batch_size=batch_size, dropout=dropout)
    expected = ref.run("appendix_a.accuracy", **inputs)
    got = student.run("appendix_a.accuracy", what=what, **inputs)
    value = got["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GradeFailure("appendix_a.accuracy_not_number", what=what, got=got["type"])
    want = float(expected["value"])
    if abs(float(value) - want) <= ACCURACY_TOL:
        if got["type"] != "float":
            raise GradeFailure("appendix_a.accuracy_not_float", what=what, got=got["type"])
        return
    with torch.no_grad():
        pred = mlp(state, X).argmax(dim=1)
    wrong = accuracy_mistakes(pred, y, batch_size)
    diagnosis = next((d for d, v in wrong.items() if abs(float(value) - v) <= ACCURACY_TOL), None)
    if diagnosis is None and dropout > 0:
        diagnosis = "appendix_a_accuracy_train_mode"
    raise GradeFailure("compare.value", what=what, expected=repr(want), got=repr(value), diagnosis=diagnosis)


@CA
def test_all_correct_and_all_wrong(student, ref):
    X = _x(4, 2, seed=6).float()
    _accuracy(student, ref, X, [True] * 4, batch_size=2)
    _accuracy(student, ref, X, [False] * 4, batch_size=2)


@CA
def test_counts_examples_not_batches(student, ref):
    """5 examples in batches of 2: the last batch is smaller, so a mean of batch accuracies differs."""
    _accuracy(student, ref, _x(5, 2, seed=7).float(), [True, True, True, False, False], batch_size=2)


@CA
def test_three_classes(student, ref):
    _accuracy(student, ref, _x(9, 3, seed=8).float(), [True, False, True, True, False, True, False, True, True],
              batch_size=4, classes=3)


@CA
def test_model_in_eval_mode(student, ref):
    """A model with dropout 0.9 before its output layer, handed over in training mode."""
    _accuracy(student, ref, _x(12, 2, seed=9).float(), [True] * 9 + [False] * 3, batch_size=4, dropout=0.9)


# ---- A.3 ------------------------------------------------------------------------------------


def _num_parameters(student: Any, ref: Any, args: list[int],
                    swap: tuple[str, ...] = ("appendix_a.NeuralNetwork",),
                    book: int | None = None) -> None:
    what = "exercise_a_3_num_parameters(" + ", ".join(map(str, args)) + ")"
    got, expected = call_function(student, ref, "appendix_a", "exercise_a_3_num_parameters", args,
                                  swap=swap, what=what)
    if book is not None and expected != book:  # pragma: no cover - the reference itself is wrong
        raise AssertionError(f"reference gives {expected}, the book {book}")
    n_in, n_out = args if len(args) == 2 else (2, 2)
    weights_only = n_in * 30 + 30 * 20 + 20 * n_out
    diagnosis = "appendix_a_params_weights_only" if got == weights_only else None
    if isinstance(got, bool) or not isinstance(got, int):
        raise GradeFailure("appendix_a.count_not_int", what=what, got=type(got).__name__)
    expect_equal(got, expected, what, diagnosis=diagnosis)


@EXA3
def test_book_network_has_752_parameters(student, ref):
    _num_parameters(student, ref, [], book=752)


@EXA3
def test_other_sizes(student, ref):
    _num_parameters(student, ref, [50, 3], book=2213)
    _num_parameters(student, ref, [7, 4])


@EXA3
@pytest.mark.integration
def test_with_your_neural_network(student, ref):
    _num_parameters(student, ref, [50, 3], swap=(), book=2213)


# ---- A.4 ------------------------------------------------------------------------------------


def _timings(student: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    what = "exercise_a_4_time_matmul(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
    got = student.run("appendix_a.time_matmul", what=what, time_limit_s=30, kwargs=kwargs)
    if "error" in got:
        raise GradeFailure("appendix_a.timing_raised", what=what, message=got.get("message", ""))
    result = got["result"]
    if not isinstance(result, dict):
        raise GradeFailure("appendix_a.timing_not_dict", what=what, got=got["type"])
    expect_equal(sorted(result), ["cpu_seconds", "device", "device_seconds"], phrase("what.keys", what=what))
    for key in ("cpu_seconds", "device_seconds"):
        value = result[key]
        if isinstance(value, bool) or not isinstance(value, float) or not value > 0 or value != value \
                or value == float("inf"):
            raise GradeFailure("appendix_a.timing_not_positive", what=what, key=key, got=repr(value))
    if not got["device_ok"]:
        raise GradeFailure("appendix_a.timing_bad_device", what=what, got=repr(result["device"]))
    return got


@EXA4
def test_cpu_timings(student):
    got = _timings(student, {"size": 48, "repeats": 2, "device": "cpu"})
    expect_equal(got["device_type"], "cpu", phrase("what.device_exercise_time_matmul_device"))


@EXA4
def test_default_device_is_the_best_available(student):
    got = _timings(student, {"size": 32, "repeats": 1})
    expect_equal(got["device_type"], got["best_type"], phrase("what.device_chosen_by_default"))


@EXA4
def test_zero_repeats_raise_value_error(student):
    what = "exercise_a_4_time_matmul(size=8, repeats=0, device='cpu')"
    got = student.run("appendix_a.time_matmul", what=what, kwargs={"size": 8, "repeats": 0, "device": "cpu"})
    if "error" not in got:
        raise GradeFailure("appendix_a.timing_no_value_error", what=what)

