"""The first CLI commands through click's CliRunner: --version, list, build-stubs, init."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader import __version__, catalog
from grader.cli import main
from tests.grader.synthetic import write_solutions


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output == f"llmgrade {__version__}\n"


def test_list_groups_by_chapter_with_total() -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    out = result.output
    positions = [out.index(f"{m} ({catalog.CHAPTER_TITLES[m]})") for m in catalog.MODULES]
    assert positions == sorted(positions)
    for item in catalog.ITEMS:
        line = next(line for line in out.splitlines() if line.split()[:1] == [item.id])
        assert item.section in line and item.title in line and item.kind in line
        assert f"{item.points:g} pt" in line
    assert f"{len(catalog.ITEMS)} items, {catalog.max_score():g} points in all." in out
    assert "[hidden]" not in out


def test_list_marks_hidden_items(monkeypatch: pytest.MonkeyPatch) -> None:
    items = list(catalog.ITEMS)
    items[0] = dataclasses.replace(items[0], hidden=True)
    monkeypatch.setattr(catalog, "ITEMS", tuple(items))
    lines = run("list").output.splitlines()
    hidden = [line for line in lines if "[hidden]" in line]
    assert len(hidden) == 1 and items[0].id in hidden[0]


def test_list_json_is_the_catalog() -> None:
    result = run("list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [item["id"] for item in data["items"]] == [item.id for item in catalog.ITEMS]
    assert data["total_points"] == catalog.max_score()
    assert [c["module"] for c in data["chapters"]] == list(catalog.MODULES)
    first = data["items"][0]
    assert {"id", "module", "section", "title", "points", "kind", "symbols", "depends", "hidden"} <= set(first)


def test_list_selectors_and_unknown_selector() -> None:
    result = run("list", "ch03", "4.1")
    assert result.exit_code == 0
    header, *rows = result.output.splitlines()
    assert header.split() == ["ID", "SECTION", "POINTS", "KIND", "TITLE"]
    ids = {line.split()[0] for line in rows if line.startswith("  ")}
    assert ids == {item.id for item in catalog.ITEMS if item.module == "ch03"} | {"4.1"}
    bad = run("list", "ch99")
    assert bad.exit_code == 2
    assert "ch99" in bad.stderr and "llmgrade list" in bad.stderr
    assert "Traceback" not in bad.output


def test_build_stubs_then_check(tmp_path: Path) -> None:
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    write_solutions(solutions)
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    result = run("build-stubs", *args)
    assert result.exit_code == 0, result.output
    assert str(exercises) in result.output
    assert (exercises / "ch03.py").is_file()
    assert run("build-stubs", "--check", *args).exit_code == 0

    (exercises / "ch06.py").write_text("# edited by hand\n")
    result = run("build-stubs", "--check", *args)
    assert result.exit_code == 1
    assert str(exercises / "ch06.py") in result.stderr
    assert "llmgrade build-stubs" in result.stderr
    assert (exercises / "ch06.py").read_text() == "# edited by hand\n"


def test_build_stubs_bad_solution_is_a_one_line_error(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    write_solutions(solutions, extra="X = 1\n# BEGIN SOLUTION\nY = 2\n# END SOLUTION\n")
    result = run("build-stubs", "--solutions", str(solutions), "--exercises", str(tmp_path / "ex"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "ch02.py, line 10" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "ex").exists()


def test_init_refuses_then_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "pkg"
    source.mkdir()
    for name in ["__init__.py", *(f"{m}.py" for m in catalog.MODULES)]:
        (source / name).write_text(f"# {name}\n")
    monkeypatch.setattr("grader.authoring.workspace.package_dir", lambda name: source)
    target = tmp_path / "ws"
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    assert str(target) in result.output and "llmgrade check" in result.output
    assert (target / "ch02.py").read_text() == "# ch02.py\n"

    (target / "ch02.py").write_text("my work\n")
    again = run("init", str(target))
    assert again.exit_code == 2
    assert "--force" in again.stderr and "Traceback" not in again.output
    assert (target / "ch02.py").read_text() == "my work\n"

    forced = run("init", str(target), "--force")
    assert forced.exit_code == 0
    assert (target / "ch02.py").read_text() == "# ch02.py\n"


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("list", "build-stubs", "init"):
        assert command in result.output
