"""Choosing the language: --lang on every command, the environment, the record of each run, reports
rendered in either language from the same gradebook, and help in the chosen language."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from grader import catalog
from grader.classroom import gradebook as gb_module
from grader.classroom.gradebook import Gradebook
from grader.cli import main
from grader.cli_i18n import lang_from_argv
from grader.messages import _load, has
from grader.results import GradeRun
from grader.textwidth import width
from reports.render import render_student_report, write_class_reports

from .fake_runs import fake_run

LANG_VARS = ("LLMGRADE_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _no_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """No language preference at the start; whatever a command sets is undone afterwards."""
    for var in LANG_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLMGRADE_LANG", "")


def run(*args: str, **env: str) -> Result:
    """Invoke the CLI; CliRunner restores the variables named in ``env``, so what ``--lang`` set is undone."""
    return CliRunner().invoke(main, list(args), env={"LLMGRADE_LANG": "", **env})


def commands() -> dict[str, click.Command]:
    assert isinstance(main, click.Group)
    return dict(main.commands)


def test_every_command_has_a_lang_option() -> None:
    missing = [name for name, command in commands().items()
               if not any(p.name == "lang" for p in command.params)]
    assert missing == []
    assert any(p.name == "lang" for p in main.params)


def test_every_command_and_option_has_its_help_in_the_catalog() -> None:
    missing = [f"help.{name}" for name in commands() if not has(f"help.{name}")]
    for name, command in commands().items():
        missing += [f"help.{name}.{p.name}" for p in command.params if isinstance(p, click.Option)
                    and not (has(f"help.{name}.{p.name}") or has(f"help.option.{p.name}"))]
    assert missing == []


@pytest.mark.parametrize("args", [["--lang", "zh-CN", "list", "ch03"], ["list", "--lang", "zh-CN", "ch03"],
                                  ["list", "ch03", "--lang=zh_CN"]])
def test_lang_option_anywhere(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "ch03（编码注意力机制）" in result.output
    assert "共8个评分项，总计17分。" in result.output


@pytest.mark.parametrize("env", [{"LLMGRADE_LANG": "zh-CN"}, {"LANG": "zh_CN.UTF-8"},
                                 {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}])
def test_language_from_the_environment(env: dict[str, str]) -> None:
    result = run("list", "ch03", **env)
    assert "共8个评分项" in result.output


def test_lang_option_beats_the_environment() -> None:
    assert "8 items, 17 points in all." in run("list", "ch03", "--lang", "en", LLMGRADE_LANG="zh-CN").output
    assert "共8个评分项" in run("list", "ch03", "--lang", "zh-CN", LANG="en_US.UTF-8").output


def test_unknown_lang_is_a_clear_usage_error() -> None:
    result = run("list", "--lang", "tlh")
    assert result.exit_code == 2
    assert "There is no translation called 'tlh'. Choose one of: en, zh-CN." in result.output


@pytest.mark.parametrize("name", ["main", *sorted(commands())])
def test_help_is_chinese_for_every_command(name: str) -> None:
    args = ["--help", "--lang", "zh-CN"] if name == "main" else [name, "--help", "--lang", "zh-CN"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("用法：") and "选项：" in out and "显示此帮助信息并退出。" in out
    for line in re.sub(r"`[^`]*`", "`", out).splitlines():  # a code span may wrap over lines
        if line.strip().startswith("llmgrade "):
            continue  # an example command line
        words = re.sub(r"--?[\w-]+|\S*[./_`\[]\S*|\b[A-Z_]{2,}\b|python -m grader\.cli", "", line)
        assert CJK.search(line) or not re.search(r"\b[a-z]{4,}\b", words), line
    assert all(width(line) <= 80 for line in out.splitlines()), out  # wrapped by display columns
    english = run(*[a for a in args if a not in ("--lang", "zh-CN")]).output
    assert english.startswith("Usage: ") and not CJK.search(english.replace("从零", ""))


def test_lang_from_argv_stops_at_double_dash() -> None:
    assert lang_from_argv(["grade", "--lang", "zh-CN"]) == "zh-CN"
    assert lang_from_argv(["grade", "--lang=en", "--", "--lang", "zh-CN"]) == "en"
    assert lang_from_argv(["grade"]) is None


def test_every_item_and_chapter_has_a_title_in_every_language() -> None:
    for lang in ("zh-CN",):
        texts = _load(lang)
        missing = [f"item.{i.id}" for i in catalog.ITEMS if f"item.{i.id}" not in texts]
        missing += [f"chapter.{m}" for m in catalog.MODULES if f"chapter.{m}" not in texts]
        assert missing == []


# ---- the language of a run is recorded ----------------------------------------------------------
def test_results_json_records_the_language(tmp_path: Path) -> None:
    run_zh = fake_run(lang="zh-CN")
    path = tmp_path / "r.json"
    run_zh.write(path)
    assert GradeRun.read(path).lang == "zh-CN"
    old = run_zh.to_dict()
    del old["lang"]
    assert GradeRun.from_dict(old).lang == "en"  # documents written before issue 11 are English


def test_gradebook_records_the_language(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("li", fake_run(lang="zh-CN"))
        book.record("ann", fake_run())
        assert book.latest("li").lang == "zh-CN"  # type: ignore[union-attr]
        assert book.latest("ann").lang == "en"  # type: ignore[union-attr]


def test_a_gradebook_from_before_the_language_column_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "gb.sqlite"
    with Gradebook(path) as book:
        book.record("ann", fake_run(lang="zh-CN"))
    level = next(i for i, step in enumerate(gb_module.MIGRATIONS) if any("ADD COLUMN lang " in s for s in step))
    later = [re.search(r"ADD COLUMN (\w+)", s) for step in gb_module.MIGRATIONS[level:] for s in step]
    con = sqlite3.connect(path)  # back to the level before the language column, as written before issue 11
    for column in [m.group(1) for m in later if m]:
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute(f"PRAGMA user_version = {level}")
    con.commit()
    con.close()
    with Gradebook(path) as book:
        assert book.schema_level == len(gb_module.MIGRATIONS)
        assert book.latest("ann").lang == "en"  # type: ignore[union-attr]


def test_one_gradebook_renders_in_either_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ann", fake_run())
    for lang, heading, status in (("zh-CN", "班级概览", "未通过"), ("en", "Class overview", "failed")):
        monkeypatch.setenv("LLMGRADE_LANG", lang)
        with Gradebook(tmp_path / "gb.sqlite") as book:
            index = write_class_reports(book, tmp_path / lang)
        html = index.read_text("utf-8")
        assert f'<html lang="{lang}">' in html and heading in html and status in html
        student = next((tmp_path / lang / "students").glob("*.html")).read_text("utf-8")
        assert f'<html lang="{lang}">' in student
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    html = render_student_report(fake_run(), [])
    assert "按章列出的评分项" in html and "处理文本数据" in html and "可能的错误：" in html
    assert "Noto Sans CJK SC" in html


def test_exports_human_readable_fields_follow_the_language(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.classroom.export import gradescope_results

    run = fake_run(statuses={"ch03.MultiHeadAttention": "failed"})  # graded in English
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    tests = {test["number"]: test for test in gradescope_results(run)["tests"]}
    mha = tests["ch03.MultiHeadAttention"]
    assert mha["name"] == "ch03.MultiHeadAttention 通过权重划分实现多头注意力"
    assert mha["output"].startswith("2.5 / 5分。\n可能的错误：") and mha["status"] == "failed"


def test_a_failure_and_its_diagnosis_join_as_the_language_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.checking.failures import GradeFailure
    from grader.messages import t

    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    params = {"what": t("check.what.output", what="CausalAttention"), "expected": "(2, 3)", "got": "(3, 2)"}
    zh = str(GradeFailure("compare.shape", diagnosis="mask_not_applied", **params))
    assert zh.startswith("CausalAttention的输出：形状应为(2, 3)，实际为(3, 2)。可能的错误：没有应用因果掩码")
    monkeypatch.setenv("LLMGRADE_LANG", "en")
    params["what"] = t("check.what.output", what="CausalAttention")
    en = str(GradeFailure("compare.shape", diagnosis="mask_not_applied", **params))
    assert en.startswith("CausalAttention output: expected shape (2, 3), got (3, 2). Likely mistake:")


def test_a_report_in_another_language_than_the_run_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    assert 'id="graded-in"' not in render_student_report(fake_run(lang="zh-CN"), [])
    page = render_student_report(fake_run(lang="en"), [])
    assert "本页中的检查消息是英语的，即评分时使用的语言" in page
    monkeypatch.setenv("LLMGRADE_LANG", "en")
    assert "The check messages on this page are in Simplified Chinese" in render_student_report(
        fake_run(lang="zh-CN"), [])
