"""Recipes: small grader functions that exercise one implementation and return plain data.

The same recipe runs twice: in the worker against the student's modules and in the trusted
process against ``reference/``. A recipe receives an :class:`Impl` (``impl.module("ch03")`` gives
the chapter module of whichever side it runs on, ``impl.device`` the grading device, resolved once
in the trusted process and handed to both sides) and keyword inputs that are plain data.

Register a recipe with ``@recipe("name")`` in any module of this package (``generic.py`` for
recipes every chapter uses, ``chNN.py`` for one chapter's); all of them are imported on first use,
in both processes.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

RecipeFn = Callable[..., Any]
_REGISTRY: dict[str, RecipeFn] = {}
_UNCACHED: set[str] = set()


def recipe(name: str, *, cached: bool = True) -> Callable[[RecipeFn], RecipeFn]:
    """Register a recipe. ``cached=False``: its reference result is not a function of its inputs
    alone (a timing) and is never kept between runs (grader/checking/reference_cache.py)."""
    def register(fn: RecipeFn) -> RecipeFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"recipe {name!r} registered twice")
        _REGISTRY[name] = fn
        if not cached:
            _UNCACHED.add(name)
        return fn
    return register


def cached(name: str) -> bool:
    """May the reference's result of ``name`` be kept between runs?"""
    load_all()
    return name not in _UNCACHED


_loaded = False


def load_all() -> None:
    """Import every recipe module (once): what the first :func:`get` does."""
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True


def get(name: str) -> RecipeFn:
    load_all()
    return _REGISTRY[name]


class ModuleSource(Protocol):
    def module(self, name: str) -> types.ModuleType: ...

    def loaded(self, name: str) -> types.ModuleType | None: ...


class Impl:
    """The side a recipe runs on: ``"student"`` (in the worker) or ``"reference"``, and the device."""

    def __init__(self, side: str, source: ModuleSource, device: str) -> None:
        self.side = side
        self.device = device
        self._source = source

    def module(self, name: str) -> types.ModuleType:
        return self._source.module(name)

    def attr(self, module: str, name: str) -> Any:
        """``impl.attr("ch03", "MultiHeadAttention")``; a missing name raises AttributeError."""
        return getattr(self.module(module), name)


class ReferenceSource:
    def module(self, name: str) -> types.ModuleType:
        return importlib.import_module(f"reference.{name}")

    def loaded(self, name: str) -> types.ModuleType | None:
        return self.module(name)


@contextmanager
def swapped(source: ModuleSource, item_ids: list[str]) -> Iterator[None]:
    """Put the reference's version of each item's symbols into the student's modules.

    Every student module that holds the student's object under that name (the defining module and
    any that imported it, e.g. ``ch04`` after ``from .ch03 import MultiHeadAttention``) gets the
    reference object for the duration; everything is restored afterwards.
    """
    from grader.catalog import BY_ID, MODULES

    undo: list[tuple[types.ModuleType, str, Any]] = []
    try:
        for item_id in item_ids:
            item = BY_ID[item_id]
            ref_module = importlib.import_module(f"reference.{item.module}")
            own = source.loaded(item.module)  # None: not imported (yet), or it failed to load
            for symbol in item.names:
                replacement = getattr(ref_module, symbol)
                original = getattr(own, symbol, None) if own is not None else None
                for name in MODULES:
                    target = source.loaded(name)
                    if target is None:
                        continue
                    if target is own or (original is not None and getattr(target, symbol, None) is original):
                        undo.append((target, symbol, getattr(target, symbol, _MISSING)))
                        setattr(target, symbol, replacement)
        yield
    finally:
        for target, symbol, value in reversed(undo):
            if value is _MISSING:
                delattr(target, symbol)
            else:
                setattr(target, symbol, value)


_MISSING = object()


def run_recipe(name: str, source: ModuleSource, swap: list[str], inputs: dict[str, Any], device: str) -> Any:
    """Run recipe ``name`` against ``source`` on ``device`` (the worker's entry point)."""
    fn = get(name)
    with swapped(source, list(swap)):
        return fn(Impl("student", source, device), **inputs)


def run_reference(name: str, device: str, /, **inputs: Any) -> Any:
    """Run recipe ``name`` in this process against ``reference/`` on ``device`` (the trusted side)."""
    from grader.sandbox import protocol

    return protocol.to_plain(get(name)(Impl("reference", ReferenceSource(), device), **inputs))
