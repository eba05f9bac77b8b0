"""Terminal text measured in columns: a Chinese character takes two, a combining mark none.

``len()`` counts characters, so ``f"{text:<12}"`` misaligns a table as soon as a cell holds wide
characters (East Asian width ``W`` or ``F``). ``char_width``, ``width``, ``ljust`` and ``rjust``
count columns instead, and ``wrap_columns`` breaks text with Chinese in it by columns (the terminal output in
``grader/runner/summary.py``, the translated exercise texts in ``grader/authoring/exercise_texts.py``).
"""

from __future__ import annotations

import re
import unicodedata

# Closing punctuation must not start a line (Chinese line breaking): it hangs at the end instead.
_NO_LINE_START = set("，。、；：？！）》」』】”’")


def char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal."""
    return sum(char_width(c) for c in text)


def ljust(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` columns (unchanged if already wider)."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    """``text`` with spaces in front to take ``columns`` columns (unchanged if already wider)."""
    return " " * max(0, columns - width(text)) + text


def wrap_columns(paragraph: str, columns: int, start: str = "", indent: str = "") -> list[str]:
    """A paragraph with Chinese characters (no spaces between words) as lines of ``columns`` columns:
    Latin words stay whole, a line may break between any two Chinese characters, and closing
    punctuation hangs past the end rather than start a line. ``start`` and ``indent`` open the first
    and the following lines."""
    lines, line, used = [], start, width(start)
    for token in re.findall(r"[^\s\u2e80-\uffef]+|\s|.", paragraph):
        size = width(token)
        if used + size > columns and line.strip() and token not in _NO_LINE_START:
            lines.append(line.rstrip())
            line, used = indent, width(indent)
            if token.isspace():
                continue
        line += token
        used += size
    lines.append(line.rstrip())
    return lines
