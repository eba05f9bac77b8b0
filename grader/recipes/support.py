"""Helpers that several chapters' recipes share (no recipes here)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch

from grader.recipes import Impl

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class CharTokenizer:
    """One id per printable ASCII character (1..95); 0 is free for padding. Fits a vocab of 96."""

    def encode(self, text: str, allowed_special: Any = None, **_: Any) -> list[int]:
        return [ord(c) - 31 if 32 <= ord(c) <= 126 else 1 for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(int(i) + 31) for i in ids)


def get_tokenizer(kind: str) -> Any:
    """``"chars"``: :class:`CharTokenizer`; anything else: tiktoken's GPT-2 encoding (offline)."""
    if kind == "chars":
        return CharTokenizer()
    import reference.ch02

    return reference.ch02.get_gpt2_tokenizer()


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
