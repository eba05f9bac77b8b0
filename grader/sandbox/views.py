"""Reference views: the only reference code a worker grading one item ever holds (trusted side).

The worker that runs the student's code for item X must not hold the reference for X: not on disk
in its mount namespace (``reference/`` is not mounted at all, :mod:`grader.sandbox.policy`), not in
memory. What its checks need of the reference is X's *view*: the reference definitions of every
item in X's closure (its declared ``depends`` and ``uses``, transitively, :func:`closure`) and the
support code no item owns (library imports, the offline tokenizer helpers, ``get_device``). It is
sent to the worker as source text, one module per reference module, and executed there into fresh
``reference.*`` modules (:func:`grader.sandbox.child.install_view`).

How a view is cut, from the reference's own source (``ast``, nothing imported):

- every top-level statement of ``reference/<module>.py`` defines names (a ``def``, a ``class``, an
  assignment, an import) and refers to module-level names (its body, bases, decorators and default
  values; not its annotations, which ``from __future__ import annotations`` leaves unevaluated);
  ``from .ch03 import X`` refers to ``ch03``'s ``X``;
- an item *owns* its symbols and helpers and every name they reach: a private helper such as
  ``_causal_mask`` belongs to each item whose code calls it;
- *support* is what no item reaches and what reaches no item's own symbols, and all of
  ``reference/device.py`` and ``reference/gpt2_tokenizer.py`` (also where a chapter re-exports it); a helper that support code calls is support too (``build_vocab`` calls
  ``preprocess``, as the tokenizers do: the stubs give both to the student);
- X's view keeps support and what the items of X's closure own, and nothing else. The catalog's
  graph over ``depends`` and ``uses`` has no cycle (:mod:`grader.catalog`), so nothing X owns alone,
  and nothing an item that depends on X owns alone, is ever in it: :func:`view_for` asserts that.

Kept statements keep their line numbers (other lines are blank), so a traceback through reference
code in the worker points at the reference's real line; module docstrings and comments outside kept
statements are dropped (they can describe an answer).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.catalog import BY_ID, ITEMS, MODULES, Item

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference"
PACKAGE = "reference"
SUPPORT_MODULES = ("device", "gpt2_tokenizer")  # no item of the book in them: everything there is support
VIEW_MODULES = (*SUPPORT_MODULES, *MODULES)  # in this order: a module only imports earlier ones
Node = tuple[str, str]  # (reference module, top-level name)


class ViewError(Exception):
    """The reference cannot be cut into views (a statement of an unknown kind, a leak)."""


@dataclass(frozen=True)
class _Statement:
    module: str
    node: ast.stmt
    defines: tuple[str, ...]
    refers: frozenset[Node]
    always: bool  # a library import, ``from __future__``: kept in every view
    imported: tuple[tuple[str, str, str], ...] = ()  # from-import of a reference module: (name, asname, module)


@dataclass(frozen=True)
class View:
    """What one worker is given: ``modules`` maps ``reference.<module>`` to its source (in import
    order), ``items`` are the catalog items whose reference code it holds."""

    items: frozenset[str]
    modules: tuple[tuple[str, str], ...]

    def names(self, module: str) -> set[str]:
        """The top-level names the view defines in ``module`` (for tests and messages)."""
        source = dict(self.modules).get(f"{PACKAGE}.{module}", "")
        return {name for stmt in ast.parse(source).body for name in _defined(stmt)}


def closure(item_ids: Iterable[str]) -> frozenset[str]:
    """The items whose reference a worker grading ``item_ids`` may hold: their ``depends`` and
    ``uses``, transitively (never the items themselves, the catalog being acyclic)."""
    seen: set[str] = set()
    stack = [dep for item_id in item_ids for dep in _needs(BY_ID[item_id])]
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        stack.extend(_needs(BY_ID[dep]))
    return frozenset(seen)


def _needs(item: Item) -> tuple[str, ...]:
    return (*item.depends, *item.uses)


def dependents(item_id: str) -> frozenset[str]:
    """Every item whose closure holds ``item_id``: the items that build on it."""
    return frozenset(other.id for other in ITEMS if item_id in closure([other.id]))


def view_for(item_ids: Iterable[str], reference_dir: Path = REFERENCE_DIR) -> View:
    """The view of a worker that grades ``item_ids`` (for a worker that only imports the
    submission, none: support only)."""
    graded = frozenset(item_ids)
    return _view(graded, closure(graded), _fingerprint(reference_dir), reference_dir)


@functools.lru_cache(maxsize=256)
def _view(graded: frozenset[str], allowed: frozenset[str], fingerprint: str, reference_dir: Path) -> View:
    analysis = _analyse(fingerprint, reference_dir)
    wanted = set(analysis.support).union(*(analysis.owned[item_id] for item_id in allowed))
    keep = set(_reach(wanted, analysis.edges))
    for item_id in graded:  # an item graded here, and any item that builds on it, stays out
        for other in (item_id, *dependents(item_id)):
            leaked = sorted(name for module, name in analysis.roots[other] & keep)
            if leaked:
                raise ViewError(f"the view for {item_id} would hold {other}'s {', '.join(leaked)}")
    modules = tuple((f"{PACKAGE}.{module}", _source(analysis, module, keep)) for module in VIEW_MODULES)
    return View(items=frozenset(allowed), modules=modules)


@dataclass(frozen=True)
class _Analysis:
    statements: dict[str, list[_Statement]]
    lines: dict[str, list[str]]
    edges: dict[Node, set[Node]]  # a name -> the module-level names its statement refers to
    roots: dict[str, frozenset[Node]]  # item id -> its own symbols and helpers
    owned: dict[str, frozenset[Node]]  # item id -> every name its code reaches
    support: frozenset[Node]


def _fingerprint(reference_dir: Path) -> str:
    digest = hashlib.sha256()
    for module in VIEW_MODULES:
        digest.update((reference_dir / f"{module}.py").read_bytes())
    return digest.hexdigest()


def fingerprint(reference_dir: Path = REFERENCE_DIR) -> str:
    """A hash of the reference's source: views (and anything computed from them) depend on it."""
    return _fingerprint(reference_dir)


@functools.lru_cache(maxsize=4)
def _analyse(fingerprint: str, reference_dir: Path) -> _Analysis:
    statements: dict[str, list[_Statement]] = {}
    lines: dict[str, list[str]] = {}
    for module in VIEW_MODULES:
        text = (reference_dir / f"{module}.py").read_text("utf-8")
        lines[module] = text.splitlines()
        statements[module] = [_statement(module, node) for node in ast.parse(text).body
                              if not _is_docstring(node) and not _is_all(node)]
    defined: dict[Node, _Statement] = {}
    for module, stmts in statements.items():
        for stmt in stmts:
            for name in stmt.defines:
                defined[(module, name)] = stmt
    edges: dict[Node, set[Node]] = {}
    for node, stmt in defined.items():
        edges[node] = {ref for ref in stmt.refers if ref in defined}
    roots = {item.id: frozenset((item.module, name) for name in item.names if (item.module, name) in defined)
             for item in ITEMS}
    owned = {item_id: frozenset(_reach(nodes, edges)) for item_id, nodes in roots.items()}
    reached: set[Node] = set().union(*owned.values())
    item_roots: set[Node] = set().union(*roots.values())
    # Support: what no item's code reaches and what reaches no item (load_hf_gpt2_state_dict calls
    # load_weights_into_gpt: it is in no view). A helper support code also calls is support too
    # (build_vocab calls preprocess, which the tokenizers call).
    support = frozenset(node for node in defined
                        if node[0] in SUPPORT_MODULES or defined[node].always
                        or (node not in reached and not item_roots & set(_reach([node], edges)))
                        or _names_support(defined[node], node[1]))
    return _Analysis(statements, lines, edges, roots, owned, support)


def _names_support(stmt: _Statement, name: str) -> bool:
    """``from .gpt2_tokenizer import get_gpt2_tokenizer``: the name is the support module's."""
    return any(asname == name and module in SUPPORT_MODULES for _, asname, module in stmt.imported)


def _reach(roots: Iterable[Node], edges: dict[Node, set[Node]]) -> Iterator[Node]:
    seen: set[Node] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        yield node
        stack.extend(edges.get(node, ()))


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_all(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)


def _defined(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, ast.Assign):
        return tuple(n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name))
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return (node.target.id,)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return tuple((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return ()


def _reference_module(node: ast.ImportFrom) -> str | None:
    """``ch03`` for ``from .ch03 import ...`` or ``from reference.ch03 import ...``; else None."""
    if node.level == 1 and node.module:
        return node.module
    if node.level == 0 and node.module and node.module.startswith(f"{PACKAGE}."):
        return node.module.split(".", 1)[1]
    return None


def _statement(module: str, node: ast.stmt) -> _Statement:
    if isinstance(node, ast.ImportFrom):
        source = _reference_module(node)
        if node.module == "__future__" or source is None:
            if node.level:
                raise ViewError(f"reference/{module}.py:{node.lineno}: a relative import of a package")
            return _Statement(module, node, _defined(node), frozenset(), always=True)
        imported = tuple((alias.name, alias.asname or alias.name, source) for alias in node.names)
        return _Statement(module, node, _defined(node), frozenset((source, name) for name, _, _ in imported),
                          always=False, imported=imported)
    if isinstance(node, ast.Import):
        if any(alias.name.split(".")[0] == PACKAGE for alias in node.names):
            raise ViewError(f"reference/{module}.py:{node.lineno}: import names from the package instead")
        return _Statement(module, node, _defined(node), frozenset(), always=True)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)):
        refers = frozenset((module, name) for name in _referenced(node))
        return _Statement(module, node, _defined(node), refers, always=False)
    raise ViewError(f"reference/{module}.py:{node.lineno}: a top-level {type(node).__name__} statement "
                    "(the reference holds only imports, definitions and assignments)")


def _referenced(node: ast.AST) -> set[str]:
    """Every name ``node`` loads, annotations left out (they are never evaluated)."""
    found: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Load):
            found.add(current.id)
        for field, value in ast.iter_fields(current):
            if field in ("annotation", "returns"):
                continue
            if isinstance(value, ast.AST):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.AST))
    return found


def _source(analysis: _Analysis, module: str, keep: set[Node]) -> str:
    """``module``'s kept statements at their own lines; everything else blank."""
    original = analysis.lines[module]
    out = [""] * len(original)
    for stmt in analysis.statements[module]:
        node = stmt.node
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        last = node.end_lineno or node.lineno
        if stmt.imported:  # keep only the names the view holds, on the statement's first line
            names = [(name, asname) for name, asname, _ in stmt.imported if (module, asname) in keep]
            if names:
                aliases = ", ".join(name if name == asname else f"{name} as {asname}" for name, asname in names)
                out[first - 1] = f"from .{stmt.imported[0][2]} import {aliases}"
            continue
        if stmt.always or any((module, name) in keep for name in stmt.defines):
            out[first - 1:last] = original[first - 1:last]
    return "\n".join(out) + "\n"
