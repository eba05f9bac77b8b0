"""The setup objects that several chapters' recipes share, each written once (no recipes here).

Tokenizers, data loaders, reference models and recorders that watch how the student's code calls
a model. The trusted side imports them too (``grader/checking/mistakes/`` rebuilds the same
set-ups to compute what a known mistake would give); this module imports nothing trusted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.recipes import Impl

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16,
          "float16": torch.float16}


class CharTokenizer:
    """One id per printable ASCII character (1..95, anything else 1), taken modulo ``vocab_size``.

    With the default 96 every id is distinct and 0 is free for padding; a smaller ``vocab_size``
    folds the ids into a tiny model's vocabulary.
    """

    def __init__(self, vocab_size: int = 96) -> None:
        self.vocab_size = vocab_size

    def encode(self, text: str, allowed_special: Any = None, **_: Any) -> list[int]:
        return [(ord(c) - 31 if 32 <= ord(c) <= 126 else 1) % self.vocab_size for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(int(i) + 31) for i in ids)


def get_tokenizer(kind: str) -> Any:
    """``"chars"``: :class:`CharTokenizer`; anything else: tiktoken's GPT-2 encoding (offline)."""
    if kind == "chars":
        return CharTokenizer()
    import reference.gpt2_tokenizer

    return reference.gpt2_tokenizer.get_gpt2_tokenizer()


@contextmanager
def scratch_dir(impl: Impl) -> Iterator[str]:
    """A temporary folder: inside the worker's working folder for the student, the system's here."""
    where = os.getcwd() if impl.side == "student" else None
    with tempfile.TemporaryDirectory(dir=where) as folder:
        yield folder


def configure_determinism(torch_module: ModuleType = torch) -> None:
    """TF32 off on CUDA (it silently lowers float32 matmul precision), as on both sides."""
    backends = torch_module.backends
    if hasattr(backends, "cuda"):
        backends.cuda.matmul.allow_tf32 = False
    if hasattr(backends, "cudnn"):
        backends.cudnn.allow_tf32 = False


# ---- reference models and data -----------------------------------------------------------------


def seeded_gpt(cfg: dict[str, Any], seed: int = 0) -> nn.Module:
    """The book's way: ``torch.manual_seed(seed)``, then a reference GPTModel (float32, train mode).

    The global RNG is left where the initialisation leaves it, so what the caller creates next
    (a classification head, say) is reproducible too.
    """
    import reference.ch04

    torch.manual_seed(seed)
    model: nn.Module = reference.ch04.GPTModel(dict(cfg))
    return model


def gpt(cfg: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None, dtype: str = "float64",
        train: bool = False, seed: int = 0) -> nn.Module:
    """A reference GPTModel (weights from ``seed`` or ``state_dict``); the global RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        model = seeded_gpt(cfg, seed)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model.to(DTYPES[dtype])
    model.train(train)
    return model


def loader(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> DataLoader[Any]:
    """An unshuffled loader of (input, target) pairs, for a model's own training and evaluation."""
    return DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=False)


# ---- recorders: how the student's code calls the model -------------------------------------------


class CallRecorder:
    """Records, for every forward call, the model's mode, the grad mode and the number of tokens
    (and, with ``keep_inputs``, a copy of the input)."""

    def __init__(self, model: nn.Module, keep_inputs: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.keep_inputs = keep_inputs
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        call: dict[str, Any] = {"training": module.training, "grad_enabled": torch.is_grad_enabled(),
                "tokens": int(x.shape[-1]) if isinstance(x, torch.Tensor) else -1}
        if self.keep_inputs:
            call["input"] = x.detach().clone() if isinstance(x, torch.Tensor) else None
        self.calls.append(call)


class CropRecorder(nn.Module):
    """Wraps the reference model; records each call's length and grad mode and crops what is too
    long for it, so a missing crop is reported by the check instead of crashing inside the model."""

    def __init__(self, model: nn.Module, context_length: int) -> None:
        super().__init__()
        self.model = model
        self.context_length = context_length
        self.calls: list[dict[str, Any]] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls.append({"tokens": int(idx.shape[-1]), "grad_enabled": torch.is_grad_enabled()})
        out: torch.Tensor = self.model(idx[:, -self.context_length:])
        return out

    @property
    def lengths(self) -> list[int]:
        return [call["tokens"] for call in self.calls]
