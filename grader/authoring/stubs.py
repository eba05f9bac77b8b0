"""solutions/ -> exercises/: every solution block becomes ``raise NotImplementedError(...)``.

A solution block is the code between two full-line comments, ``# BEGIN SOLUTION`` and
``# END SOLUTION``, inside a function or method body. The generator replaces the whole block, markers
included, with one ``raise NotImplementedError("Exercise <id>: <task>")`` line at the markers'
indentation: ``<id>`` is the catalog item that owns the enclosing top-level def/class and ``<task>``
the first line of the innermost enclosing function's docstring (else the top-level docstring's). Every
other byte of the solution stays as it is, and a short header comment is put on top.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

from grader import catalog
from grader.errors import SetupError
from grader.messages import DEFAULT_LANG, t_in, translated
from grader.authoring.exercise_texts import translate_source
from grader.authoring.packages import package_dir
from grader.textwidth import char_width, wrap_columns

BEGIN = "BEGIN SOLUTION"
END = "END SOLUTION"
_LOOKS_LIKE_MARKER = re.compile(r"^(begin|end)[\s_-]*solutions?\b", re.IGNORECASE)
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=]")
_HEADER_WIDTH = 97
_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENDMARKER}


class StubError(SetupError):
    """A solution file the generator cannot turn into a stub; the message names file and line."""


@dataclass(frozen=True)
class _Marker:
    line: int
    indent: str
    begin: bool


@dataclass(frozen=True)
class _Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    top: ast.stmt


def split_lines(source: str) -> list[str]:
    """Physical lines with their own line endings (``\\n``, ``\\r\\n`` or ``\\r``), as Python counts them."""
    return io.StringIO(source, newline="").readlines()


def make_stub(source: str, module: str, filename: str | None = None, lang: str = DEFAULT_LANG) -> str:
    """The exercise stub for the solution ``source`` of ``module``; raises ``StubError``.

    In another ``lang`` the docstrings are its translations (``exercise_texts.py``), and so are the
    header and the task named in each ``NotImplementedError``.
    """
    file = filename or f"solutions/{module}.py"
    if lang != DEFAULT_LANG:
        make_stub(source, module, filename)  # the English stub's errors name the English file's lines
        source = translate_source(source, lang, module)
    lines = split_lines(source)
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as exc:
        raise StubError("stubs.syntax_error", file=file, line=exc.lineno or 0, reason=exc.msg) from exc
    tokens = list(tokenize.generate_tokens(iter(lines).__next__))
    blocks = _blocks(_markers(tokens, lines, file), file)
    _check_block_contents(tokens, blocks, file)
    functions = _functions(tree)
    code_rows = sorted({tok.start[0] for tok in tokens if tok.type not in _NOT_CODE})

    out = list(lines)
    for begin, end in reversed(blocks):  # back to front, so earlier line numbers stay valid
        message = _message_for(begin, end, functions, code_rows, module, file, lang)
        ending = _line_ending(lines[begin.line - 1])
        out[begin.line - 1:end.line] = [
            f"{begin.indent}raise NotImplementedError({_quote(message)}){ending}"]
    stub = _with_header("".join(out), module, lang)
    try:
        ast.parse(stub, filename=file)
    except SyntaxError as exc:
        raise StubError("stubs.invalid_stub", file=file, line=exc.lineno or 0, reason=exc.msg) from exc
    return stub


def _markers(tokens: list[tokenize.TokenInfo], lines: list[str], file: str) -> list[_Marker]:
    markers: list[_Marker] = []
    depth = 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        if tok.type != tokenize.COMMENT:
            continue
        text = tok.string[1:].strip()
        row, col = tok.start
        if text not in (BEGIN, END):
            if _LOOKS_LIKE_MARKER.match(text):
                raise StubError("stubs.marker_typo", file=file, line=row, comment=tok.string.strip())
            continue
        before = lines[row - 1][:col]
        if depth > 0 or before.strip():
            raise StubError("stubs.marker_not_alone", file=file, line=row)
        markers.append(_Marker(row, before, text == BEGIN))
    return markers


def _blocks(markers: list[_Marker], file: str) -> list[tuple[_Marker, _Marker]]:
    blocks: list[tuple[_Marker, _Marker]] = []
    opened: _Marker | None = None
    for marker in markers:
        if marker.begin:
            if opened is not None:
                raise StubError("stubs.nested", file=file, line=marker.line, opened=opened.line)
            opened = marker
        else:
            if opened is None:
                raise StubError("stubs.end_without_begin", file=file, line=marker.line)
            if marker.indent != opened.indent:
                raise StubError("stubs.marker_indent", file=file, line=marker.line, opened=opened.line)
            blocks.append((opened, marker))
            opened = None
    if opened is not None:
        raise StubError("stubs.begin_without_end", file=file, line=opened.line)
    return blocks


def _check_block_contents(tokens: list[tokenize.TokenInfo], blocks: list[tuple[_Marker, _Marker]],
                          file: str) -> None:
    """Every statement inside a block is indented at least as deep as its markers."""
    starts: list[tuple[int, int]] = []
    at_start = True
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            at_start = True
        elif tok.type not in _NOT_CODE and at_start:
            starts.append(tok.start)
            at_start = False
    for begin, end in blocks:
        for row, col in starts:
            if begin.line < row < end.line and col < len(begin.indent):
                raise StubError("stubs.code_outdented", file=file, line=row, opened=begin.line)


def _functions(tree: ast.Module) -> list[_Function]:
    found: list[_Function] = []
    for top in tree.body:
        for node in ast.walk(top):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(_Function(node, top))
    return found


def _message_for(begin: _Marker, end: _Marker, functions: list[_Function], code_rows: list[int],
                 module: str, file: str, lang: str) -> str:
    enclosing = [f for f in functions if _encloses(f.node, begin, end, code_rows)]
    if not enclosing:
        raise StubError("stubs.outside_function", file=file, line=begin.line)
    inner = max(enclosing, key=lambda f: f.node.lineno)
    top = inner.top
    name = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else ""
    item = catalog.item_for_symbol(module, name)
    if item is None:
        raise StubError("stubs.unknown_symbol", file=file, line=begin.line, name=name, module=module)
    task = _first_line(inner.node) or _first_line(top) or translated(f"item.{item.id}", item.title, lang)
    return t_in(lang, "stub.not_implemented", id=item.id, task=task)


def _encloses(node: ast.FunctionDef | ast.AsyncFunctionDef, begin: _Marker, end: _Marker,
              code_rows: list[int]) -> bool:
    """Whether the block lies in ``node``'s body (trailing comments of the body count as inside)."""
    if len(begin.indent) <= node.col_offset or begin.line <= node.lineno:
        return False
    docstring_end = node.body[0].end_lineno or 0
    if ast.get_docstring(node, clean=False) is not None and begin.line <= docstring_end:
        return False
    last = node.end_lineno or node.lineno
    next_code = next((row for row in code_rows if row > last), None)
    return next_code is None or end.line < next_code


def _first_line(node: ast.stmt) -> str:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return ""
    doc = ast.get_docstring(node) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip()), "")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _line_ending(line: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if line.endswith(ending):
            return ending
    return "\n"


def header(module: str, newline: str = "\n", lang: str = DEFAULT_LANG) -> str:
    """The comment that opens ``exercises/<module>.py``: what the file is and how to check it."""
    example = next(item.id for item in catalog.ITEMS if item.module == module)
    title = translated(f"chapter.{module}", catalog.CHAPTER_TITLES[module], lang)
    sentences = [
        t_in(lang, "stubs.header.what", module=module, title=title),
        t_in(lang, "stubs.header.how"),
        t_in(lang, "stubs.header.check", example=example),
    ]
    return _comment(sentences, newline)


def package_init(lang: str = DEFAULT_LANG) -> str:
    """The text of ``exercises/__init__.py``."""
    return _comment([t_in(lang, "stubs.package_header")], "\n")


def _comment(sentences: list[str], newline: str) -> str:
    lines = [f"# {part}" for sentence in sentences for part in _wrap(sentence)]
    return newline.join(lines) + newline + "#" + newline


def _wrap(sentence: str) -> list[str]:
    """English at spaces (as always); a sentence with Chinese in it by display columns."""
    if any(char_width(c) == 2 for c in sentence):
        return wrap_columns(sentence, _HEADER_WIDTH - 2)  # 2: hanging punctuation
    return textwrap.wrap(sentence, _HEADER_WIDTH)


def _with_header(stub: str, module: str, lang: str) -> str:
    lines = split_lines(stub)
    newline = _line_ending(lines[0]) if lines else "\n"
    keep = 0  # a shebang and an encoding cookie must stay on the first lines
    while keep < min(2, len(lines)) and (
            (keep == 0 and lines[0].startswith("#!")) or _CODING_COOKIE.match(lines[keep])):
        keep += 1
    return "".join(lines[:keep]) + header(module, newline, lang) + "".join(lines[keep:])


def read_source(path: Path) -> str:
    """A solution file's text, byte for byte (no newline translation)."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StubError("stubs.unreadable", file=str(path), reason=str(exc)) from exc


def generate(solutions_dir: Path, exercises_dir: Path, lang: str = DEFAULT_LANG) -> dict[Path, str]:
    """Every exercise file's path and text in ``lang``, generated in memory (nothing is written)."""
    if not solutions_dir.is_dir():
        raise StubError("stubs.missing_folder", path=str(solutions_dir))
    outputs: dict[Path, str] = {exercises_dir / "__init__.py": package_init(lang)}
    for module in catalog.MODULES:
        source_path = solutions_dir / f"{module}.py"
        if not source_path.is_file():
            raise StubError("stubs.missing_solution", file=str(source_path), module=module)
        outputs[exercises_dir / f"{module}.py"] = make_stub(
            read_source(source_path), module, filename=str(source_path), lang=lang)
    return outputs


def build_stubs(solutions_dir: Path | None = None, exercises_dir: Path | None = None,
                check: bool = False) -> list[Path]:
    """Write ``exercises/<module>.py`` for every module, plus ``exercises/__init__.py``.

    The committed exercises are English whatever the language chosen (``--lang``, ``LLMGRADE_LANG``,
    the locale), so they stay byte-for-byte reproducible; ``llmgrade init --lang`` makes translated
    ones. Defaults: the installed ``solutions`` and ``exercises`` packages' folders. Returns the paths
    written; with ``check=True`` writes nothing and returns the paths whose text differs from what
    would be written (missing files included). Every stub is generated before any file is written,
    so a bad solution leaves the exercises untouched.
    """
    solutions_dir = solutions_dir or package_dir("solutions")
    exercises_dir = exercises_dir or package_dir("exercises")
    outputs = generate(solutions_dir, exercises_dir)
    if check:
        return [path for path, text in outputs.items()
                if not path.is_file() or path.read_bytes() != text.encode("utf-8")]
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for path, text in outputs.items():
        path.write_bytes(text.encode("utf-8"))
    return list(outputs)
