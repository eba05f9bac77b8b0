"""Seeing the answer key in a submission: imports of ``reference``, ``solutions``, ``grader`` or
the book author's ``llms_from_scratch``, and the ways into the worker's own objects that would reach it.

Two detectors feed one load-error kind, ``answer_key``: a static scan here, on the trusted side, of
every module file (``import``/``from`` statements, any string that names such a module, as in
``importlib.import_module("reference.ch04")``, ``__import__("solutions")`` or
``sys.modules["reference.ch02"]``, and the names that reach into other code's objects:
``__globals__``, ``f_back``, ``gc.get_objects`` ...); and the tripwire in the worker
(:mod:`grader.sandbox.key_watch`), which sees what the student's code does at run time, however
its names were built. The scan runs where the student cannot reach it; the tripwire sees what the
scan cannot. A module that uses the key is not graded: its items score 0 and the message says where.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from grader.catalog import MODULES
from grader.sandbox.key_watch import ANSWER_KEY_PACKAGES


def names_answer_key(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in ANSWER_KEY_PACKAGES and (name == top or name.startswith(top + "."))


# Names whose only use in graded code is to reach other code's objects: a function's globals and
# closure, frames, the garbage collector's lists, a module's raw attribute access.
REACH_NAMES = frozenset({"__globals__", "__closure__", "cell_contents", "f_globals", "f_locals", "f_back",
                         "tb_frame", "gi_frame", "cr_frame", "_getframe", "_current_frames", "get_objects",
                         "get_referrers", "get_referents", "__getattribute__", "__subclasses__"})


def _uses(tree: ast.AST) -> list[tuple[int, str, str]]:
    """``(line, how, name)``: how is ``import`` (names the key) or ``reach`` (reaches other code's objects)."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, "import", alias.name) for alias in node.names if names_answer_key(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if names_answer_key(node.module):
                found.append((node.lineno, "import", node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if names_answer_key(node.value):
                found.append((node.lineno, "import", node.value))
            elif node.value in REACH_NAMES:
                found.append((node.lineno, "reach", node.value))
        elif isinstance(node, ast.Attribute) and node.attr in REACH_NAMES:
            found.append((node.lineno, "reach", node.attr))
        elif isinstance(node, ast.Name) and node.id in REACH_NAMES:
            found.append((node.lineno, "reach", node.id))
    return sorted(found)


def scan(folder: Path) -> dict[str, dict[str, Any]]:
    """``{module: load error}`` for each module file whose source names the answer key."""
    report: dict[str, dict[str, Any]] = {}
    for module in MODULES:
        path = folder / f"{module}.py"
        try:
            source = path.read_text("utf-8", "replace")
            tree = ast.parse(source, str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # a missing or broken file is reported by the worker's load
        uses = _uses(tree)
        if uses:
            line, how, name = uses[0]
            lines = source.splitlines()
            report[module] = {"kind": "answer_key", "use": how, "file": str(path), "line": line,
                              "source_line": lines[line - 1].strip() if line <= len(lines) else "",
                              "message": name}
    return report
