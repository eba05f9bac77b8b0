"""Seeing the answer key in a submission: imports of ``reference``, ``solutions``, ``grader`` or
the book author's ``llms_from_scratch``.

Two detectors feed one load-error kind, ``answer_key``: a static scan here, on the trusted side, of
every module file (``import``/``from`` statements, and any string that names such a module, as in
``importlib.import_module("reference.ch04")``, ``__import__("solutions")`` or
``sys.modules["reference.ch02"]``); and an audit hook in the worker (:mod:`grader.sandbox.child`)
that sees the imports the student's code makes at run time, however their names were built. A
module that uses the key is not graded: its items score 0 and the message says where.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from grader.catalog import MODULES
from grader.sandbox.child import ANSWER_KEY_PACKAGES


def names_answer_key(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in ANSWER_KEY_PACKAGES and (name == top or name.startswith(top + "."))


def _uses(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if names_answer_key(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if names_answer_key(node.module):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and names_answer_key(node.value):
            found.append((node.lineno, node.value))
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
            line, name = uses[0]
            lines = source.splitlines()
            report[module] = {"kind": "answer_key", "file": str(path), "line": line,
                              "source_line": lines[line - 1].strip() if line <= len(lines) else "",
                              "message": name}
    return report
