"""Helpers shared by the project's tests: run one test against ``reference`` and ``solutions``."""

from __future__ import annotations

import importlib
from types import ModuleType

IMPLS = ("reference", "solutions")


def load(impl: str, module: str) -> ModuleType:
    """``load("solutions", "ch03")`` -> the module ``solutions.ch03``."""
    return importlib.import_module(f"{impl}.{module}")
