"""Appendix A (PyTorch basics and DDP): the reference and the model answers pass the same checks."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import pytest
from torch.utils.data import DataLoader

from reference.device import get_device
from tests.helpers import IMPLS, load

# the book's toy training data (A.6)
X_TRAIN = torch.tensor([[-1.2, 3.1], [-0.9, 2.9], [-0.5, 2.6], [2.3, -1.1], [2.7, -1.5]])
Y_TRAIN = torch.tensor([0, 0, 0, 1, 1])


@pytest.mark.parametrize("impl", IMPLS)
def test_neural_network_structure_and_shapes(impl: str) -> None:
    mod = load(impl, "appendix_a")
    torch.manual_seed(123)
    model = mod.NeuralNetwork(50, 3)
    kinds = [type(m) for m in model.layers]
    assert kinds == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert [(m.in_features, m.out_features) for m in model.layers if isinstance(m, torch.nn.Linear)] == [
        (50, 30), (30, 20), (20, 3)]
    out = model(torch.rand(4, 50))
    assert out.shape == (4, 3)
    # raw logits, not probabilities
    assert not torch.allclose(out.sum(dim=1), torch.ones(4))
    assert out.grad_fn is not None


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_a_3_parameter_counts(impl: str) -> None:
    mod = load(impl, "appendix_a")
    assert mod.exercise_a_3_num_parameters() == 752
    assert mod.exercise_a_3_num_parameters(2, 2) == 752
    assert mod.exercise_a_3_num_parameters(50, 3) == 2_213
    assert isinstance(mod.exercise_a_3_num_parameters(50, 3), int)


@pytest.mark.parametrize("impl", IMPLS)
def test_toy_dataset_and_loader(impl: str) -> None:
    mod = load(impl, "appendix_a")
    ds = mod.ToyDataset(X_TRAIN, Y_TRAIN)
    assert len(ds) == 5 and isinstance(len(ds), int)
    x, y = ds[3]
    assert torch.equal(x, X_TRAIN[3]) and int(y) == 1
    batches = list(DataLoader(ds, batch_size=2, shuffle=False))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    assert torch.equal(batches[1][1], Y_TRAIN[2:4])


class _FixedPredictor(torch.nn.Module):
    """Predicts class 1 when the first feature is positive, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([-x[:, 0], x[:, 0]], dim=1)


@pytest.mark.parametrize("impl", IMPLS)
def test_compute_accuracy(impl: str) -> None:
    mod = load(impl, "appendix_a")
    ds = mod.ToyDataset(X_TRAIN, Y_TRAIN)
    loader = DataLoader(ds, batch_size=2, shuffle=False)
    assert mod.compute_accuracy(_FixedPredictor(), loader) == pytest.approx(1.0)
    flipped = mod.ToyDataset(X_TRAIN, 1 - Y_TRAIN)
    assert mod.compute_accuracy(_FixedPredictor(), DataLoader(flipped, batch_size=2)) == 0.0
    # 3 of 5 right, counted over examples (the per-batch mean would be (1 + 1 + 0) / 3)
    mixed = mod.ToyDataset(X_TRAIN, torch.tensor([0, 0, 0, 0, 0]))
    acc = mod.compute_accuracy(_FixedPredictor(), DataLoader(mixed, batch_size=2))
    assert isinstance(acc, float) and acc == pytest.approx(3 / 5)


@pytest.mark.parametrize("impl", IMPLS)
def test_book_training_loop_reaches_full_accuracy(impl: str) -> None:
    """A.7: three epochs of SGD (lr 0.5, batch 2) classify the five training points correctly."""
    mod = load(impl, "appendix_a")
    torch.manual_seed(123)
    model = mod.NeuralNetwork(num_inputs=2, num_outputs=2)
    loader = DataLoader(mod.ToyDataset(X_TRAIN, Y_TRAIN), batch_size=2, shuffle=True, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        model.train()
        for features, labels in loader:
            loss = F.cross_entropy(model(features), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert mod.compute_accuracy(model, DataLoader(mod.ToyDataset(X_TRAIN, Y_TRAIN), batch_size=2)) == 1.0
    assert not model.training  # compute_accuracy switches to eval mode


@pytest.mark.parametrize("impl", IMPLS)
def test_prepare_dataset_single_and_distributed(impl: str) -> None:
    mod = load(impl, "appendix_a")
    X = torch.arange(16.0).reshape(8, 2)
    y = torch.arange(8)
    plain = list(mod.prepare_dataset(X, y, batch_size=4))
    assert [b[1].tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    shares = [[b[1].tolist() for b in mod.prepare_dataset(X, y, 2, world_size=2, rank=r)] for r in (0, 1)]
    # rank r gets examples r, r + 2, ... in order; no shuffling, no overlap
    assert shares == [[[0, 2], [4, 6]], [[1, 3], [5, 7]]]
    # drop_last: 5 examples, batch 2 -> 2 full batches only
    assert len(mod.prepare_dataset(X_TRAIN, Y_TRAIN, batch_size=2)) == 2


def _train_single_process(nn_cls: type, X: torch.Tensor, y: torch.Tensor, init_state: dict,
                          num_epochs: int, lr: float, batch_size: int) -> dict:
    model = nn_cls(X.shape[1], 2)
    model.load_state_dict(init_state)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    n_batches = X.shape[0] // batch_size
    for _ in range(num_epochs):
        for i in range(n_batches):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            loss = F.cross_entropy(model(X[sl]), y[sl])  # mean over the global batch
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.state_dict()


def _toy_problem() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 2, generator=g)
    y = (X[:, 0] > 0).long()
    return X, y


@pytest.mark.parametrize("impl", IMPLS)
def test_train_ddp_one_process_in_this_process(impl: str, tmp_path, monkeypatch) -> None:
    """A world of one runs ddp_setup/train_ddp here; it must equal plain training."""
    mod = load(impl, "appendix_a")
    monkeypatch.setenv("MASTER_ADDR", "")  # restored after the test (ddp_setup overwrites them)
    monkeypatch.setenv("MASTER_PORT", "")
    X, y = _toy_problem()
    torch.manual_seed(1)
    init_state = mod.NeuralNetwork(2, 2).state_dict()
    result = tmp_path / "final.pt"
    port = mod._free_port()
    mod.train_ddp(0, 1, 2, X, y, init_state, 0.5, 4, port, str(result))
    assert os.environ["MASTER_ADDR"] == "127.0.0.1" and os.environ["MASTER_PORT"] == str(port)
    assert not torch.distributed.is_initialized()  # the group was torn down
    got = torch.load(result, weights_only=True)
    want = _train_single_process(mod.NeuralNetwork, X, y, init_state, 2, 0.5, 4)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6), k
    assert any(not torch.equal(got[k], init_state[k]) for k in want)  # it did train


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_two_process_ddp_equals_single_process_training(impl: str) -> None:
    """2 gloo processes, each with half of every global batch, match one process on full batches."""
    mod = load(impl, "appendix_a")
    X, y = _toy_problem()
    torch.manual_seed(2)
    init_state = mod.NeuralNetwork(2, 2).state_dict()
    got = mod.run_ddp(2, 2, X, y, init_state, lr=0.5, batch_size=2)
    want = _train_single_process(mod.NeuralNetwork, X, y, init_state, 2, 0.5, 2 * 2)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-5), k
    assert any(not torch.equal(got[k], init_state[k]) for k in want)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_a_4_time_matmul(impl: str) -> None:
    mod = load(impl, "appendix_a")
    res = mod.exercise_a_4_time_matmul(size=64, repeats=2, device="cpu")
    assert set(res) == {"cpu_seconds", "device", "device_seconds"}
    assert res["device"] == "cpu"
    assert isinstance(res["cpu_seconds"], float) and res["cpu_seconds"] > 0
    assert isinstance(res["device_seconds"], float) and res["device_seconds"] > 0
    default = mod.exercise_a_4_time_matmul(size=32, repeats=1)
    assert default["device"] == str(get_device())
    assert default["device_seconds"] > 0


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_a_4_rejects_zero_repeats(impl: str) -> None:
    mod = load(impl, "appendix_a")
    with pytest.raises(ValueError):
        mod.exercise_a_4_time_matmul(size=8, repeats=0, device="cpu")


@pytest.mark.parametrize("impl", IMPLS)
def test_ddp_device_choice(impl: str, monkeypatch) -> None:
    """One GPU per process -> that GPU (NCCL); fewer GPUs than processes, or none -> CPU (gloo)."""
    mod = load(impl, "appendix_a")
    monkeypatch.delenv("LLMGRADE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert mod._ddp_device(1, 2) == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert mod._ddp_device(1, 2) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mod._ddp_device(0, 1) == torch.device("cpu")
