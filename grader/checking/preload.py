"""Libraries the fork server imports once for all of a run's workers (trusted side).

The book's modules and readers' notebooks import matplotlib (the plotting listings) and pandas
(chapter 6's data) at the top. Every item's worker is forked fresh from the fork server, so each
one imported them again: ``matplotlib.pyplot`` costs about 0.45 CPU seconds in a fresh process (its
font list is built anew in every worker's empty home), pandas 0.25. A full grade of the model
answers as notebooks spent 39 CPU seconds in its workers where the ``.py`` files spend 8.

The student's files are only parsed here, never run. A library that one of them imports and that
the fork server knows (:data:`grader.sandbox.child.PRELOADABLE`) is imported by the fork server
from the installed packages before any worker is forked: its interpreter (``-I``, only the grader
on ``sys.path``) cannot reach the submission. A submission that has a file or folder of that name
itself gets no preload, so its own module still shadows the library, as it would without this.
"""

from __future__ import annotations

import ast
from pathlib import Path

from grader.sandbox.child import PRELOADABLE

MAX_FILE_BYTES = 2 * 1024**2  # larger files are not parsed for this (staging has its own caps)
MAX_TOTAL_BYTES = 8 * 1024**2  # nor more than this in all: parsing runs before the fork server starts
# The top-level package a student imports -> what the fork server imports for it.
PRELOADS = {"matplotlib": "matplotlib.pyplot", "pandas": "pandas"}


def _imported(source: bytes, name: str) -> set[str]:
    """The top-level package names ``source`` imports (absolute imports, anywhere in the file)."""
    try:
        tree = ast.parse(source, filename=name)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def libraries_to_preload(submission: Path) -> list[str]:
    """What the fork server should import for ``submission`` (a staged folder): sorted, possibly empty.
    It runs before the fork server starts, so a file that names none of :data:`PRELOADS` is not parsed
    (of the model answers, only ch06.py, whose docstring says "no pandas")."""
    try:
        entries = list(submission.iterdir())
    except OSError:
        return []
    own = {entry.name.removesuffix(".py") for entry in entries}
    wanted: set[str] = set()
    budget = MAX_TOTAL_BYTES
    for path in sorted(entries):
        if path.suffix != ".py" or path.is_symlink() or not path.is_file():
            continue
        try:
            size = path.stat().st_size
            if size > min(MAX_FILE_BYTES, budget):
                continue
            budget -= size
            source = path.read_bytes()
        except OSError:
            continue
        if any(library.encode() in source for library in PRELOADS):
            wanted.update(PRELOADS[name] for name in _imported(source, path.name)
                          if name in PRELOADS and name not in own)
    return sorted(wanted & PRELOADABLE)
