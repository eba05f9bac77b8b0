"""Where a submission's own files name the grader's code: a note for the instructor, never a grade.

The worker that grades an item holds no reference code of that item (``grader/sandbox/views.py``)
and cannot see ``reference/``, ``solutions/``, the checks or the book author's installed
``llms_from_scratch`` at all (``grader/sandbox/policy.py``): there is nothing to reach, so nothing
a student's code does at run time is taken for a use of the answer key, and nothing is scored for
it. What stays is this scan of the files, on the trusted side: every ``import``/``from`` of those
packages and every string that names one (``importlib.import_module("reference.ch04")``), with its
file and line. The instructor's class report lists them; the student's grade does not change
(such an import finds only what the item builds on, or fails, and then the load error says so).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from grader.catalog import MODULES
from grader.sandbox.policy import GRADER_PACKAGES
MAX_PER_FILE = 20


def names_grader_code(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in GRADER_PACKAGES and (name == top or name.startswith(top + "."))


def _names(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, name)`` for each place the file names one of :data:`GRADER_PACKAGES`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if names_grader_code(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if names_grader_code(node.module):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and names_grader_code(node.value):
            found.append((node.lineno, node.value))
    return sorted(set(found))


def scan(folder: Path) -> list[dict[str, Any]]:
    """``[{module, file, line, source_line, name}]``: where the chapter files name the grader's code."""
    notes: list[dict[str, Any]] = []
    for module in MODULES:
        path = folder / f"{module}.py"
        try:
            source = path.read_text("utf-8", "replace")
            tree = ast.parse(source, str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # a missing or broken file is reported by the worker's load
        lines = source.splitlines()
        for line, name in _names(tree)[:MAX_PER_FILE]:
            notes.append({"module": module, "file": str(path), "line": line, "name": name[:200],
                          "source_line": lines[line - 1].strip()[:200] if line <= len(lines) else ""})
    return notes
