"""Appendix A: Introduction to PyTorch.

A small multilayer perceptron, a custom ``Dataset``, accuracy over a ``DataLoader``, and
data-parallel training with ``DistributedDataParallel`` (DDP).

Unlike the book's A.9 script, the DDP code here runs anywhere: it uses the ``gloo`` backend on
CPU processes and only switches to ``nccl`` when there is one CUDA GPU per process. Each run
gets its own free port on 127.0.0.1, and every rank waits at a barrier before tearing the
process group down (without it, gloo runs on CPU sometimes abort at teardown).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .device import get_device


class NeuralNetwork(torch.nn.Module):
    """A multilayer perceptron with two hidden layers (30 and 20 units, ReLU)."""

    def __init__(self, num_inputs: int, num_outputs: int) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            # 1st hidden layer
            torch.nn.Linear(num_inputs, 30),
            torch.nn.ReLU(),
            # 2nd hidden layer
            torch.nn.Linear(30, 20),
            torch.nn.ReLU(),
            # output layer: raw logits, the loss function applies softmax itself
            torch.nn.Linear(20, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, num_inputs) -> (batch, num_outputs)
        logits: torch.Tensor = self.layers(x)
        return logits


class ToyDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Pairs of (feature row, label) from two tensors with the same first dimension."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.features = X
        self.labels = y

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        one_x = self.features[index]
        one_y = self.labels[index]
        return one_x, one_y

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def compute_accuracy(model: torch.nn.Module, dataloader: DataLoader[Any]) -> float:
    """Fraction of examples in ``dataloader`` whose argmax logit equals the label."""
    model = model.eval()
    correct = 0
    total_examples = 0
    for features, labels in dataloader:
        with torch.no_grad():
            logits = model(features)
        predictions = torch.argmax(logits, dim=1)
        compare = labels == predictions
        correct += int(torch.sum(compare))
        total_examples += len(compare)
    return correct / total_examples


# ---- A.9: data-parallel training ------------------------------------------------------------


def _ddp_device(rank: int, world_size: int) -> torch.device:
    """The device of one DDP process: its own GPU when there is one per process, else the CPU."""
    device = get_device()
    if device.type == "cuda" and torch.cuda.device_count() >= world_size:
        return torch.device("cuda", rank)
    # gloo on CPU: MPS has no process-group backend, and NCCL cannot put two ranks on one GPU
    return torch.device("cpu")


def ddp_setup(rank: int, world_size: int, master_port: int) -> None:
    """Join the process group: rank 0 listens on 127.0.0.1:``master_port``.

    NCCL when each process has its own CUDA GPU, else gloo on CPU.
    """
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(master_port)
    device = _ddp_device(rank, world_size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", rank=rank, world_size=world_size)
    else:
        dist.init_process_group(backend="gloo", rank=rank, world_size=world_size)


def prepare_dataset(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    batch_size: int,
    world_size: int | None = None,
    rank: int | None = None,
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """A training loader over ``ToyDataset(X_train, y_train)``.

    With ``world_size``/``rank`` given, a ``DistributedSampler`` hands each rank a disjoint
    share (rank r gets examples r, r + world_size, ...). The sampler does not shuffle, so a
    run is reproducible and step k of all ranks together covers the same examples as step k
    of a single process with batch size ``world_size * batch_size``.
    """
    train_ds = ToyDataset(X_train, y_train)
    sampler: DistributedSampler[tuple[torch.Tensor, torch.Tensor]] | None = None
    if world_size is not None:
        sampler = DistributedSampler(
            train_ds, num_replicas=world_size, rank=0 if rank is None else rank, shuffle=False
        )
    return DataLoader(
        dataset=train_ds,
        batch_size=batch_size,
        shuffle=False,  # the sampler (or plain order) decides; shuffle must be off with a sampler
        sampler=sampler,
        drop_last=True,  # equal batch counts on every rank, or DDP's all-reduce would wait forever
    )


def train_ddp(
    rank: int,
    world_size: int,
    num_epochs: int,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    init_state_dict: dict[str, torch.Tensor],
    lr: float,
    batch_size: int,
    master_port: int,
    result_path: str,
) -> None:
    """The body of one DDP process (the target of ``torch.multiprocessing.spawn``).

    Trains ``NeuralNetwork`` from ``init_state_dict`` with SGD and cross-entropy; rank 0 saves
    the final ``state_dict`` (on CPU) to ``result_path`` with ``torch.save``.
    """
    ddp_setup(rank, world_size, master_port)
    try:
        device = _ddp_device(rank, world_size)
        train_loader = prepare_dataset(X_train, y_train, batch_size, world_size, rank)
        num_outputs = init_state_dict["layers.4.weight"].shape[0]
        model = NeuralNetwork(num_inputs=X_train.shape[1], num_outputs=num_outputs)
        model.load_state_dict(init_state_dict)
        model.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        # DDP averages the gradients over all ranks during backward()
        ddp_model = DDP(model, device_ids=[rank] if device.type == "cuda" else None)

        sampler = train_loader.sampler
        for epoch in range(num_epochs):
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)  # matters only for shuffling samplers; kept as in the book
            ddp_model.train()
            for features, labels in train_loader:
                features, labels = features.to(device), labels.to(device)
                logits = ddp_model(features)
                loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        if rank == 0:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, result_path)
        # every rank must be done with the group before any rank destroys it
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ddp(
    world_size: int,
    num_epochs: int,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    init_state_dict: dict[str, torch.Tensor],
    lr: float = 0.5,
    batch_size: int = 2,
    master_port: int | None = None,
) -> dict[str, torch.Tensor]:
    """Spawn ``world_size`` processes running ``train_ddp`` and return the final state_dict."""
    port = _free_port() if master_port is None else master_port
    with tempfile.TemporaryDirectory() as tmp:
        result_path = str(Path(tmp) / "final_state_dict.pt")
        mp.spawn(
            train_ddp,
            args=(world_size, num_epochs, X_train, y_train, init_state_dict, lr, batch_size,
                  port, result_path),
            nprocs=world_size,
            join=True,
        )
        state: dict[str, torch.Tensor] = torch.load(result_path, weights_only=True)
    return state


# ---- Problems --------------------------------------------------------------------------------


def exercise_a_3_num_parameters(num_inputs: int = 2, num_outputs: int = 2) -> int:
    """Exercise A.3: the number of trainable parameters of ``NeuralNetwork(num_inputs, num_outputs)``."""
    with torch.device("meta"):  # counting needs shapes only, no memory
        model = NeuralNetwork(num_inputs, num_outputs)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _synchronize(device: torch.device) -> None:
    """Wait for queued kernels: GPU calls return before the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _time_matmul_on(device: torch.device, size: int, repeats: int) -> float:
    """Mean seconds of one ``size x size`` matrix product on ``device``."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    a = torch.rand(size, size, device=device)
    b = torch.rand(size, size, device=device)
    a @ b  # warm-up: the first call pays for kernel selection and allocation
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _synchronize(device)
    return (time.perf_counter() - start) / repeats


def exercise_a_4_time_matmul(
    size: int = 512, repeats: int = 3, device: str | torch.device | None = None
) -> dict[str, Any]:
    """Exercise A.4: time a matrix product on the CPU and on ``device`` (default: the best one).

    Returns ``{"cpu_seconds": float, "device": str, "device_seconds": float}``, seconds per product.
    """
    chosen = get_device(device)
    return {
        "cpu_seconds": _time_matmul_on(torch.device("cpu"), size, repeats),
        "device": str(chosen),
        "device_seconds": _time_matmul_on(chosen, size, repeats),
    }
