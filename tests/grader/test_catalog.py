"""The catalog is read from the declarations in the hidden suites; the solutions' docstrings agree
with it; a declaration the catalog cannot read is a clear error naming the file and the line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from grader import catalog
from grader.catalog import BY_ID, INDEX, ITEMS, MODULES, index_text, load_items, read_declarations, read_index
from grader.checking import declare
from grader.errors import SetupError

ROOT = Path(__file__).resolve().parents[2]
SECTION_LINE = re.compile(r"^\s*Book section: (?P<section>[A-E]?[0-9.]*[0-9])\b(?P<rest>.*)$", re.MULTILINE)
EXERCISE = re.compile(r"\(exercise (?P<number>(?:[A-E]|[0-9]+)\.[0-9]+)\b")
# Older wording of some exercises: "Exercise 2.1 (section 2.5): ..."
EXERCISE_FIRST = re.compile(
    r"^\s*Exercise (?P<number>(?:[A-E]|[0-9]+)\.[0-9]+) \(section (?P<section>[A-E0-9.]*[0-9])\)", re.MULTILINE)


def book_sections(module: str) -> dict[str, tuple[str, str | None]]:
    """Top-level name -> (section, exercise number or None) from its docstring's "Book section:" line
    (or "Exercise N (section S)")."""
    tree = ast.parse((ROOT / "solutions" / f"{module}.py").read_text("utf-8"))
    found: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            docstring = ast.get_docstring(node) or ""
            match = SECTION_LINE.search(docstring)
            if match:
                exercise = EXERCISE.search(match.group("rest"))
                found[node.name] = (match.group("section"), exercise.group("number") if exercise else None)
            elif match := EXERCISE_FIRST.search(docstring):
                found[node.name] = (match.group("section"), match.group("number"))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_solution_docstrings_give_the_catalog_section(module: str) -> None:
    sections = book_sections(module)
    assert sections, f"no 'Book section:' line in solutions/{module}.py (the scan is not vacuous)"
    problems: list[str] = []
    for item in (i for i in ITEMS if i.module == module):
        if item.kind == "component":
            name = item.id.split(".", 1)[1]
            if sections.get(name) != (item.section, None):
                problems.append(f"{item.id}: catalog says section {item.section}, the docstring of {name} says "
                                f"{sections.get(name)}")
        else:
            named = {s: sections[s] for s in item.symbols if s in sections and sections[s][1] is not None}
            if not named or set(named.values()) != {(item.section, item.id)}:
                problems.append(f"exercise {item.id}: catalog says section {item.section}, docstrings say {named}")
    for name, (_, number) in sections.items():
        owner = catalog.item_for_symbol(module, name)
        if number is not None and (owner is None or owner.id != number):
            problems.append(f"{module}.{name} says exercise {number}, but it belongs to {owner and owner.id}")
    assert problems == []


def test_the_section_check_sees_a_disagreement(tmp_path: Path) -> None:
    """The docstring scan reads the section and the exercise number that the test compares."""
    sections = book_sections("ch04")
    assert sections["LayerNorm"] == ("4.2", None)
    assert sections["GPTModelSeparateDropout"] == ("4.6", "4.3")
    assert book_sections("ch02")["exercise_2_1_bpe_pieces"] == ("2.5", "2.1")
    assert book_sections("appendix_a")["exercise_a_3_num_parameters"] == ("A.5", "A.3")
    assert BY_ID["4.3"].section == "4.6" and BY_ID["ch04.LayerNorm"].section == "4.2"


# ---- the catalog read from declarations ---------------------------------------------------------

GOOD = '''
import pytest
from grader.checking.declare import component, problem

EX2 = problem("9.2", "ch02", section="2.10", title="Second", points=1, symbols=("ex_b",))
LATE = component("ch02", "Late", section="2.10", title="Late", points=2, depends=("ch02.Early",))
EARLY = component("ch02", "Early", section="2.9", title="Early", points=1.5,
                  symbols=("Early", "helper"))
pytestmark = problem("9.1", "ch02", section="2.3", title="First", points=1, symbols=("ex_a",),
                     hidden=True)


def test_x():
    component("ch02", "NotRead", section="1", title="t", points=1)
'''


def suites(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text, "utf-8")
    return tmp_path


def test_items_come_from_top_level_declarations_in_catalog_order(tmp_path: Path) -> None:
    items = load_items(suites(tmp_path, test_ch02_demo=GOOD))
    assert [i.id for i in items] == ["ch02.Early", "ch02.Late", "9.1", "9.2"]  # 2.9 before 2.10
    early, late, first, _ = items
    assert early.symbols == ("Early", "helper") and early.points == 1.5 and early.kind == "component"
    assert late.symbols == ("Late",) and late.depends == ("ch02.Early",)
    assert first.hidden and first.kind == "problem" and first.section == "2.3"
    assert [line for _, line in read_declarations(tmp_path / "test_ch02_demo.py")] == [5, 6, 7, 9]


@pytest.mark.parametrize(("text", "message_id", "line"), [
    ('X = component("ch02", "A", section=SECTION, title="t", points=1)\n', "catalog.not_literal", 1),
    ('\nX = component("ch02", "A", **ARGS)\n', "catalog.not_literal", 2),
    ('X = component("ch02", "A", section="2.1", title="t")\n', "catalog.bad_declaration", 1),
    ('X = component("ch02", "A", section="2.1", title="t", points=1, colour="red")\n', "catalog.bad_declaration", 1),
    ('X = component("ch03", "A", section="3.1", title="t", points=1)\n', "catalog.wrong_module", 1),
    ('X = component("ch02", "A", section="2.1", title="t", points=1)\n'
     'Y = component("ch02", "A", section="2.1", title="t", points=1)\n', "catalog.duplicate", 2),
    ('X = component("ch02", "A", section="2.1", title="t", points=1, depends=("ch02.Nope",))\n',
     "catalog.unknown_dependency", 1),
    ('X = component("ch02", "A", section="2.1", title="t", points=1)\n'
     'Y = problem("2.1", "ch02", section="2.1", title="t", points=1, symbols=("A",))\n', "catalog.symbol_twice", 2),
])
def test_a_declaration_the_catalog_cannot_use_names_file_and_line(tmp_path: Path, text: str, message_id: str,
                                                                 line: int) -> None:
    folder = suites(tmp_path, test_ch02_demo=text)
    with pytest.raises(SetupError) as caught:
        load_items(folder)
    assert caught.value.message_id == message_id
    assert caught.value.params["file"] == str(folder / "test_ch02_demo.py")
    assert caught.value.params["line"] == line
    assert "test_ch02_demo.py" in str(caught.value) and f"line {line}" in str(caught.value)


def test_a_file_not_named_for_a_module_declares_nothing_valid(tmp_path: Path) -> None:
    folder = suites(tmp_path, test_misc=GOOD)
    with pytest.raises(SetupError) as caught:
        load_items(folder)
    assert caught.value.message_id == "catalog.wrong_module"


def test_a_declaration_the_catalog_did_not_read_fails_at_collection() -> None:
    """A call inside a function, with other values or in an instructor's folder is not in the catalog.
    (That the real declarations mark their checks is shown by tests/grader/test_suites_catalog.py.)"""
    item = BY_ID["ch04.LayerNorm"]
    with pytest.raises(SetupError) as caught:
        declare.component(item.module, "LayerNorm", item.section, item.title, item.points + 1)
    assert caught.value.message_id == "catalog.not_in_catalog"
    with pytest.raises(SetupError):
        declare.problem("9.9", "ch04", "4.6", "Not declared", 1, ("nothing",))


def test_every_suite_declaration_is_in_the_catalog() -> None:
    """Reading the real suites gives the catalog (and each item is declared in a file of its module)."""
    declared = [item for path in sorted(catalog.SUITES_DIR.glob("test_*.py")) for item, _ in read_declarations(path)]
    assert sorted(i.id for i in declared) == sorted(i.id for i in ITEMS)
    assert len(ITEMS) == len(BY_ID)


def test_the_index_is_what_the_suites_declare() -> None:
    """grader/catalog_index.json (what the sandboxed worker reads) is current: if this fails, run
    `python -m grader.catalog` and commit the index."""
    assert read_index() == load_items() == ITEMS


def test_the_index_round_trips_and_a_broken_one_is_a_clear_error(tmp_path: Path) -> None:
    copy = tmp_path / "index.json"
    copy.write_text(index_text(ITEMS), "utf-8")
    assert read_index(copy) == ITEMS
    copy.write_text(INDEX.read_text("utf-8")[:200], "utf-8")
    with pytest.raises(SetupError) as caught:
        read_index(copy)
    assert caught.value.message_id == "catalog.index_unreadable" and str(copy) in str(caught.value)
