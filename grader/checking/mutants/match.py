"""Which reference mutant reproduces the student's failing check, on the trusted side.

The check is run again, unchanged, with two stand-ins: for ``ref`` the reference with one mutant of
the item's code in it (:class:`MutantReference`), for ``student`` the answers the student's code
gave in this check, replayed call by call (:class:`Replay`). A mutant *matches* when the check then
passes: its comparison, with its own tolerance, finds the mutant's results equal to the student's,
or the mutant's code raises the very exception (type and message) that the student's raised at the
same call. Any call whose inputs differ from the ones the student answered ends the attempt: a
replayed answer is only evidence for the question it answered.
"""

from __future__ import annotations

import math
import re
import os
import signal
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from grader.checking.failures import GradeFailure
from grader.checking.mutants.generate import Mutant
from grader.recipes import Impl, get
from grader.sandbox import protocol
from grader.sandbox.parent import Answer


class Diverged(Exception):
    """The check, run against a mutant, asked the student something it was not asked before."""


class Agrees(Exception):
    """The mutant's code raised the same exception as the student's code at the same call."""


class Replay:
    """Stands in for :class:`grader.sandbox.parent.Student`: the recorded answers, in order."""

    def __init__(self, calls: Sequence[Answer], device: str, item: str | None) -> None:
        self._calls = list(calls)
        self._next = 0
        self.device = device
        self.item = item
        self.broken: dict[str, str] = {}
        self.forced_swaps: list[str] = []
        self.swaps_used: list[list[str]] | None = None
        self.time_scale = 1.0
        self.pace = None

    def peek(self) -> Answer | None:
        return self._calls[self._next] if self._next < len(self._calls) else None

    def time_limit(self, recipe: str, time_limit_s: float | None = None) -> float:
        """As the worker's handle says it (no pace here: inputs derived from it diverge, and a
        check that derives them is not matched)."""
        return float(time_limit_s or 60.0)

    def run(self, recipe: str, /, *, swap: Sequence[str] = (), what: str = "",
            time_limit_s: float | None = None, **inputs: Any) -> Any:
        call = self.peek()
        if call is None or call.recipe != recipe or sorted(call.swap) != sorted(swap) \
                or not same(call.inputs, inputs):
            raise Diverged(recipe)
        self._next += 1
        if call.error is not None:
            raise call.error
        return call.value


def same(a: Any, b: Any) -> bool:
    """Plain data equal, tensors exactly (same dtype, shape and values; NaN equal to NaN)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and bool(torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=0,
                                                                                     equal_nan=True)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(type(a) is type(b) and a == b)


class _MutantSource:
    def __init__(self, module: str, namespace: types.ModuleType) -> None:
        self._module = module
        self._namespace = namespace

    def module(self, name: str) -> types.ModuleType:
        import importlib

        return self._namespace if name == self._module else importlib.import_module(f"reference.{name}")

    def loaded(self, name: str) -> types.ModuleType | None:
        return self.module(name)


class MutantReference:
    """Stands in for the ``ref`` fixture: the same recipes, run against the reference with one mutant
    in it; never cached, never timed. An exception from the mutant's code is compared with the
    student's at the call the check makes next (:class:`Agrees` when they are the same)."""

    def __init__(self, mutant: Mutant, namespace: types.ModuleType, device: str, replay: Replay,
                 base: Any = None) -> None:
        self.device = device
        self._impl = Impl("reference", _MutantSource(mutant.module, namespace), device)
        self._replay = replay
        # A mutant outside __init__ builds the same parts: their weights and shapes are the reference's
        # (asked of ``base``, the real reference, whose answers are cached).
        self._base = base if mutant.function not in ("__init__", "") else None

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        if self._base is not None and recipe in _PARTS_ONLY:
            return self._base.run(recipe, **inputs)
        try:
            return protocol.to_plain(get(recipe)(self._impl, **inputs))
        except (Diverged, _OutOfTime):
            raise
        except Exception as exc:  # noqa: BLE001 - the mutant's own error, compared with the student's
            upcoming = self._replay.peek()
            error = upcoming.error if upcoming is not None else None
            if isinstance(error, GradeFailure) and error.details.get("kind") == "exception" \
                    and error.details.get("type") == type(exc).__name__ \
                    and same_message(str(error.params.get("message", "")), _clipped(str(exc))):
                raise Agrees() from None
            raise Diverged(recipe) from None


_PARTS_ONLY = {"module.state_dict", "module.info"}


def _clipped(message: str) -> str:
    return message[:2000] + " ..." if len(message) > 2000 else message  # as the worker reports it


_SIZES = re.compile(r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)")


def same_message(a: str, b: str) -> bool:
    """The same error message; a broadcast error says the same whichever operand comes first
    (``masked_fill_`` in place names the sizes the other way round from ``masked_fill``)."""
    def canonical(text: str) -> str:
        return _SIZES.sub(lambda m: "sizes " + " ".join(sorted((m.group(1), m.group(2)))), text)
    return a == b or canonical(a) == canonical(b)


class _OutOfTime(BaseException):
    """The time budget for the mutants of one check is spent (raised from a timer signal)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in this (main) thread after ``seconds``: a mutant can loop."""
    if seconds <= 0:
        raise _OutOfTime()

    def alarm(signum: int, frame: Any) -> None:
        raise _OutOfTime()

    try:
        previous = signal.signal(signal.SIGALRM, alarm)
    except ValueError:  # not the main thread: no timer, the budget is checked between mutants
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _trace(mutant: Mutant, outcome: BaseException) -> None:
    """With ``LLMGRADE_MUTANT_TRACE=<file>``, why each mutant did not match (for suite authors)."""
    path = os.environ.get("LLMGRADE_MUTANT_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{mutant.item} {mutant.describe()}: {type(outcome).__name__}: {str(outcome)[:300]}\n")


CheckBody = Callable[[Any, Any], None]  # (student stand-in, ref stand-in) -> passes or raises


def matching(mutants: Sequence[Mutant], calls: Sequence[Answer], check: CheckBody, device: str,
             item: str | None, budget_s: float, base: Any = None) -> tuple[list[Mutant], bool]:
    """The mutants under which ``check`` passes on the student's recorded answers, and whether all
    of ``mutants`` were tried within ``budget_s`` seconds."""
    found: list[Mutant] = []
    end = time.perf_counter() + budget_s
    grad_enabled = torch.is_grad_enabled()  # a timer can stop a mutant inside torch.no_grad()
    try:
        with _deadline(budget_s):
            for mutant in mutants:
                if time.perf_counter() > end:
                    return found, False
                namespace = mutant.namespace()
                if namespace is None:
                    continue
                replay = Replay(calls, device, item)
                try:
                    with torch.random.fork_rng(devices=[]):
                        check(replay, MutantReference(mutant, namespace, device, replay, base))
                except Agrees:
                    found.append(mutant)
                except (_OutOfTime, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # noqa: BLE001 - any other outcome: this mutant is not the mistake
                    _trace(mutant, exc)
                    continue
                else:
                    found.append(mutant)
    except _OutOfTime:
        return found, False
    finally:
        torch.set_grad_enabled(grad_enabled)
    return found, True
