"""Exercise texts in other languages: the docstrings of ``solutions/`` translated, for ``llmgrade init --lang``.

The English texts are the docstrings in ``solutions/<module>.py`` (task, book section, returns, hints).
A translation lives in ``grader/locales/<lang>/exercise_texts/<module>.json``, keyed by the docstring's
owner: ``""`` for the module, ``"GPTModel"``, ``"GPTModel.forward"``, ... Each entry holds the
translated ``text`` and ``source``, the first 12 hex digits of the SHA-256 of the English docstring it
was made from, so a test can say which translations an English edit left stale. Stubs for a language
are made by putting the translated docstrings into the solution's source and then generating the stub
as usual: every other byte (code, markers, comments) stays the same.
"""

from __future__ import annotations

import ast
import hashlib
import json
from importlib import resources
from typing import Any

from grader.errors import SetupError
from grader.textwidth import width, wrap_columns

DocNode = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def source_digest(english: str) -> str:
    return hashlib.sha256(english.encode("utf-8")).hexdigest()[:12]


def docstrings(tree: ast.Module) -> dict[str, tuple[DocNode, ast.Constant]]:
    """Every docstring of ``tree`` by owner name (``""``, ``Class``, ``Class.method``, ``function``)."""
    found: dict[str, tuple[DocNode, ast.Constant]] = {}

    def visit(node: DocNode, name: str) -> None:
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            found[name] = (node, body[0].value)
        for child in body:
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{name}.{child.name}" if name else child.name)

    visit(tree, "")
    return found


def english_texts(source: str) -> dict[str, str]:
    """The cleaned English docstrings of a solution module's ``source``, by owner name."""
    return {name: ast.get_docstring(node) or "" for name, (node, _) in docstrings(ast.parse(source)).items()}


def load_translations(lang: str, module: str) -> dict[str, dict[str, str]]:
    """``grader/locales/<lang>/exercise_texts/<module>.json`` (empty when the language has none)."""
    path = resources.files("grader") / "locales" / lang / "exercise_texts" / f"{module}.json"
    if not path.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError("stubs.unreadable", file=str(path), reason=str(exc)) from exc
    return {key: {"text": str(entry["text"]), "source": str(entry.get("source", ""))}
            for key, entry in data.items()}


LINE_COLUMNS = 99  # the English docstrings' right margin


def _literal(text: str, indent: str) -> str:
    """``text`` as a triple-quoted docstring indented by ``indent``, its long lines wrapped by display
    columns like the English ones (a hint's continuation lines two spaces further in)."""
    body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    out: list[str] = []
    for number, line in enumerate(body.split("\n")):
        start = indent + ('"""' if number == 0 else "")
        if not line:
            out.append(start.rstrip())
            continue
        hanging = indent + ("  " if line.startswith("- ") else "")
        if width(start + line) <= LINE_COLUMNS or line.startswith(">>>"):
            out.append(start + line)
        else:
            out.extend(wrap_columns(line, LINE_COLUMNS, start, hanging))
    if len(out) == 1:
        return out[0].lstrip() + '"""'
    return "\n".join(out).lstrip() + f"\n{indent}" + '"""'


def translate_source(source: str, lang: str, module: str) -> str:
    """``source`` with each docstring that has a translation in ``lang`` replaced by it."""
    translations = load_translations(lang, module)
    if not translations:
        return source
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    raw = source.encode("utf-8")
    spans = []
    for name, (node, constant) in docstrings(ast.parse(source)).items():
        if name not in translations or constant.end_lineno is None or constant.end_col_offset is None:
            continue
        start = offsets[constant.lineno - 1] + constant.col_offset
        end = offsets[constant.end_lineno - 1] + constant.end_col_offset
        indent = " " * constant.col_offset
        spans.append((start, end, _literal(translations[name]["text"], indent)))
    for start, end, text in sorted(spans, reverse=True):
        raw = raw[:start] + text.encode("utf-8") + raw[end:]
    return raw.decode("utf-8")
