"""The committed solutions/ and exercises/ trees agree with each other and with the catalog.

(a) exercises/ is exactly what build-stubs generates; (b) both trees expose the same public names and
signatures; (c) every stub module imports and every stubbed function or method raises
NotImplementedError naming its exercise; (d) every catalog symbol exists in solutions/.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from grader import catalog
from grader.authoring.packages import package_dir
from grader.authoring.stubs import BEGIN, build_stubs, make_stub, read_source
from grader.authoring.workspace import find_submission, init_workspace, module_files
from tests.helpers import load

SOLUTIONS = package_dir("solutions")
EXERCISES = package_dir("exercises")


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)


def _load(tree: str, module: str) -> ModuleType:
    return load(tree, module)  # the chapters import each other by plain name (tests/helpers.py)


# ---- (a) the committed exercises are what build-stubs generates ---------------------------------

@pytest.mark.parametrize("module", catalog.MODULES)
def test_committed_stub_matches_its_solution(module: str) -> None:
    source = SOLUTIONS / f"{module}.py"
    stub = EXERCISES / f"{module}.py"
    assert source.is_file(), f"{source} is missing"
    assert stub.is_file(), f"{stub} is missing: run `llmgrade build-stubs`"
    expected = make_stub(read_source(source), module, filename=str(source))
    assert stub.read_bytes() == expected.encode("utf-8"), f"{stub} is stale: run `llmgrade build-stubs`"


def test_build_stubs_check_finds_no_differences() -> None:
    assert build_stubs(check=True) == []


def test_no_solution_marker_or_solution_text_leaks_into_exercises() -> None:
    for name in module_files():
        text = (EXERCISES / name).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, name


# ---- (b) same public names and signatures ---------------------------------------------------------

def _public(module: ModuleType) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_")}


def _own(module: ModuleType) -> dict[str, Any]:
    """Public functions and classes defined in ``module`` itself."""
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__}


def _signatures(obj: Any) -> dict[str, str]:
    """The signature of a function, or of a class and every method it defines."""
    if inspect.isfunction(obj):
        return {"": str(inspect.signature(obj))}
    found: dict[str, str] = {}
    try:
        found[""] = str(inspect.signature(obj))
    except (TypeError, ValueError):
        pass
    for name, member in vars(obj).items():
        func = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        if inspect.isfunction(func):
            found[name] = str(inspect.signature(func))
    return found


@pytest.mark.parametrize("module", catalog.MODULES)
def test_same_public_names_and_signatures(module: str) -> None:
    solution, exercise = _load("solutions", module), _load("exercises", module)
    assert _public(solution) == _public(exercise)
    ours, theirs = _own(solution), _own(exercise)
    assert set(ours) == set(theirs)
    for name, obj in ours.items():
        assert _signatures(obj) == _signatures(theirs[name]), f"{module}.{name}"


# ---- (c) stubs import and raise NotImplementedError naming their exercise -------------------------

def _stubbed(module: str) -> list[tuple[str, str | None]]:
    """(top-level name, method name or None) of every function or method holding a solution block.

    Found from the solution source: a ``# BEGIN SOLUTION`` line inside the function but not inside a
    function nested in it.
    """
    source = (SOLUTIONS / f"{module}.py").read_text(encoding="utf-8")
    begins = [n for n, line in enumerate(source.splitlines(), 1) if line.strip() == f"# {BEGIN}"]

    def holds_block(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        nested = [(inner.lineno, inner.end_lineno or inner.lineno) for inner in ast.walk(node)
                  if inner is not node and isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef))]
        end = node.end_lineno or node.lineno
        return any(node.lineno < line <= end and not any(a <= line <= b for a, b in nested)
                   for line in begins)

    targets: list[tuple[str, str | None]] = []
    for top in ast.parse(source).body:
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) and holds_block(top):
            targets.append((top.name, None))
        elif isinstance(top, ast.ClassDef):
            targets.extend((top.name, node.name) for node in top.body
                           if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                           and holds_block(node))
    return targets


def _call_with_nones(func: Callable[..., Any]) -> None:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            args.append(None)
        elif param.kind == param.KEYWORD_ONLY:
            kwargs[param.name] = None
    func(*args, **kwargs)


@pytest.mark.parametrize("module", catalog.MODULES)
def test_every_stub_raises_not_implemented_naming_its_exercise(module: str) -> None:
    stubs = _load("exercises", module)
    targets = _stubbed(module)
    assert targets, f"solutions/{module}.py has no solution blocks"
    problems: list[str] = []
    for top, method in targets:
        item = catalog.item_for_symbol(module, top)
        assert item is not None, f"{module}.{top} is not owned by a catalog item"
        obj = getattr(stubs, top)
        func = obj if method is None else getattr(object.__new__(obj), method)
        where = f"{module}.{top}" + (f".{method}" if method else "")
        try:
            _call_with_nones(func)
        except NotImplementedError as exc:
            if not str(exc).startswith(f"Exercise {item.id}: "):
                problems.append(f"{where}: message {str(exc)!r} does not name Exercise {item.id}")
        except Exception as exc:  # given code before the block failed on None arguments
            problems.append(f"{where}: raised {type(exc).__name__}: {exc}")
        else:
            problems.append(f"{where}: returned without raising NotImplementedError")
    assert not problems, "\n".join(problems)


# ---- (d) every catalog symbol exists in solutions -------------------------------------------------

@pytest.mark.parametrize("module", catalog.MODULES)
def test_every_catalog_symbol_exists_in_solutions(module: str) -> None:
    solution = _load("solutions", module)
    missing = [f"{item.id}: {symbol}" for item in catalog.ITEMS if item.module == module
               for symbol in item.names if not hasattr(solution, symbol)]
    assert not missing


def test_init_copies_the_real_exercises(tmp_path: Path) -> None:
    target = init_workspace(tmp_path / "ws")
    for name in ["__init__.py", *module_files()]:
        assert (target / name).read_bytes() == (EXERCISES / name).read_bytes()
    assert find_submission(cwd=target) == target
