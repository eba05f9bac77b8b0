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
# ... and opening punctuation must not end one: it moves down with what it opens.
_NO_LINE_END = set("（《「『【“‘")


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


def wrap_columns(paragraph: str, columns: int, start: str = "", indent: str = "",
                 hang: bool = True) -> list[str]:
    """A paragraph with Chinese characters (no spaces between words) as lines of ``columns`` columns:
    Latin words stay whole, a line may break between any two Chinese characters, and closing
    punctuation never starts a line. With ``hang`` it hangs one column past the end (fine in a
    file); without, for a terminal, which would wrap it alone onto the next row, the character
    before it moves down with it and opening punctuation never ends a line. ``start`` and ``indent`` open the first and the following lines."""
    lines: list[str] = []
    tokens: list[str] = []  # the current line after its opening
    opening, used = start, width(start)
    for token in re.findall(r"[^\s\u2e80-\uffef]+|\s|.", paragraph):
        size = width(token)
        if used + size > columns and "".join(tokens).strip():
            carried: list[str] = []
            if hang and token in _NO_LINE_START:
                tokens.append(token)
                used += size
                continue
            if token in _NO_LINE_START:
                # take back the closing punctuation already on the line and one character before it
                back = len(tokens)
                while back > 0 and tokens[back - 1] in _NO_LINE_START:
                    back -= 1
                if back > 1 and not tokens[back - 1].isspace() and "".join(tokens[:back - 1]).strip():
                    carried = tokens[back - 1:]
                    tokens = tokens[:back - 1]
            elif len(tokens) > 1 and tokens[-1] in _NO_LINE_END:
                carried = [tokens.pop()]
            if carried or token not in _NO_LINE_START:
                lines.append((opening + "".join(tokens)).rstrip())
                tokens, opening, used = carried, indent, width(indent) + sum(width(t) for t in carried)
                if token.isspace() and not carried:
                    continue
        tokens.append(token)
        used += size
    lines.append((opening + "".join(tokens)).rstrip())
    return lines
