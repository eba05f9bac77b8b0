"""Where a line of a generated module came from: ``ch03.ipynb, cell 14, line 3``.

A module generated from a notebook (:mod:`grader.notebooks.convert`) carries its line map in its
second line. This reads it back on the trusted side, defensively: the file lies in the folder the
student's code runs in, so a map that is missing, unreadable or malformed only means the location
is shown as the module's own file and line, never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grader.messages import t
from grader.notebooks.convert import MAP_PREFIX

_MAX_MAP_BYTES = 1 << 20


@dataclass(frozen=True)
class Location:
    source: str  # the notebook's file name (or the kernel's name for its history)
    label: str  # "cell" or "In"
    cell: int
    line: int

    def __str__(self) -> str:
        if self.label == "In":
            return t("notebooks.where_kernel", cell=self.cell, line=self.line)
        return t("notebooks.where", source=self.source, cell=self.cell, line=self.line)


def notebook_location(file: str | None, line: int | None, root: Path | None = None) -> Location | None:
    """The cell and line that ``file``:``line`` came from, or ``None`` if it is not a generated module.

    ``root`` is the graded folder: a path the worker reported from inside its sandbox
    (``/llmgrade/pkg/submission/ch03.py``) is looked up there by its name.
    """
    if not file or line is None:
        return None
    if root is not None and not Path(file).exists():
        file = str(root / Path(file).name)
    try:
        with open(file, encoding="utf-8") as fh:
            fh.readline()
            second = fh.readline(_MAX_MAP_BYTES)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not second.startswith(MAP_PREFIX):
        return None
    try:
        data = json.loads(second[len(MAP_PREFIX):])
        source, label, segments = str(data["source"]), str(data["label"]), data["segments"]
        for start, cell, cell_start, count in segments:
            values = (start, cell, cell_start, count)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                return None
            if start <= line < start + count:
                return Location(Path(source).name, label, cell, cell_start + line - start)
    except (ValueError, KeyError, TypeError):
        return None
    return None


def describe(file: str | None, line: int | None, root: Path | None = None) -> str:
    """``ch03.ipynb, cell 14, line 3`` for a generated module, else ``ch03.py:17`` (``?`` if unknown)."""
    found = notebook_location(file, line, root)
    if found is not None:
        return str(found)
    if not file:
        return "?"
    return f"{Path(file).name}:{line}" if line is not None else Path(file).name
