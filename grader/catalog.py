"""The one catalog of every gradable item, read from the hidden suites that grade them.

An item is either a *component* (a class or function the book builds, id ``<module>.<name>``) or a
*problem* (an end-of-section exercise, id = the book's number, "3.2"). Each item is declared once,
at the top level of the suite file that grades it (``grader/suites/test_<module>_<topic>.py``)::

    LN = component("ch04", "LayerNorm", section="4.2", title="Layer normalization", points=2)
    EX43 = problem("4.3", "ch04", section="4.6", title="Using separate dropout parameters", points=2,
                   symbols=("exercise_4_3_config", "TransformerBlockSeparateDropout"),
                   depends=("ch04.GPTModel",))

The arguments are literal data. This module reads them from the suites' source text (``ast``,
nothing is imported or run) and keeps what they say in ``grader/catalog_index.json``, a generated
file (``python -m grader.catalog`` rewrites it; ``tests/grader/test_catalog.py`` fails when it is
stale): the CLI, the stub generator and the sandboxed worker, which cannot see the hidden suites,
read the index. In the suite, the same call returns the ``@pytest.mark.item(id)`` marker for that
item's checks (:mod:`grader.checking.declare`), and refuses a declaration the index does not hold.

``symbols`` are the top-level names in ``solutions/<module>.py`` (and so in the student's
``exercises/<module>.py``) that belong to the item: the stub generator uses them to name the
exercise in each ``NotImplementedError``, and the grader to report a missing name.
``helpers`` are further top-level names that belong to the item (a constant such as
``GPT_CONFIG_124M`` that the book keeps in a notebook cell, a helper the book does not have) but
that a submission may lack: the book's own code must not lose the item for them. A missing helper
is reported by its own extension check, never by the item's load status.
``depends`` lists items whose code the item calls; the grader also grades an item with the
reference versions of those swapped in, so a mistake is charged once, to its root cause.
``uses`` lists items whose *reference* code the item's checks build with and never run the
student's version of (``generate_text_simple`` drives a reference ``GPTModel``): no blame follows
them. The worker that grades an item holds the reference of these two lists, transitively, and
nothing else of the reference (:mod:`grader.sandbox.views`); so the graph over both has no cycle.
Items are listed by module, components before problems, then by book section (problems by number).
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from grader.errors import SetupError

Kind = Literal["component", "problem"]

MODULES: tuple[str, ...] = (
    "ch02",
    "ch03",
    "ch04",
    "ch05",
    "ch06",
    "ch07",
    "appendix_a",
    "appendix_d",
    "appendix_e",
)

CHAPTER_TITLES: dict[str, str] = {
    "ch02": "Working with text data",
    "ch03": "Coding attention mechanisms",
    "ch04": "Implementing a GPT model from scratch",
    "ch05": "Pretraining on unlabeled data",
    "ch06": "Fine-tuning for classification",
    "ch07": "Fine-tuning to follow instructions",
    "appendix_a": "Introduction to PyTorch",
    "appendix_d": "Adding bells and whistles to the training loop",
    "appendix_e": "Parameter-efficient fine-tuning with LoRA",
}


SUITES_DIR = Path(__file__).resolve().with_name("suites")
# What the declarations say, as plain data: the sandboxed worker cannot see the hidden suites.
INDEX = Path(__file__).resolve().with_name("catalog_index.json")
_SUITE_NAME = re.compile(r"test_(ch0\d|appendix_[a-z])_\w+\.py$")


@dataclass(frozen=True)
class Item:
    id: str
    module: str
    section: str
    title: str
    points: float
    kind: Kind
    symbols: tuple[str, ...]
    depends: tuple[str, ...] = ()
    hidden: bool = False
    helpers: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every top-level name of the item: its required symbols, then its optional helpers."""
        return self.symbols + self.helpers

    @property
    def chapter(self) -> str:
        return self.module


def component_item(module: str, name: str, section: str, title: str, points: float,
                   depends: tuple[str, ...] = (), symbols: tuple[str, ...] = (), hidden: bool = False,
                   helpers: tuple[str, ...] = (), uses: tuple[str, ...] = ()) -> Item:
    """The item that ``component(...)`` in a suite declares (``symbols`` default to ``(name,)``)."""
    return Item(f"{module}.{name}", module, section, title, points, "component",
                tuple(symbols) or (name,), tuple(depends), hidden, tuple(helpers), tuple(uses))


def problem_item(number: str, module: str, section: str, title: str, points: float, symbols: tuple[str, ...],
                 depends: tuple[str, ...] = (), hidden: bool = False, uses: tuple[str, ...] = ()) -> Item:
    """The item that ``problem(...)`` in a suite declares."""
    return Item(number, module, section, title, points, "problem", tuple(symbols), tuple(depends), hidden,
                (), tuple(uses))


DECLARATIONS: dict[str, Callable[..., Item]] = {"component": component_item, "problem": problem_item}


# A declaration starts a line: ``NAME = component(``, ``NAME: Any = problem(`` or a bare call.
_DECLARATION = re.compile(r"^(?:[A-Za-z_]\w*\s*(?::[^=\n]*)?=\s*)?(component|problem)\(", re.MULTILINE)


def _literal(node: ast.expr, path: Path, line: int) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SetupError("catalog.not_literal", file=str(path), line=line) from None


def _statement(lines: list[str], first: int, path: Path) -> ast.Call:
    """The declaration call whose statement starts on line index ``first`` (a few lines at most)."""
    for last in range(first, min(first + 12, len(lines))):
        try:
            tree = ast.parse("\n".join(lines[first:last + 1]))
        except SyntaxError:
            continue
        value = getattr(tree.body[0], "value", tree.body[0]) if tree.body else None
        if isinstance(value, ast.Call):
            return value
        break
    raise SetupError("catalog.bad_declaration", file=str(path), line=first + 1,
                     reason="not a single call statement")


def read_declarations(path: Path) -> list[tuple[Item, int]]:
    """The items declared in one suite file, each with the line of its declaration.

    Only the declaration statements are parsed (the suites are not imported): quick enough for
    every CLI call and every worker start.
    """
    text = path.read_text("utf-8")
    lines = text.splitlines()
    found: list[tuple[Item, int]] = []
    for match in _DECLARATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        call = _statement(lines, line - 1, path)
        if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
            raise SetupError("catalog.not_literal", file=str(path), line=line)
        args = [_literal(a, path, line) for a in call.args]
        kwargs = {str(k.arg): _literal(k.value, path, line) for k in call.keywords}
        try:
            item = DECLARATIONS[match.group(1)](*args, **kwargs)
        except TypeError as error:
            raise SetupError("catalog.bad_declaration", file=str(path), line=line, reason=str(error)) from None
        found.append((item, line))
    return found


def _order_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """"3.10" after "3.9"; "A.5" by its letter, then its number."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in text.split("."))


def load_items(folder: Path = SUITES_DIR) -> tuple[Item, ...]:
    """Every item declared in ``folder``'s suites, checked for consistency and in catalog order."""
    declared: list[tuple[Item, Path, int]] = []
    for path in sorted(folder.glob("test_*.py")):
        declared.extend((item, path, line) for item, line in read_declarations(path))
    seen: dict[str, tuple[Path, int]] = {}
    for item, path, line in declared:
        match = _SUITE_NAME.search(path.name)
        if item.module not in MODULES or match is None or match.group(1) != item.module:
            raise SetupError("catalog.wrong_module", file=str(path), line=line, id=item.id, module=item.module,
                             modules=", ".join(MODULES))
        if item.id in seen:
            raise SetupError("catalog.duplicate", file=str(path), line=line, id=item.id,
                             first=f"{seen[item.id][0]}:{seen[item.id][1]}")
        seen[item.id] = (path, line)
    for item, path, line in declared:
        unknown = [dep for dep in (*item.depends, *item.uses) if dep not in seen]
        if unknown:
            raise SetupError("catalog.unknown_dependency", file=str(path), line=line, id=item.id,
                             depends=", ".join(unknown))
    cycle = _cycle({item.id: (*item.depends, *item.uses) for item, _, _ in declared})
    if cycle:
        path, line = seen[cycle[0]]
        raise SetupError("catalog.dependency_cycle", file=str(path), line=line, cycle=" -> ".join(cycle))
    owners: dict[tuple[str, str], str] = {}
    for item, path, line in declared:
        for symbol in item.names:
            other = owners.setdefault((item.module, symbol), item.id)
            if other != item.id:
                raise SetupError("catalog.symbol_twice", file=str(path), line=line, id=item.id, symbol=symbol,
                                 other=other)

    def order(entry: tuple[Item, Path, int]) -> tuple[Any, ...]:
        item, path, line = entry
        return (MODULES.index(item.module), item.kind != "component",
                _order_key(item.id if item.kind == "problem" else item.section), path.name, line)

    return tuple(item for item, _, _ in sorted(declared, key=order))


def _cycle(needs: dict[str, tuple[str, ...]]) -> list[str]:
    """A cycle in the graph ``item -> depends + uses`` (as a path back to its start), or ``[]``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return []
        for dep in needs.get(node, ()):
            found = visit(dep, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in needs:
        found = visit(start, [])
        if found:
            return found
    return []


def index_text(items: tuple[Item, ...]) -> str:
    """The index file's text for ``items``: one JSON object per item, in catalog order."""
    return json.dumps([asdict(item) for item in items], ensure_ascii=False, indent=1) + "\n"


def read_index(path: Path = INDEX) -> tuple[Item, ...]:
    """The items of ``grader/catalog_index.json`` (written by ``python -m grader.catalog``)."""
    try:
        rows = json.loads(path.read_text("utf-8"))
        return tuple(Item(**{**row, "symbols": tuple(row["symbols"]), "depends": tuple(row["depends"]),
                             "helpers": tuple(row.get("helpers", ())), "uses": tuple(row.get("uses", ()))})
                     for row in rows)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise SetupError("catalog.index_unreadable", file=str(path), reason=str(error)) from None


ITEMS: tuple[Item, ...] = read_index()

BY_ID: dict[str, Item] = {item.id: item for item in ITEMS}


def resolve(selector: str) -> str | None:
    """The catalog id or module that ``selector`` names, ignoring case (``CH3``, ``ch03.mha`` is not
    one: see :func:`suggest`); ``None`` when it names nothing."""
    if selector in BY_ID or selector in MODULES:
        return selector
    folded = selector.strip().casefold()
    short = re.fullmatch(r"ch(\d)", folded)
    if short:
        folded = f"ch0{short.group(1)}"
    for name in (*BY_ID, *MODULES):
        if name.casefold() == folded:
            return name
    return None


def _initials(name: str) -> str:
    return "".join(ch for ch in name if ch.isupper()).casefold()


def suggest(selector: str) -> str | None:
    """The id or module a mistyped ``selector`` most likely meant (``ch03.MHA`` ->
    ``ch03.MultiHeadAttention``, ``ch03.MultiheadAtention`` too), or ``None``."""
    folded = selector.strip().casefold()
    module, _, name = folded.partition(".")
    if name:  # an abbreviation of a component's name, e.g. MHA
        for item in ITEMS:
            if item.kind == "component" and item.module.casefold() == module \
                    and _initials(item.id.partition(".")[2]) == name:
                return item.id
    names = {name.casefold(): name for name in (*BY_ID, *MODULES)}
    close = difflib.get_close_matches(folded, list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None


def items_for(selectors: list[str] | tuple[str, ...] = ()) -> list[Item]:
    """Items matching ids or module names (``ch03``), ignoring case; all items when ``selectors`` is
    empty.

    Raises ``KeyError`` with the first unknown selector.
    """
    if not selectors:
        return list(ITEMS)
    chosen: list[Item] = []
    for sel in selectors:
        name = resolve(sel)
        if name is None:
            raise KeyError(sel)
        matches = [BY_ID[name]] if name in BY_ID else [item for item in ITEMS if item.module == name]
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def item_for_symbol(module: str, symbol: str) -> Item | None:
    """The item that owns top-level ``symbol`` of ``module``, if any."""
    for item in ITEMS:
        if item.module == module and symbol in item.names:
            return item
    return None


def max_score(items: list[Item] | tuple[Item, ...] = ITEMS) -> float:
    return float(sum(item.points for item in items))


def main(argv: list[str]) -> int:
    """``python -m grader.catalog``: rewrite the index from the suites' declarations; ``--check``
    only says whether it is current (exit code 1 when not)."""
    from grader.messages import t

    items = load_items()
    text = index_text(items)
    if "--check" in argv:
        current = INDEX.exists() and INDEX.read_text("utf-8") == text
        print(t("catalog.index_current" if current else "catalog.index_stale", file=str(INDEX)))
        return 0 if current else 1
    INDEX.write_text(text, "utf-8")
    print(t("catalog.index_written", file=str(INDEX), count=len(items)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
