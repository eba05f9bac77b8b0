"""Terminal text measured in columns: a Chinese character takes two, a combining mark none.

``len()`` counts characters, so ``f"{text:<12}"`` misaligns a table as soon as a cell holds wide
characters (East Asian width ``W`` or ``F``). ``char_width``, ``width``, ``ljust`` and ``rjust`` count columns
instead; the terminal output (``grader/runner/summary.py``) wraps long sentences with them.
"""

from __future__ import annotations

import unicodedata


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
