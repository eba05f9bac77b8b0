"""A run recorded in one language is reported in the other: check messages, the diagnoses they end
with, the sentences scoring puts around them, item messages and load errors (``grader.retranslate``).
Runs recorded before messages kept their parameters keep their text, and the page says so."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import re
from typing import Any

import pytest

from grader import catalog
from grader.checking.failures import GradeFailure
from grader.classroom.export import gradescope_results
from grader.messages import encode_params, phrase, t_in
from grader.results import CheckResult, GradeRun
from grader.retranslate import in_language
from reports.render import render_student_report
from tests.grader.fake_runs import fake_run
from tests.grader.test_translations import untranslated_words

CJK = re.compile(r"[\u4e00-\u9fff]")


def graded_in(lang: str) -> GradeRun:
    """A run whose messages were written in ``lang`` the way the plugin and scoring write them: a
    failure with a diagnosis and a phrase, a check charged to a dependency, a passed item, an
    extension check, a stub and a load error."""
    import os

    old = os.environ.get("LLMGRADE_LANG")
    os.environ["LLMGRADE_LANG"] = lang
    try:
        run = fake_run(statuses={**{item.id: "passed" for item in catalog.ITEMS}, "ch03.MultiHeadAttention": "failed", "ch04.LayerNorm": "failed",
                                 "ch04.TransformerBlock": "failed", "ch04.GELU": "passed",
                                 "ch05.text_to_token_ids": "not_started", "ch02.SimpleTokenizerV1": "error"},
                       lang=lang)
        items = {item.id: item for item in run.items}
        what = phrase("check.what.output", what=phrase("what.multiheadattention_in_training_mode"))
        failure = GradeFailure("compare.values", what=what, where=phrase("compare.where_token", token=2),
                               max_diff=0.5, count=3, total=12, tolerance="rtol=1e-06, atol=1e-08",
                               diagnosis="attention_missing_scaling")
        mha = _check("forward", "failed", str(failure), failure.message_id, failure.params,
                     diagnosis="attention_missing_scaling")
        items["ch03.MultiHeadAttention"].checks = [mha, CheckResult("shape", "passed")]
        items["ch03.MultiHeadAttention"].message = mha.message
        items["ch03.MultiHeadAttention"].diagnosis = "attention_missing_scaling"
        ln = GradeFailure("compare.nonfinite", what=phrase("what.layernorm_output_for_rows_that"), count=2,
                          index=[0, 1])
        ln_check = _check("constant_rows", "failed", str(ln), ln.message_id, ln.params)
        extension = _check("batch_rows", "failed", t_in(lang, "check.extension_not_counted", message=str(ln)),
                           ln.message_id, ln.params, details={"extension": True})
        items["ch04.LayerNorm"].checks = [ln_check, extension]
        items["ch04.LayerNorm"].message = ln_check.message
        items["ch04.LayerNorm"].diagnosis = None
        block = _check("forward", "failed", t_in(lang, "check.used_failing_dependency", item="ch04.TransformerBlock",
                                                 dependency="ch04.LayerNorm", title=t_in(lang, "item.ch04.LayerNorm")
                                                 if lang != "en" else "Layer normalization", message=str(ln)),
                       ln.message_id, ln.params, blamed_on="ch04.LayerNorm")
        items["ch04.TransformerBlock"].checks = [block]
        items["ch04.TransformerBlock"].message = ""
        items["ch04.TransformerBlock"].diagnosis = None
        items["ch04.GELU"].checks = [CheckResult("values", "passed")]
        items["ch04.GELU"].message = t_in(lang, "item.passed", passed=1, total=1)
        stub = _check("encode", "not_started", t_in(lang, "check.not_started", stub="练习ch05.text_to_token_ids：..."),
                      "check.not_started", {"stub": "练习ch05.text_to_token_ids：..."})
        items["ch05.text_to_token_ids"].checks = [stub]
        items["ch05.text_to_token_ids"].message = stub.message
        load = {"module": "ch02", "file": "ch02.py", "line": 3, "source_line": "def f(:", "error": "invalid syntax",
                "seconds": "0"}
        text = t_in(lang, "load.syntax_error", **load)
        run.load_errors.append(dataclasses.replace(
            _load_error(text), message_id="load.syntax_error", message_params=encode_params(load)))
        items["ch02.SimpleTokenizerV1"].message = text
        items["ch02.SimpleTokenizerV1"].checks = []
        return run
    finally:
        if old is None:
            del os.environ["LLMGRADE_LANG"]
        else:
            os.environ["LLMGRADE_LANG"] = old


def _check(name: str, status: Any, message: str, message_id: str, params: dict[str, Any], **extra: Any) -> CheckResult:
    return CheckResult(name, status, message=message, message_id=message_id, message_params=encode_params(params),
                       **extra)


def _load_error(message: str) -> Any:
    from grader.results import LoadError

    return LoadError("ch02", "syntax_error", "ch02.py", message, line=3, source_line="def f(:")


def messages_of(run: GradeRun) -> list[str]:
    return [e.message for e in run.load_errors] + [text for item in run.items if item.status != "passed"
                                                  for text in [item.message, *(c.message for c in item.checks)] if text]


def test_a_run_graded_in_english_says_everything_again_in_chinese() -> None:
    english, chinese = graded_in("en"), graded_in("zh-CN")
    said, complete = in_language(english, "zh-CN")
    assert complete and said.lang == "zh-CN"
    assert messages_of(said) == messages_of(chinese)  # word for word what a Chinese run writes
    texts = messages_of(said)
    assert all(CJK.search(t) for t in texts), texts
    assert not [t for t in texts if untranslated_words(t.replace("invalid syntax", ""))]
    assert any(t.startswith("训练模式下的MultiHeadAttention的输出") and "可能的错误：在softmax之前" in t for t in texts)


def test_a_run_graded_in_chinese_says_everything_again_in_english() -> None:
    english, chinese = graded_in("en"), graded_in("zh-CN")
    said, complete = in_language(chinese, "en")
    assert complete and said.lang == "en"
    assert messages_of(said) == messages_of(english)
    assert not [t for t in messages_of(said) if CJK.search(t.replace("练习ch05.text_to_token_ids：", ""))]


def test_the_report_and_the_exports_follow_the_page_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    page = render_student_report(graded_in("en"), [])
    assert 'id="graded-in"' not in page
    assert "LayerNorm对取值全部相同的行的输出" in page and "可能的错误：在softmax之前" in page
    assert "LayerNorm output for rows" not in page and "Likely mistake" not in page
    output = {test["number"]: test["output"] for test in gradescope_results(graded_in("en"))["tests"]}
    assert "训练模式下的MultiHeadAttention的输出" in output["ch03.MultiHeadAttention"]
    monkeypatch.setenv("LLMGRADE_LANG", "en")
    page = render_student_report(graded_in("zh-CN"), [])
    assert 'id="graded-in"' not in page and "LayerNorm output for rows that are constant" in page
    assert "Likely mistake" in page and "可能的错误" not in page


def test_messages_recorded_without_parameters_keep_their_text(monkeypatch: pytest.MonkeyPatch) -> None:
    old = fake_run(statuses={"ch03.MultiHeadAttention": "failed"}, lang="en")  # no message_params
    said, complete = in_language(old, "zh-CN")
    assert not complete and said.lang == "en"
    assert messages_of(said) == messages_of(old)
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    assert "本页中的检查消息是英语的" in render_student_report(old, [])


def test_a_notebook_note_is_said_again_in_the_other_language(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The note on a graded notebook (what was left out, cell by cell) is staged in one language and
    reads as the other language writes it, list separator included."""
    import nbformat

    from grader.notebooks.staging import stage
    from tests.grader.notebook_factory import notebook_with_cells

    folder = tmp_path / "sub"
    folder.mkdir()
    nbformat.write(notebook_with_cells("def f():\n    return 1", "print(f())", "x = f() + 1"),
                   str(folder / "ch02.ipynb"))
    notes = {}
    for lang in ("en", "zh-CN"):
        monkeypatch.setenv("LLMGRADE_LANG", lang)
        staged = stage(folder)
        notes[lang] = staged.notes
        staged.cleanup()
    assert notes["en"][0].message_params is not None and "; " in notes["en"][0].message
    run = dataclasses.replace(fake_run(statuses={item.id: "passed" for item in catalog.ITEMS}, lang="en"),
                              notebooks=notes["en"])
    said, complete = in_language(run, "zh-CN")
    assert complete and said.notebooks[0].message == notes["zh-CN"][0].message
    assert "；" in said.notebooks[0].message and CJK.search(said.notebooks[0].message)
    back, complete = in_language(dataclasses.replace(run, notebooks=notes["zh-CN"], lang="zh-CN"), "en")
    assert complete and back.notebooks[0].message == notes["en"][0].message
