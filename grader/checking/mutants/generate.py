"""The reference mutants of one catalog item: its own code in ``reference/``, changed by one operator.

A mutant is the item's top-level definitions (its class or function and its helpers), compiled from
the changed tree into a copy of the reference module, so that a recipe that asks that module for the
item gets the mutant and everything else stays the reference's. Mutants are generated once per
reference version (the module's source text) and kept for the process's lifetime; only a failing
item ever asks for them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import types
from typing import Any

from grader.catalog import BY_ID
from grader.checking.mutants.operators import Change, changes

# The operators tried first: the commonest slips, so a tight time budget still reaches them.
_ORDER = ("drop_subscript", "drop_call", "call_on_input", "move", "compare", "flip_compare", "drop_keyword", "swap_args",
          "swap_operands", "swap_operator", "drop_operand", "last_token", "drop_condition", "param_default", "swap_names",
          "string", "drop_statement", "constant")


def _rank(operator: str) -> int:
    return _ORDER.index(operator) if operator in _ORDER else len(_ORDER)


def _priority(mutant: Mutant) -> tuple[int, int]:
    """Commonest slips first; in ``__init__`` (where the parts are made) only the changes that make
    a part of another size or kind come early: moving or dropping a line there is rarely the mistake."""
    late = mutant.function == "__init__" and mutant.change.operator in ("move", "drop_statement", "drop_call",
                                                                         "constant", "drop_keyword")
    operator = mutant.change.operator
    if operator == "constant" and mutant.change.params.get("context", "").startswith("dim="):
        operator = "swap_args"  # another dimension to reduce or normalise over: among the commonest slips
    return (int(late), _rank(operator))


class Mutant:
    """One changed copy of an item's reference code; compiled on first use."""

    def __init__(self, item: str, module: str, change: Change, line: str, segment: str,
                 others: list[ast.stmt], function: str = "", helper: str = "") -> None:
        self.item = item
        self.function = function  # the method or function it changes (``__init__``: the module's parts)
        self.helper = helper  # the item's helper function it changes (``lr_at_step``), or ""
        self.module = module  # the reference module, e.g. "ch03"
        self.change = change
        self.line = line  # the reference line it changes, as written there (comment removed)
        self._segment = segment  # the changed definition's source, blank lines before it: same line numbers
        self._others = others  # the item's other definitions and the module's __future__ imports
        self._tried = False
        self._code: types.CodeType | None = None
        # (recipe, inputs, result) of this mutant's runs for the item being graded: a question that
        # two checks ask (a training run) is computed once (cleared when the item's checks end)
        self.memo: list[tuple[str, dict[str, Any], Any]] = []

    def describe(self) -> dict[str, Any]:
        """Plain data for the results: what changed, where."""
        return {"operator": self.change.operator, "line": self.line, "lineno": self.change.lineno,
                "file": f"reference/{self.module}.py", **{k: v for k, v in self.change.params.items()}}

    def code(self) -> types.CodeType | None:
        """The compiled definitions, or None when the change does not compile."""
        if self._tried:
            return self._code
        self._tried = True
        changed = ast.parse(self._segment).body[0]  # a fresh copy (parsing is faster than deepcopy)
        by_index = list(ast.walk(changed))
        try:
            for index, edit in self.change.edits:
                edit(by_index[index])
            ast.fix_missing_locations(changed)
            self._code = compile(ast.Module(body=[*self._others, changed], type_ignores=[]),
                                 f"<mutant of reference/{self.module}.py>", "exec")
        except (IndexError, AttributeError, TypeError, ValueError, AssertionError, RecursionError, SyntaxError):
            self._code = None
        return self._code

    def unchanged(self) -> types.ModuleType:
        """A copy of the reference module with the item's definitions compiled into it unchanged
        (they then call each other through the copy, where a helper can be wrapped)."""
        original_def = ast.parse(self._segment).body[0]
        code = compile(ast.Module(body=[*self._others, original_def], type_ignores=[]),
                       f"<reference/{self.module}.py>", "exec")
        return self._clone(code)

    def namespace(self) -> types.ModuleType | None:
        """A copy of the reference module with this mutant's definitions in it (None: no code)."""
        code = self.code()
        if code is None:
            return None
        return self._clone(code)

    def _clone(self, code: types.CodeType) -> types.ModuleType:
        original = importlib.import_module(f"reference.{self.module}")
        clone = types.ModuleType(original.__name__, original.__doc__)
        clone.__dict__.update(original.__dict__)
        exec(code, clone.__dict__)  # noqa: S102 - the reference's own code, changed by an operator
        return clone


def mutants_for(item_id: str) -> list[Mutant]:
    """Every mutant of ``item_id``'s reference code (empty for an item with no code of its own)."""
    item = BY_ID.get(item_id)
    if item is None:
        return []
    module = importlib.import_module(f"reference.{item.module}")
    source = inspect.getsource(module)
    return list(_generate(item_id, item.module, tuple(item.names), tuple(item.helpers),
                          hashlib.sha256(source.encode()).hexdigest(), source))


@functools.lru_cache(maxsize=64)
def _generate(item_id: str, module: str, names: tuple[str, ...], helpers: tuple[str, ...], version: str,
              source: str) -> tuple[Mutant, ...]:
    del version  # the cache key: a changed reference gets new mutants
    tree = ast.parse(source)
    lines = source.splitlines()
    future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
             and n.name in names]
    found: list[Mutant] = []
    seen: set[str] = set()
    for position, node in enumerate(nodes):
        segment = "\n" * (node.lineno - 1) + "\n".join(lines[node.lineno - 1:node.end_lineno])
        others: list[ast.stmt] = [*future, *(n for j, n in enumerate(nodes) if j != position)]
        spans = [(f.lineno, f.end_lineno or f.lineno, f.name) for f in ast.walk(node)
                 if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for change in changes(node):
            key = repr((change.operator, change.lineno, sorted(change.params.items())))
            if key in seen:
                continue
            seen.add(key)
            line = lines[change.lineno - 1].split("  #")[0].strip() if 0 < change.lineno <= len(lines) else ""
            function = next((name for start, end, name in reversed(spans) if start <= change.lineno <= end), "")
            helper = node.name if node.name in helpers and isinstance(node, ast.FunctionDef) else ""
            found.append(Mutant(item_id, module, change, line, segment, others, function, helper))
    found.sort(key=_priority)
    return tuple(found)
