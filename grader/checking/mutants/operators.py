"""Mutation operators: the small slips people make, applied to the reference's own code.

Each operator looks at one node of an item's syntax tree and proposes changed copies of it: a call
left out or added, two arguments or operands swapped, an off-by-one in a comparison or constant, a
slice or keyword left out, a comparison reversed, a condition dropped, a statement left out or moved past its neighbour,
a parameter ignored. A proposal is a :class:`Change`: which operator, where (the line), the
fragments that say what changed (for the message) and a function that edits a copy of the tree.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Edit = Callable[[ast.AST], None]  # edits the node it is given (a copy), in place


@dataclass(frozen=True)
class Change:
    operator: str
    lineno: int
    params: dict[str, str] = field(default_factory=dict)
    # (index of a node in ast.walk order of the item's tree, edit of that node); several for a group
    edits: tuple[tuple[int, Edit], ...] = ()


# Names that are modules or well-known globals: a call on them is not a student's own value.
_MODULES = {"torch", "nn", "F", "math", "np", "re", "random", "tiktoken", "json", "os"}
# Method calls whose removal is a slip worth naming (leaving out any other would only crash).
_CALL_LEFT_OUT = {"transpose", "contiguous", "squeeze", "unsqueeze", "flatten", "float", "bool", "detach",
                  "to", "T", "t", "view", "reshape", "clone", "item", "tolist", "strip", "lower", "mean",
                  "sum", "softmax", "exp", "sqrt", "abs", "permute"}


def text(node: ast.AST) -> str:
    return ast.unparse(node)


def _set(attr: str, value: Any) -> Edit:
    def edit(node: ast.AST) -> None:
        setattr(node, attr, copy.deepcopy(value))
    return edit


def _replace_in_parent(parent_index: int, attr: str, position: int | None, value: ast.AST) -> tuple[int, Edit]:
    def edit(node: ast.AST) -> None:
        if position is None:
            setattr(node, attr, copy.deepcopy(value))
        else:
            getattr(node, attr)[position] = copy.deepcopy(value)
    return parent_index, edit


def _children(tree: ast.AST) -> Iterator[tuple[int, ast.AST, str, int | None, ast.AST]]:
    """Every (parent index, parent, field, position, child) of ``tree`` with the parent's index in
    ``ast.walk`` order (the same order in any deep copy)."""
    for index, parent in enumerate(ast.walk(tree)):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                yield index, parent, name, None, value
            elif isinstance(value, list):
                for position, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        yield index, parent, name, position, child


def _int_value(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        return -node.operand.value
    return None


def _int_node(value: int) -> ast.expr:
    return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value)) if value < 0 else ast.Constant(value)


_COMPARE_SWAPS: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_COMPARE_FLIPS: dict[type, type] = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
_NOT_COMMUTATIVE = (ast.Sub, ast.Div, ast.MatMult, ast.FloorDiv, ast.Pow, ast.Mod)


def _in_annotation(tree: ast.AST) -> set[int]:
    """ids of the nodes inside annotations (never mutated)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        for annotation in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if isinstance(annotation, ast.AST):
                skip.update(id(n) for n in ast.walk(annotation))
    return skip


def changes(tree: ast.AST) -> list[Change]:
    """Every change the operators propose for ``tree`` (an item's class or function)."""
    skip = _in_annotation(tree)
    found: list[Change] = []
    found += _expression_changes(tree, skip)
    found += _statement_changes(tree)
    found += _parameter_changes(tree)
    return found


def _expression_changes(tree: ast.AST, skip: set[int]) -> list[Change]:
    found: list[Change] = []
    functions = _function_of(tree)
    same_slip: dict[tuple[int, str, str], list[tuple[int, int, Edit]]] = {}
    groups: dict[tuple[int, str], list[tuple[int, int, Edit]]] = {}
    for pidx, parent, name, position, child in _children(tree):
        if id(child) in skip or not hasattr(child, "lineno"):
            continue
        line = child.lineno

        def at(value: ast.AST) -> tuple[tuple[int, Edit], ...]:
            return (_replace_in_parent(pidx, name, position, value),)

        # a method call left out: x.transpose(1, 2) -> x
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                and child.func.attr in _CALL_LEFT_OUT and not _is_module(child.func.value):
            call = "." + child.func.attr + "(" + ", ".join([text(a) for a in child.args] +
                                                           [text(k) for k in child.keywords]) + ")"
            found.append(Change("drop_call", line, {"call": call}, at(child.func.value)))
            groups.setdefault((functions.get(id(child), -1), call), []).append(
                (line, *_replace_in_parent(pidx, name, position, child.func.value)))
        # a one-argument call left out: self.dropout(x) -> x, key(answer) -> answer
        if isinstance(child, ast.Call) and len(child.args) == 1 and not child.keywords \
                and not isinstance(child.args[0], ast.Starred) and not _is_module(_root(child.func)) \
                and not (isinstance(child.func, ast.Name) and child.func.id in _BUILTINS):
            found.append(Change("drop_call", line, {"call": text(child.func) + "(...)"}, at(child.args[0])))
        if isinstance(child, ast.Attribute) and child.attr == "T" and isinstance(child.ctx, ast.Load):
            found.append(Change("drop_call", line, {"call": ".T"}, at(child.value)))
        if isinstance(child, ast.Call):
            found += _call_changes(child, pidx, name, position, line)
        if isinstance(child, ast.BinOp):
            op = _op_text(child.op)
            found.append(Change("drop_operand", line, {"old": text(child), "new": text(child.right)},
                                at(child.right)))
            found.append(Change("drop_operand", line, {"old": text(child), "new": text(child.left)},
                                at(child.left)))
            for kept in (child.left, child.right):  # the same slip wherever the expression repeats
                same_slip.setdefault((functions.get(id(child), -1), text(child), text(kept)), []).append(
                    (line, *_replace_in_parent(pidx, name, position, kept)))
            if isinstance(child.op, _NOT_COMMUTATIVE):
                swapped = ast.BinOp(left=child.right, op=child.op, right=child.left)
                found.append(Change("swap_operands", line, {"old": text(child), "new": text(swapped), "op": op},
                                    at(swapped)))
                exchanged = _names_exchanged(child)
                if exchanged is not None:  # queries @ keys.T -> keys @ queries.T
                    found.append(Change("swap_operands", line, {"old": text(child), "new": text(exchanged),
                                                                "op": op}, at(exchanged)))
            if isinstance(child.op, (ast.Div, ast.Mult)):
                other = ast.BinOp(left=child.left, op=ast.Mult() if isinstance(child.op, ast.Div) else ast.Div(),
                                  right=child.right)
                found.append(Change("swap_operator", line, {"old": text(child), "new": text(other)}, at(other)))
        if isinstance(child, ast.Compare) and len(child.ops) == 1 and type(child.ops[0]) in _COMPARE_SWAPS:
            compared = ast.Compare(left=child.left, ops=[_COMPARE_SWAPS[type(child.ops[0])]()],
                                   comparators=child.comparators)
            found.append(Change("compare", line, {"old": text(child), "new": text(compared)}, at(compared)))
            flipped = ast.Compare(left=child.left, ops=[_COMPARE_FLIPS[type(child.ops[0])]()],
                                  comparators=child.comparators)
            found.append(Change("flip_compare", line, {"old": text(child), "new": text(flipped)}, at(flipped)))
        if isinstance(child, ast.BoolOp) and len(child.values) == 2:
            for keep, drop in ((0, 1), (1, 0)):
                found.append(Change("drop_condition", line, {"condition": text(child.values[drop])},
                                    at(child.values[keep])))
        value = _int_value(child)
        if value is not None and not (isinstance(parent, ast.UnaryOp)):
            for other_value in sorted({value - 1, value + 1, 0, 1, -1, -2} - {value}):
                if abs(other_value) <= max(abs(value) + 1, 3):
                    found.append(Change("constant", line, {"old": text(child), "new": str(other_value),
                                                           "context": text(parent)[:80]},
                                        at(_int_node(other_value))))
        if isinstance(child, ast.Constant) and type(child.value) is bool:
            found.append(Change("constant", line, {"old": repr(child.value), "new": repr(not child.value),
                                                   "context": text(parent)[:80]}, at(ast.Constant(not child.value))))
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and "\n\n" in child.value:
            shorter = child.value.replace("\n\n", "\n", 1)
            found.append(Change("string", line, {"old": repr(child.value), "new": repr(shorter)},
                                at(ast.Constant(shorter))))
        if isinstance(child, ast.Subscript) and isinstance(child.ctx, ast.Load) and _is_slicing(child.slice):
            found.append(Change("drop_subscript", line, {"index": text(child)[len(text(child.value)):]},
                                at(child.value)))
    for (_, call), members in groups.items():
        # consecutive lines with the same call (keys, queries, values): left out in all of them
        run: list[tuple[int, int, Edit]] = []
        for member in sorted(members, key=lambda m: m[0]) + [(10 ** 9, -1, _set("x", None))]:
            if run and member[0] - run[-1][0] > 1:
                if len(run) > 1:
                    found.append(Change("drop_call", run[0][0], {"call": call, "all": "yes"},
                                        tuple((i, e) for _, i, e in run)))
                run = []
            run.append(member)
    for (_, old, new), members in same_slip.items():
        if len(members) > 1:
            found.append(Change("drop_operand", members[0][0], {"old": old, "new": new, "all": "yes"},
                                tuple((i, e) for _, i, e in members)))
    return found


_BUILTINS = {"len", "range", "int", "float", "str", "list", "tuple", "set", "dict", "sorted", "enumerate",
             "zip", "max", "min", "sum", "abs", "isinstance", "super", "print", "iter", "next", "type",
             "bool", "repr", "any", "all", "reversed", "map", "filter", "hasattr", "getattr"}


def _names_exchanged(binop: ast.BinOp) -> ast.BinOp | None:
    """``a @ b.T`` with the two names exchanged and everything around them kept (``b @ a.T``); None
    when an operand is not built on a single name of its own, or when that is a plain swap."""
    def only_name(node: ast.AST) -> str | None:
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in _MODULES}
        return next(iter(names)) if len(names) == 1 else None

    left, right = only_name(binop.left), only_name(binop.right)
    if left is None or right is None or left == right \
            or (isinstance(binop.left, ast.Name) and isinstance(binop.right, ast.Name)):
        return None

    class Exchange(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            other = {left: right, right: left}.get(node.id)
            return ast.Name(other, node.ctx) if other is not None else node

    exchanged = Exchange().visit(copy.deepcopy(binop))
    return exchanged if isinstance(exchanged, ast.BinOp) else None


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node


def _is_module(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in _MODULES


def _is_slicing(index: ast.AST) -> bool:
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    return any(isinstance(p, ast.Slice) for p in parts)


def _op_text(op: ast.operator) -> str:
    return text(ast.BinOp(left=ast.Name("a"), op=op, right=ast.Name("b")))[2:-2]


def _function_of(tree: ast.AST) -> dict[int, int]:
    """id of each node -> the walk index of the function that holds it (a group stays within one)."""
    owner: dict[int, int] = {}
    for index, node in enumerate(ast.walk(tree)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                owner[id(inner)] = index
    return owner


def _call_changes(call: ast.Call, pidx: int, name: str, position: int | None, line: int) -> list[Change]:
    found: list[Change] = []
    for i in range(len(call.args) - 1):
        a, b = call.args[i], call.args[i + 1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred) or text(a) == text(b):
            continue
        args = list(call.args)
        args[i], args[i + 1] = b, a
        swapped = ast.Call(func=call.func, args=args, keywords=call.keywords)
        found.append(Change("swap_args", line, {"a": text(a), "b": text(b), "call": text(call)[:80]},
                            (_replace_in_parent(pidx, name, position, swapped),)))
    for k, keyword in enumerate(call.keywords):
        if keyword.arg is None:
            continue
        rest = [kw for j, kw in enumerate(call.keywords) if j != k]
        shorter = ast.Call(func=call.func, args=call.args, keywords=rest)
        # quoted at the keyword's own line: in a call over several lines that is where it is written
        found.append(Change("drop_keyword", getattr(keyword, "lineno", line), {"keyword": text(keyword)},
                            (_replace_in_parent(pidx, name, position, shorter),)))
    # the loss on the last token only: every x.flatten(...) argument becomes x[:, -1]
    flats = [i for i, a in enumerate(call.args) if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute)
             and a.func.attr == "flatten"]
    if flats:
        args = list(call.args)
        for i in flats:
            base = args[i].func.value  # type: ignore[attr-defined]
            args[i] = ast.Subscript(value=base, slice=ast.Tuple(elts=[ast.Slice(), _int_node(-1)], ctx=ast.Load()),
                                    ctx=ast.Load())
        last = ast.Call(func=call.func, args=args, keywords=call.keywords)
        found.append(Change("last_token", line, {"old": text(call)[:100]},
                            (_replace_in_parent(pidx, name, position, last),)))
    return found


# ---- statements ----------------------------------------------------------------------------------


def _statement_changes(tree: ast.AST) -> list[Change]:
    found: list[Change] = []
    for index, node in enumerate(ast.walk(tree)):
        for name in ("body", "orelse"):
            block = getattr(node, name, None)
            if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                continue
            if isinstance(node, ast.ClassDef):
                continue
            for i, stmt in enumerate(block):
                simple = isinstance(stmt, (ast.Assign, ast.AugAssign, ast.Expr, ast.AnnAssign))
                if simple and len(block) > 1 and not _is_docstring(stmt):
                    found.append(Change("drop_statement", stmt.lineno, {"line": text(stmt)[:100]},
                                        ((index, _drop_at(name, i)),)))
                if i + 1 < len(block) and simple and isinstance(block[i + 1], (ast.Assign, ast.AugAssign, ast.Expr)) \
                        and not _is_docstring(stmt):
                    found.append(Change("move", stmt.lineno, {"line": text(stmt)[:100],
                                                              "other": text(block[i + 1])[:100]},
                                        ((index, _swap_at(name, i)),)))
                if i > 0:
                    found += _call_on_input(index, name, i - 1, block[i - 1], stmt)
    return found


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _drop_at(name: str, i: int) -> Edit:
    def edit(node: ast.AST) -> None:
        del getattr(node, name)[i]
    return edit


def _swap_at(name: str, i: int) -> Edit:
    def edit(node: ast.AST) -> None:
        block = getattr(node, name)
        block[i], block[i + 1] = block[i + 1], block[i]
    return edit


def _call_on_input(index: int, name: str, i: int, before: ast.stmt, stmt: ast.stmt) -> list[Change]:
    """``v = f(...); v = CALL(v)`` -> ``n = CALL(n); v = f(...)`` for each variable ``n`` read by the
    first line: the call (a dropout) applied to an input instead of the result."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Call) and len(stmt.value.args) == 1 and not stmt.value.keywords
            and isinstance(stmt.value.args[0], ast.Name) and stmt.value.args[0].id == stmt.targets[0].id
            and isinstance(before, ast.Assign) and any(isinstance(t, ast.Name) and t.id == stmt.targets[0].id
                                                       for t in before.targets)):
        return []
    found: list[Change] = []
    inputs = sorted({n.id for n in ast.walk(before.value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                     and n.id not in _MODULES and n.id != "self" and n.id not in _BUILTINS})
    for variable in inputs:
        applied = ast.Assign(targets=[ast.Name(variable, ast.Store())],
                             value=ast.Call(func=stmt.value.func, args=[ast.Name(variable, ast.Load())], keywords=[]),
                             lineno=before.lineno)

        def edit(node: ast.AST, applied: ast.Assign = applied) -> None:
            block = getattr(node, name)
            block[i + 1] = copy.deepcopy(block[i])
            block[i] = copy.deepcopy(applied)
        found.append(Change("call_on_input", stmt.lineno, {"call": text(stmt.value.func) + "(...)", "input": variable,
                                                            "output": stmt.targets[0].id}, ((index, edit),)))
    return found


# ---- parameters ----------------------------------------------------------------------------------


def _parameter_changes(tree: ast.AST) -> list[Change]:
    """A parameter ignored: every read of it replaced by its default; and a variable read in place of
    its sibling from the same unpacking (``batch_size, seq_len = x.shape``)."""
    found: list[Change] = []
    for index, node in enumerate(ast.walk(tree)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args.args[len(node.args.args) - len(node.args.defaults):] if node.args.defaults else []
        pairs = list(zip(args, node.args.defaults))
        pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
        for arg, default in pairs:
            found.append(Change("param_default", node.lineno, {"param": arg.arg, "default": text(default)},
                                ((index, _rename(arg.arg, default)),)))
        for stmt in ast.walk(node):
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Tuple):
                names = [e.id for e in stmt.targets[0].elts if isinstance(e, ast.Name)]
                for old in names:
                    for new in names:
                        if old != new and _reads(node, old):
                            found.append(Change("swap_names", _first_read(node, old), {"old": old, "new": new},
                                                ((index, _rename(old, ast.Name(new, ast.Load()))),)))
    return found


def _reads(function: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(function))


def _first_read(function: ast.AST, name: str) -> int:
    lines = [n.lineno for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == name
             and isinstance(n.ctx, ast.Load)]
    return min(lines) if lines else getattr(function, "lineno", 0)


def _rename(name: str, value: ast.expr) -> Edit:
    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id == name and isinstance(node.ctx, ast.Load):
                return copy.deepcopy(value)
            return node

    def edit(node: ast.AST) -> None:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        node.body = [Replace().visit(stmt) for stmt in node.body]
    return edit
