"""Helpers shared by the project's tests: run one test against ``reference`` and ``solutions``."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

from grader.catalog import MODULES as CHAPTERS  # every chapter module, in book order

IMPLS = ("reference", "solutions")


PLAIN_NAME_TREES = ("solutions", "exercises")  # chapters that import each other by plain name


class _ChaptersByPlainName(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``from ch03 import X`` inside ``solutions/`` or ``exercises/`` (their chapters import each
    other by plain name, as a student's do) gives that package's ``ch03`` itself, as the grader's
    worker does for a submission. Installed only while :func:`load` imports such a module."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(fullname, self) if fullname in CHAPTERS else None

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(f"{self.package}.{spec.name}")

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was executed once, as part of the package."""


def load(impl: str, module: str) -> ModuleType:
    """``load("solutions", "ch03")`` -> the module ``solutions.ch03``. For solutions and exercises
    the plain chapter names resolve to that package's modules while it imports, and are forgotten
    afterwards: another test's ``import ch03`` (a notebook workspace's) must not find them."""
    if impl not in PLAIN_NAME_TREES:
        return importlib.import_module(f"{impl}.{module}")
    finder = _ChaptersByPlainName(impl)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(f"{impl}.{module}")
    finally:
        sys.meta_path.remove(finder)
        for name in CHAPTERS:
            found = sys.modules.get(name)
            if found is not None and getattr(found, "__name__", "").startswith(PLAIN_NAME_TREES):
                del sys.modules[name]


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
