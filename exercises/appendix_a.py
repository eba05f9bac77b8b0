# appendix_a.py: your exercises for "Introduction to PyTorch" in "Build a Large Language Model
# (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check
# appendix_a.NeuralNetwork`); `llmgrade list` shows every id.
#
"""Appendix A: Introduction to PyTorch.

Build a small multilayer perceptron, a custom Dataset, an accuracy function, and data-parallel
training with DistributedDataParallel (DDP) that also runs on a machine without GPUs (gloo on
CPU processes).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


class NeuralNetwork(torch.nn.Module):
    """A multilayer perceptron with two hidden layers.

    Book section: A.5.
    Task: store in `self.layers` an `nn.Sequential` of Linear(num_inputs, 30), ReLU,
    Linear(30, 20), ReLU, Linear(20, num_outputs). The forward pass returns the raw logits.
    Returns: logits of shape (batch, num_outputs) for inputs of shape (batch, num_inputs).
    Hints:
    - Do not apply softmax at the end: `F.cross_entropy` expects logits.
    """

    def __init__(self, num_inputs, num_outputs):
        """Create `self.layers`: three Linear layers with ReLU between them (30 and 20 hidden units)."""
        super().__init__()
        raise NotImplementedError("Exercise appendix_a.NeuralNetwork: Create `self.layers`: three Linear layers with ReLU between them (30 and 20 hidden units).")

    def forward(self, x):
        """Return the logits for `x`, shape (batch, num_outputs)."""
        raise NotImplementedError("Exercise appendix_a.NeuralNetwork: Return the logits for `x`, shape (batch, num_outputs).")


class ToyDataset(Dataset):
    """A Dataset of (feature row, label) pairs.

    Book section: A.6.
    Task: keep the features `X` (shape (n, num_features)) in `self.features` and the labels `y`
    (shape (n,)) in `self.labels`; item `i` is the pair `(X[i], y[i])`.
    Returns: `len(ds) == n` and `ds[i] == (X[i], y[i])`.
    Hints:
    - `__len__` must return a Python int.
    """

    def __init__(self, X, y):
        """Store `X` as `self.features` and `y` as `self.labels`."""
        raise NotImplementedError("Exercise appendix_a.ToyDataset: Store `X` as `self.features` and `y` as `self.labels`.")

    def __getitem__(self, index):
        """Return the pair (features[index], labels[index])."""
        raise NotImplementedError("Exercise appendix_a.ToyDataset: Return the pair (features[index], labels[index]).")

    def __len__(self):
        """Return the number of examples."""
        raise NotImplementedError("Exercise appendix_a.ToyDataset: Return the number of examples.")


def compute_accuracy(model, dataloader):
    """Return the fraction of examples in `dataloader` that `model` classifies correctly.

    Book section: A.7.
    Task: put the model in eval mode, run every batch without gradients, take the argmax of the
    logits as the prediction and count how many equal the label.
    Returns: a Python float between 0.0 and 1.0.
    Hints:
    - `torch.argmax(logits, dim=1)` gives one class per row.
    - Count over all examples, not an average of per-batch accuracies.
    """
    raise NotImplementedError("Exercise appendix_a.compute_accuracy: Return the fraction of examples in `dataloader` that `model` classifies correctly.")


def _ddp_device(rank, world_size):
    """The device of one DDP process: its own GPU if there is one per process, else the CPU (given)."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return torch.device("cuda", rank)
    return torch.device("cpu")


def ddp_setup(rank, world_size, master_port):
    """Join the process group as `rank` of `world_size`, with rank 0 at 127.0.0.1:`master_port`.

    Book section: A.9.
    Task: set the environment variables MASTER_ADDR ("127.0.0.1") and MASTER_PORT, then call
    `init_process_group`: backend "nccl" (after `torch.cuda.set_device(rank)`) when
    `_ddp_device(rank, world_size)` is a CUDA device, otherwise backend "gloo" on the CPU.
    Returns: None.
    Hints:
    - MASTER_PORT must be a string.
    - Pass `rank=` and `world_size=` to `torch.distributed.init_process_group`.
    """
    raise NotImplementedError("Exercise appendix_a.train_ddp: Join the process group as `rank` of `world_size`, with rank 0 at 127.0.0.1:`master_port`.")


def prepare_dataset(X_train, y_train, batch_size, world_size=None, rank=None):
    """Return a training DataLoader over ToyDataset(X_train, y_train), split across ranks when distributed.

    Book section: A.9.
    Task: without `world_size`, a plain loader in the data's order; with `world_size` and `rank`,
    give the loader a `DistributedSampler(..., num_replicas=world_size, rank=rank, shuffle=False)`
    so each rank sees its own share (rank r gets examples r, r + world_size, ...). Use
    `drop_last=True` so every rank runs the same number of steps.
    Returns: a DataLoader yielding (features (batch_size, num_features), labels (batch_size,)).
    Hints:
    - A DataLoader with a sampler must not also get `shuffle=True`.
    """
    raise NotImplementedError("Exercise appendix_a.train_ddp: Return a training DataLoader over ToyDataset(X_train, y_train), split across ranks when distributed.")


def train_ddp(rank, world_size, num_epochs, X_train, y_train, init_state_dict, lr, batch_size,
              master_port, result_path):
    """Train a NeuralNetwork with DDP in process `rank`; rank 0 saves the final state_dict to `result_path`.

    Book section: A.9.
    Task: this is the function `torch.multiprocessing.spawn` runs in every process. Call
    `ddp_setup`, build the loader with `prepare_dataset(..., world_size, rank)`, create
    `NeuralNetwork(X_train.shape[1], num_outputs)` and load `init_state_dict` into it (the number
    of outputs is the first dimension of its "layers.4.weight"), move it to
    `_ddp_device(rank, world_size)`, create `torch.optim.SGD(model.parameters(), lr=lr)`, wrap
    the model in `DistributedDataParallel` and train `num_epochs` epochs with
    `F.cross_entropy`. Rank 0 then saves the unwrapped model's state_dict, moved to the CPU,
    with `torch.save(state, result_path)`.
    Returns: None.
    Hints:
    - Call `torch.distributed.barrier()` before `destroy_process_group()`: a rank that tears the
      group down while another still uses it can crash the run.
    - `DDP(model, device_ids=[rank])` on CUDA, `DDP(model)` on the CPU.
    """
    raise NotImplementedError("Exercise appendix_a.train_ddp: Train a NeuralNetwork with DDP in process `rank`; rank 0 saves the final state_dict to `result_path`.")


def _free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (given)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ddp(world_size, num_epochs, X_train, y_train, init_state_dict, lr=0.5, batch_size=2,
            master_port=None):
    """Spawn `world_size` processes running `train_ddp` and return the final state_dict (given)."""
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
        return torch.load(result_path, weights_only=True)


# ---- Problems --------------------------------------------------------------------------------


def exercise_a_3_num_parameters(num_inputs=2, num_outputs=2):
    """Return the number of trainable parameters of NeuralNetwork(num_inputs, num_outputs).

    Book section: A.5 (exercise A.3).
    Task: build the network and add up the sizes of all parameters that require gradients.
    Returns: a Python int (for example 752 for two inputs and two outputs).
    Hints:
    - `p.numel()` is the number of entries of a tensor.
    - Building the model under `with torch.device("meta"):` needs no memory.
    """
    raise NotImplementedError("Exercise A.3: Return the number of trainable parameters of NeuralNetwork(num_inputs, num_outputs).")


def exercise_a_4_time_matmul(size=512, repeats=3, device=None):
    """Time a size x size matrix product on the CPU and on `device` (default: the best available one).

    Book section: A.9 (exercise A.4).
    Task: when `device` is None pick "cuda" if available, else "mps" if available, else "cpu".
    On each of the CPU and that device, create two random (size, size) matrices there, run one
    warm-up product, then measure the mean seconds of `repeats` products with
    `time.perf_counter()`.
    Returns: {"cpu_seconds": float, "device": str(the torch.device used), "device_seconds": float}.
    Raise ValueError when `repeats` is less than 1.
    Hints:
    - GPU calls return before the work is done: call `torch.cuda.synchronize()` (or
      `torch.mps.synchronize()`) before reading the clock.
    """
    raise NotImplementedError("Exercise A.4: Time a size x size matrix product on the CPU and on `device` (default: the best available one).")
