"""The message catalog: every literal message id used in code exists, and placeholders are valid."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import pytest

from grader.messages import LOCALE_VARS, _load, current_lang, has, set_lang, t, t_in

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = [
    re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""GradeFailure\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""SetupError\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""diagnosis\s*=\s*["']([a-z0-9_]+)["']"""),
]


def used_ids() -> set[str]:
    found: set[str] = set()
    files = [*ROOT.joinpath("grader").rglob("*.py"), *ROOT.joinpath("reports").rglob("*.py"),
             *ROOT.joinpath("reports").rglob("*.j2")]
    for path in files:
        text = path.read_text("utf-8")
        for pattern in PATTERNS:
            for match in pattern.findall(text):
                found.add(f"diagnosis.{match}" if pattern is PATTERNS[3] else match)
    return found


def test_every_literal_message_id_exists() -> None:
    # A key ending in "." or "_" is the literal prefix of a computed one (``"status." + status``).
    literal = {key for key in used_ids() if not key.endswith((".", "_")) and "." in key}
    missing = sorted(key for key in literal if not has(key))
    assert missing == []


def test_every_message_is_a_valid_template() -> None:
    for key, template in _load("en").items():
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", n.split(".")[0].split("[")[0]) for n in names), key


def test_a_key_a_language_lacks_falls_back_to_english(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    assert t("status.passed") == "通过"
    zh = dict(_load("zh-CN"))
    monkeypatch.setitem(_load("zh-CN"), "status.passed", zh["status.passed"])
    del _load("zh-CN")["status.passed"]
    try:
        assert t("status.passed") == "passed"
    finally:
        _load("zh-CN")["status.passed"] = zh["status.passed"]


def test_an_unknown_language_falls_back_to_english(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLMGRADE_LANG", "xx-YY")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert current_lang() == "en"
    assert t("status.passed") == "passed"


@pytest.mark.parametrize(("env", "expected"), [
    ({"LLMGRADE_LANG": "zh-CN", "LANG": "en_US.UTF-8"}, "zh-CN"),
    ({"LLMGRADE_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
    ({"LC_ALL": "en_GB.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "zh_CN.GB18030"}, "zh-CN"),
    ({"LANG": "zh"}, "zh-CN"),
    ({"LANG": "C"}, "en"),
    ({"LANG": "fr_FR.UTF-8"}, "en"),
    ({}, "en"),
])
def test_language_comes_from_llmgrade_lang_then_the_locale(monkeypatch, env, expected) -> None:  # type: ignore[no-untyped-def]
    for var in ("LLMGRADE_LANG", *LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert current_lang() == expected


def test_set_lang_refuses_a_language_without_a_folder(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)
    with pytest.raises(ValueError):
        set_lang("klingon")
    assert set_lang("zh_CN") == "zh-CN"
    assert os.environ["LLMGRADE_LANG"] == "zh-CN"
    assert t_in("en", "status.failed") == "failed"
