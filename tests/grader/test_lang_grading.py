"""Grading in Chinese changes only the sentences: one submission made of solution code (items that
pass), the Chinese stubs (not started), known mistakes (failed, with their diagnoses) and a module that
does not load (error) gives the same results JSON with ``--lang zh-CN`` as in English, apart from the
message texts, the item titles, timings, temporary paths and the recorded language. (One submission
mixing all four, graded twice, keeps this to two grading runs.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grader.authoring.workspace import init_workspace
from grader.messages import render_stored
from grader.results import GradeRun
from grader.retranslate import in_language
from tests.grader.test_translations import untranslated_words
from tests.grader.test_variants import all_variants, apply

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"ch02.SimpleTokenizerV1": "error", "ch03.SelfAttention_v1": "passed", "ch03.CausalAttention": "failed",
            "ch03.MultiHeadAttention": "failed", "ch04.GELU": "passed", "ch04.LayerNorm": "failed",
            "ch05.text_to_token_ids": "not_started", "ch05.softmax_with_temperature": "not_started"}
ITEMS = tuple(EXPECTED)
MISTAKES = ("causal-mask-missing", "mha-no-scaling", "ln-unbiased-variance")
TEXT_KEYS = {"message", "title", "error", "output_tail", "source_line"}  # human-readable, translated
RUN_KEYS = {"started_at", "duration_s", "lang", "submission"}  # different on every run
CJK = re.compile(r"[\u4e00-\u9fff]")
RAW_PARAMS = {"error", "message", "stub", "detail", "source_line", "type"}  # Python's or the student's text


def grade_both(submission: Path, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results JSON in English and in Chinese; both runs at once (they mostly wait on workers).
    The reference mutants get time to try every candidate: a mistake named or not at the edge of
    the CPU budget on a busy machine is not the language's doing (grader/checking/mutants/)."""
    env = {**os.environ, "LLMGRADE_LANG": "", "LLMGRADE_MUTANT_BUDGET_S": "60"}
    runs = {}
    for lang in ("en", "zh-CN"):
        out = folder / f"{lang}.json"
        runs[lang] = (out, subprocess.Popen(
            [sys.executable, "-m", "grader.cli", "grade", *ITEMS, "--lang", lang, "--submission",
             str(submission), "--json", str(out), "--no-record", "--time-scale", "4"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT))
    results = []
    for out, proc in runs.values():
        output, _ = proc.communicate(timeout=900)
        assert out.is_file(), output
        results.append(json.loads(out.read_text("utf-8")))
    return results[0], results[1]


def language_free(value: Any) -> Any:
    """The document without its translated texts and per-run fields."""
    if isinstance(value, dict):
        return {k: Path(v).name if k == "file" else language_free(v) for k, v in value.items()
                if k not in TEXT_KEYS | RUN_KEYS and "duration" not in k}
    if isinstance(value, list):
        return [language_free(v) for v in value]
    return value


def texts(value: Any) -> list[str]:
    """The translated sentences; not inside ``message_params`` (language-free data, in which a
    parameter may itself be called ``message``: a named mutant wraps the check's own message)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() if k != "message_params"
                for t in ([v] if k == "message" and v else texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return []


def mixed_submission(folder: Path) -> Path:
    """Solutions with three known mistakes, ch05 as the Chinese stub, and a ch02 that does not load."""
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    chosen = [v for v in all_variants() if v.id in MISTAKES]
    assert len(chosen) == len(MISTAKES)
    for variant in chosen:
        path = folder / f"{variant.module}.py"
        path.write_text(apply(variant, path.read_text("utf-8")), encoding="utf-8")
    stubs = init_workspace(folder.parent / "stubs", lang="zh-CN")
    shutil.copyfile(stubs / "ch05.py", folder / "ch05.py")
    ch02 = folder / "ch02.py"
    ch02.write_text(ch02.read_text("utf-8") + "\ndef broken(:\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mixed submission graded once in each language (shared by the tests of this file)."""
    folder = tmp_path_factory.mktemp("lang")
    return grade_both(mixed_submission(folder / "sub"), folder)


@pytest.mark.slow
def test_grading_in_chinese_changes_only_the_texts(graded: tuple[dict[str, Any], dict[str, Any]]) -> None:
    english, chinese = graded
    assert (english["lang"], chinese["lang"]) == ("en", "zh-CN")
    assert language_free(chinese) == language_free(english)
    assert {item["id"]: item["status"] for item in chinese["items"]} == EXPECTED
    zh_texts = texts(chinese)
    assert zh_texts and all(CJK.search(t) for t in zh_texts), zh_texts
    # English messages are English, except where they quote the Chinese stub's NotImplementedError.
    assert not [t for t in texts(english) if CJK.search(t.replace(t[t.find("练习"):], "") if "练习" in t else t)]
    diagnoses = {item["id"]: item["diagnosis"] for item in chinese["items"]}
    assert diagnoses["ch03.MultiHeadAttention"] == "attention_missing_scaling"
    assert any("可能的错误：在softmax之前，注意力分数没有除以sqrt(head_dim)。" in t for t in zh_texts)
    assert any("语法错误" in t for t in zh_texts)
    assert any("尚未开始：练习ch05.text_to_token_ids：" in t for t in zh_texts)


def said(document: dict[str, Any]) -> list[str]:
    """Every message of a results document: load errors, items, checks."""
    run = GradeRun.from_dict(document)
    return [e.message for e in run.load_errors] + [text for item in run.items
                                                  for text in [item.message, *(c.message for c in item.checks)]]


@pytest.mark.slow
def test_a_run_graded_in_one_language_is_reported_in_the_other(graded: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Rendered again from what the run stored, every message is the one the other language's run
    wrote: the check messages, the diagnoses they end with, the item messages and the load errors."""
    english, chinese = graded
    as_chinese, complete = in_language(GradeRun.from_dict(english), "zh-CN")
    assert complete and said(as_chinese.to_dict()) == said(chinese)
    as_english, complete = in_language(GradeRun.from_dict(chinese), "en")
    assert complete and said(as_english.to_dict()) == said(english)
    assert any("可能的错误：在softmax之前，注意力分数没有除以sqrt(head_dim)。" in t for t in said(as_chinese.to_dict()))
    # No English is left in the Chinese messages, apart from what Python or the student's code said
    # (an exception's text, the stub's task): those parameters are left out here.
    run = GradeRun.from_dict(chinese)
    stored = [(e.message_id, e.message_params) for e in run.load_errors] + \
        [(c.message_id, c.message_params) for item in run.items for c in item.checks if c.message]
    assert stored and all(params is not None for _, params in stored)
    rendered = [render_stored("zh-CN", key, {k: "" if k in RAW_PARAMS else v for k, v in (params or {}).items()})
                for key, params in stored]
    assert None not in rendered
    assert {t: untranslated_words(t) for t in rendered if t and untranslated_words(t)} == {}
