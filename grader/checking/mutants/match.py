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
import os
import re
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from grader.checking.failures import GradeFailure
from grader.checking.mutants.generate import Mutant
from grader.checking.tolerance import nan_matches_nan
from grader.recipes import Impl, get
from grader.sandbox import protocol
from grader.sandbox.parent import Answer


class Diverged(Exception):
    """The check, run against a mutant, asked the student something it was not asked before."""


class Agrees(Exception):
    """The mutant's code raised the same exception as the student's code at the same call, or the
    check, run against the mutant, got past every answer the student gave without failing."""


class Replay:
    """Stands in for :class:`grader.sandbox.parent.Student`: the recorded answers, in order."""

    def __init__(self, calls: Sequence[Answer], device: str, item: str | None) -> None:
        # The exception being handled when the replay began (the check's own failure, in the hook
        # that names it): a later call made while handling another one comes from a failure path.
        self._handling = sys.exc_info()[1]
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
        if call is None and self._next and sys.exc_info()[1] is self._handling:
            # The student's check failed at its last answer; the mutant's passed it and goes on
            # to a question the student never got: every answer the student gave was the mutant's.
            raise Agrees()
        if call is None or call.recipe != recipe or sorted(call.swap) != sorted(swap) \
                or not same(call.inputs, inputs):
            recorded = "nothing" if call is None else f"{call.recipe} with other inputs or swaps"
            raise Diverged(f"{recipe}: the student was asked {recorded}")
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

    is_mutant = True  # a suite that keeps reference results between checks must not keep these

    def __init__(self, mutant: Mutant, namespace: types.ModuleType, device: str, replay: Replay,
                 base: Any = None, memo: list[tuple[str, dict[str, Any], Any]] | None = None) -> None:
        self.device = device
        self._impl = Impl("reference", _MutantSource(mutant.module, namespace), device)
        self._replay = replay
        self._memo = memo
        # A mutant outside __init__ builds the same parts: their weights and shapes are the reference's
        # (asked of ``base``, the real reference, whose answers are cached).
        self._base = base if mutant.function not in ("__init__", "") else None

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        if self._base is not None and recipe in _PARTS_ONLY:
            return self._base.run(recipe, **inputs)
        for asked, given, result in self._memo or ():
            if asked == recipe and same(given, inputs):
                return result
        try:
            result = protocol.to_plain(get(recipe)(self._impl, **inputs))
            if self._memo is not None:
                self._memo.append((recipe, inputs, result))
            return result
        except (Diverged, _OutOfTime):
            raise
        except Exception as exc:  # noqa: BLE001 - the mutant's own error, compared with the student's
            upcoming = self._replay.peek()
            error = upcoming.error if upcoming is not None else None
            if isinstance(error, GradeFailure) and error.details.get("kind") == "exception" \
                    and error.details.get("type") == type(exc).__name__ \
                    and same_message(str(error.params.get("message", "")), _clipped(str(exc))):
                raise Agrees() from None
            raise Diverged(f"{recipe}: the mutant raised {type(exc).__name__}: {str(exc)[:200]}; "
                           f"the student's next answer is {'an error' if error is not None else 'a value'}") from None


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


# The budget counts this process's CPU time, so that a busy machine (a class graded on every core)
# names the same mistakes as an idle one; a mutant that waits without computing is stopped by the
# wall clock after this many budgets.
WALL_CAP = 10.0


def spent() -> float:
    """This process's CPU time, the clock the budget is counted on."""
    return time.process_time()


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in this (main) thread after ``seconds`` of CPU time (or
    ``WALL_CAP`` times as long on the wall clock): a mutant can loop."""
    if seconds <= 0:
        raise _OutOfTime()

    def out_of_time(signum: int, frame: Any) -> None:
        if _importing(frame):  # an import stopped half-way leaves a broken module behind: wait for it
            signal.setitimer(signal.ITIMER_PROF if signum == signal.SIGPROF else signal.ITIMER_REAL, 0.05)
            return
        raise _OutOfTime()

    try:
        previous = {sig: signal.signal(sig, out_of_time) for sig in (signal.SIGPROF, signal.SIGALRM)}
    except ValueError:  # not the main thread: no timer, the budget is checked between mutants
        yield
        return
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_CAP)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _importing(frame: Any) -> bool:
    """Whether ``frame`` runs inside an import (a reference run can import a module the first time:
    torch's optimizers import ``torch._dynamo``)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _trace_line(entry: str) -> None:
    """With ``LLMGRADE_MUTANT_TRACE=<file>``, a line of the search for suite authors: which mutants
    matched, why each other one did not, what helpers were asked, where the budget ran out."""
    path = os.environ.get("LLMGRADE_MUTANT_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(entry + "\n")


def _trace(mutant: Mutant, outcome: BaseException | None) -> None:
    said = "MATCH" if outcome is None else f"{type(outcome).__name__}: {str(outcome)[:300]}"
    _trace_line(f"{mutant.item} {mutant.describe()}: {said}")


CheckBody = Callable[[Any, Any], None]  # (student stand-in, ref stand-in) -> passes or raises


def _helpers_first(mutants: Sequence[Mutant], calls: Sequence[Answer], check: CheckBody, device: str,
                   item: str | None, base: Any) -> list[Mutant]:
    """The mutants of the item's helper functions (``lr_at_step``) that change a result the check
    asked of them, first; those that return the same on every call the check made, left out (they
    are the reference here, which fails the check). Found by running the check once against the
    reference with each helper wrapped to record its calls; an item with no helper is unchanged."""
    helpers = [m for m in mutants if m.helper]
    if not helpers or len(mutants) == 1:
        return list(mutants)
    recorded: dict[str, list[tuple[Any, Any, Any]]] = {name: [] for name in {m.helper for m in helpers}}
    namespace = helpers[0].unchanged()
    for name, log in recorded.items():
        namespace.__dict__[name] = _recorder(namespace.__dict__[name], log)
    replay = Replay(calls, device, item)
    outcome: BaseException | None = None
    try:
        with torch.random.fork_rng(devices=[]), nan_matches_nan():
            check(replay, MutantReference(helpers[0], namespace, device, replay, base))
    except (_OutOfTime, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the reference fails this check: only its calls are wanted
        outcome = exc
    _trace_line(f"{item} recorded {({k: len(v) for k, v in recorded.items()})} ending {outcome!r}")
    seen = _numbers([call.value for call in calls])
    live: list[tuple[float, int, int, Mutant]] = []
    for position, mutant in enumerate(helpers):
        changed = mutant.namespace()
        if changed is None:
            continue
        function = changed.__dict__[mutant.helper]
        changes = []
        try:
            for args, kwargs, theirs in recorded[mutant.helper]:
                answer = function(*args, **kwargs)
                if not same(answer, theirs):
                    changes.append(answer)
        except Exception:  # noqa: BLE001 - it raises where the reference did not: it changes something
            live.append((0.0, 0, position, mutant))
            continue
        if not changes:
            continue  # the same answers as the reference's helper: not the mistake here
        # the share of the helper's changed results that the student's answers hold as they are:
        # the mutants whose changes the student's code shows first
        mine = _numbers(changes)
        shown = len(mine & seen)
        live.append((-shown / max(len(mine), 1), -shown, position, mutant))
    live.sort(key=lambda entry: entry[:3])  # the largest share, then the most values shown, first
    _trace_line(f"{item} helper mutants first: " + "; ".join(
        f"{-score:.2f} {m.change.operator} {m.change.params}" for score, _, _, m in live[:4]))
    return [m for *_, m in live] + [m for m in mutants if not m.helper]


def _numbers(value: Any, limit: int = 10_000) -> set[float]:
    """The numbers in ``value`` (plain data: lists, dicts, small tensors), rounded to 12 digits."""
    found: set[float] = set()
    stack = [value]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, (int, float)) and math.isfinite(item):
            found.add(float(f"{item:.12g}"))
        elif isinstance(item, torch.Tensor) and item.numel() <= 1000 and item.is_floating_point():
            stack.extend(item.detach().double().flatten().tolist())
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _recorder(function: Callable[..., Any], log: list[tuple[Any, Any, Any]]) -> Callable[..., Any]:
    def recorded(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        log.append((args, kwargs, result))
        return result
    return recorded


def matching(mutants: Sequence[Mutant], calls: Sequence[Answer], check: CheckBody, device: str,
             item: str | None, budget_s: float, base: Any = None,
             helpers_first: bool = False) -> tuple[list[Mutant], bool]:
    """The mutants under which ``check`` passes on the student's recorded answers, and whether all
    of ``mutants`` were tried within ``budget_s`` seconds of CPU time. ``helpers_first``: ``check``
    is one the student failed, so that helper mutants answering as the reference does cannot
    reproduce it (:func:`_helpers_first`); on a check the student passed they would, and stay."""
    found: list[Mutant] = []
    end = spent() + budget_s
    grad_enabled = torch.is_grad_enabled()  # a timer can stop a mutant inside torch.no_grad()
    tried = 0
    try:
        with _deadline(budget_s):
            if helpers_first:
                mutants = _helpers_first(mutants, calls, check, device, item, base)
            for tried, mutant in enumerate(mutants):
                if spent() > end:
                    _trace_budget(item, tried, len(mutants))
                    return found, False
                namespace = mutant.namespace()
                if namespace is None:
                    continue
                replay = Replay(calls, device, item)
                try:
                    with torch.random.fork_rng(devices=[]), nan_matches_nan():
                        check(replay, MutantReference(mutant, namespace, device, replay, base, mutant.memo))
                except Agrees:
                    _trace(mutant, None)
                    found.append(mutant)
                except (_OutOfTime, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # noqa: BLE001 - any other outcome: this mutant is not the mistake
                    _trace(mutant, exc)
                    continue
                else:
                    _trace(mutant, None)
                    found.append(mutant)
    except _OutOfTime:
        _trace_budget(item, tried, len(mutants))
        return found, False
    finally:
        torch.set_grad_enabled(grad_enabled)
    return found, True


def _trace_budget(item: str | None, tried: int, total: int) -> None:
    _trace_line(f"{item} budget spent after {tried} of {total} mutants")
