"""Helpers shared by the project's tests: run one test against ``reference`` and ``solutions``."""

from __future__ import annotations

import importlib
from types import ModuleType

IMPLS = ("reference", "solutions")


def load(impl: str, module: str) -> ModuleType:
    """``load("solutions", "ch03")`` -> the module ``solutions.ch03``."""
    return importlib.import_module(f"{impl}.{module}")


# A tiny GPT config for tests that train or run models: seconds, not minutes, on a CPU.
TINY_CFG: dict[str, object] = {
    "vocab_size": 97,
    "context_length": 16,
    "emb_dim": 32,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,
}
