"""A notebook becomes a module: what is kept, what is left out, and where each kept line came from.

Code cells are taken in order. IPython magics and shell escapes (``%...``, ``!...``, ``%%...`` cells,
``obj?``) are dropped. Of the remaining top-level statements only definitions are kept: imports,
functions, classes, and assignments to plain names whose value calls nothing (constants such as a
config dict). Everything else (training runs, downloads, prints, plots, demo calls, ``model = ...``)
is left out and listed, so that grading never runs the reader's experiments. A cell tagged
``llmgrade:keep`` (or whose first line is ``# llmgrade: keep``) is kept whole; ``llmgrade:skip``
leaves a cell out whole. A cell that is not valid Python is kept as it is, so the syntax error is
reported at that cell. ``from chNN import X`` becomes ``from .chNN import X`` (the graded package);
``import llmgrade`` (the checker itself) is left out.

The module starts with two comment lines; the second, ``# llmgrade-map: {json}``, maps the module's
lines back to cells (:mod:`grader.notebooks.locations` reads it). See ``docs/notebooks.md``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

KEEP_TAG = "llmgrade:keep"
SKIP_TAG = "llmgrade:skip"
MAP_PREFIX = "# llmgrade-map: "
CHECKER_MODULE = "llmgrade"  # ``import llmgrade`` (the in-notebook checker) is never graded code
HEADER = "# llmgrade: generated from {source} (definitions only); edit the notebook, not this file.\n"
_KEEP_COMMENT = re.compile(r"^#\s*llmgrade:\s*keep\b")
_SKIP_COMMENT = re.compile(r"^#\s*llmgrade:\s*skip\b")
_MAGIC_LINE = re.compile(r"^(\s*)([%!]|[\w.]+\s*=\s*[%!])")
_CHECKER_MAGIC = re.compile(r"^\s*%(llmgrade\b|(load|reload|unload)_ext\s+llmgrade\s*$)")
_HELP_LINE = re.compile(r"^\s*[\w.]+\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")


@dataclass(frozen=True)
class Cell:
    """One code cell: its number (1-based, counted over every cell of the notebook), source, tags."""

    number: int
    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeftOut:
    """A statement or line that is not graded (reason: ``magic``, ``statement``, ``cell``)."""

    cell: int
    line: int
    first_line: str
    reason: str


@dataclass
class Converted:
    """The module text, what was left out, and the line map (module line -> cell, line)."""

    source_name: str
    label: str
    code: str = ""
    left_out: list[LeftOut] = field(default_factory=list)
    # [module_start_line, cell, cell_start_line, line_count], module lines counted from 1.
    segments: list[list[int]] = field(default_factory=list)
    syntax_error_cells: list[int] = field(default_factory=list)

    def left_out_dicts(self) -> list[dict[str, Any]]:
        return [asdict(entry) for entry in self.left_out]


def cells_from_notebook(notebook: Any) -> list[Cell]:
    """The code cells of an ``nbformat`` notebook node, numbered over all cells from 1."""
    cells = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = cell.get("metadata", {}).get("tags", [])
        cells.append(Cell(number, str(source), tuple(str(tag) for tag in tags)))
    return cells


def convert_cells(cells: Sequence[Cell], source_name: str, modules: Sequence[str] = (),
                  label: str = "cell") -> Converted:
    """Turn ``cells`` into module source. ``modules`` are the package's module names (``ch03``...):
    ``from ch03 import X`` becomes a relative import. ``label`` is ``cell`` or ``In`` (kernel history)."""
    result = Converted(source_name=source_name, label=label)
    future: list[tuple[Cell, int, list[str]]] = []
    body: list[tuple[Cell, int, list[str]]] = []
    for cell in cells:
        _convert_cell(cell, result, future, body, modules)
    lines = [HEADER.format(source=source_name), ""]  # the map line is filled in below
    for cell, start, chunk in [*future, *body]:
        result.segments.append([len(lines) + 1, cell.number, start, len(chunk)])
        lines.extend(line + "\n" for line in chunk)
    result.left_out.sort(key=lambda entry: (entry.cell, entry.line))
    lines[1] = MAP_PREFIX + json.dumps({"source": source_name, "label": label,
                                        "segments": result.segments}, separators=(",", ":")) + "\n"
    result.code = "".join(lines)
    return result


def _convert_cell(cell: Cell, result: Converted, future: list[tuple[Cell, int, list[str]]],
                  body: list[tuple[Cell, int, list[str]]], modules: Sequence[str]) -> None:
    raw = cell.source.splitlines()
    first = next((line.strip() for line in raw if line.strip()), "")
    if not first:
        return
    if SKIP_TAG in cell.tags or _SKIP_COMMENT.match(first):
        result.left_out.append(LeftOut(cell.number, 1, first, "cell"))
        return
    if first.startswith("%%"):  # a cell magic: the whole cell is for IPython (%%bash, %%time, ...)
        result.left_out.append(LeftOut(cell.number, 1, first, "magic"))
        return
    lines = _drop_magics(cell, raw, result)
    lines = [_relative_import(line, modules) for line in lines]
    text = "\n".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        result.syntax_error_cells.append(cell.number)
        body.append((cell, 1, lines))  # kept whole: the import fails here, at this cell
        return
    keep_all = KEEP_TAG in cell.tags or bool(_KEEP_COMMENT.match(first))
    for node in tree.body:
        if isinstance(node, ast.Pass):  # also what a dropped magic line became
            continue
        start = min([node.lineno, *(d.lineno for d in _decorators(node))])
        end = node.end_lineno or node.lineno
        chunk = lines[start - 1:end]
        if _is_future_import(node):
            future.append((cell, start, chunk))
        elif _imports_the_checker(node):  # %llmgrade's own module is not part of the graded code
            continue
        elif keep_all or is_definition(node):
            body.append((cell, start, chunk))
        else:
            result.left_out.append(LeftOut(cell.number, start, lines[start - 1].strip(), "statement"))


def _drop_magics(cell: Cell, raw: list[str], result: Converted) -> list[str]:
    """Magic, shell and help lines become ``pass`` (same indentation), keeping line numbers."""
    try:
        ast.parse(cell.source)
        return raw  # valid Python as it is: nothing to drop (a ``%`` line inside a string stays)
    except SyntaxError:
        pass
    lines = []
    for number, line in enumerate(raw, start=1):
        magic = _MAGIC_LINE.match(line) or _HELP_LINE.match(line)
        if magic:
            if not _CHECKER_MAGIC.match(line):  # the checker's own magics are not the student's code
                result.left_out.append(LeftOut(cell.number, number, line.strip(), "magic"))
            indent = line[:len(line) - len(line.lstrip())]
            lines.append(f"{indent}pass")
        else:
            lines.append(line)
    return lines


def _relative_import(line: str, modules: Sequence[str]) -> str:
    for module in modules:
        prefix = f"from {module} import "
        if line.startswith(prefix):
            return f"from .{module} import " + line[len(prefix):]
    return line


def _decorators(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.decorator_list
    return []


def _imports_the_checker(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == CHECKER_MODULE for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == CHECKER_MODULE


def _is_future_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def is_definition(node: ast.stmt) -> bool:
    """Kept at the top level: imports, defs, classes, docstrings, constant assignments to names,
    and ``if``/``try`` blocks made only of those (``try: import x / except ImportError: ...``)."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if isinstance(node, ast.Assign):
        return all(_plain_target(target) for target in node.targets) and _calls_nothing(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None or _calls_nothing(node.value))
    if isinstance(node, ast.If):
        return _calls_nothing(node.test) and _all_definitions([*node.body, *node.orelse])
    if isinstance(node, ast.Try):
        handlers = [stmt for handler in node.handlers for stmt in handler.body]
        return _all_definitions([*node.body, *handlers, *node.orelse, *node.finalbody])
    return isinstance(node, ast.Pass)


def _all_definitions(nodes: list[ast.stmt]) -> bool:
    return all(is_definition(node) for node in nodes)


def _plain_target(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_plain_target(element) for element in target.elts)
    return False


def _calls_nothing(expr: ast.expr) -> bool:
    """No call, await, yield or walrus anywhere (lambda bodies do not run, so they may call)."""
    stack: list[ast.AST] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return False  # a comprehension runs code (and usually calls something)
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return True
