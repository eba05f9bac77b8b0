"""Click's own errors (a wrong option, a missing argument, a bad value) come from the message
catalog: Chinese with ``--lang zh-CN``, and word for word click's English in English. Run through
the real command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader.messages import _load
from tests.grader.test_translations import untranslated_words

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")

CASES = {  # arguments -> (the Chinese error line, click's English error line)
    ("grade", "--bogus"): ("错误：没有'--bogus'这个选项。", "Error: No such option '--bogus'."),
    ("check",): ("错误：缺少参数'ITEM'。", "Error: Missing argument 'ITEM'."),
    ("report", "one", "two"): ("错误：多出了几个参数（one two）。", "Error: Got unexpected extra arguments (one two)"),
    ("report", "one"): ("错误：多出了一个参数（one）。", "Error: Got unexpected extra argument (one)"),
    ("grade", "--time-scale", "fast"): ("错误：'--time-scale'的值无效：'fast'不是有效的float值。",
                                        "Error: Invalid value for '--time-scale': 'fast' is not a valid float."),
    ("export", "--format", "xml"): ("错误：'--format'的值无效：'xml'不是'csv', 'gradescope'之一。",
                                    "Error: Invalid value for '--format': 'xml' is not one of 'csv', 'gradescope'."),
    ("nosuch",): ("错误：没有'nosuch'这个命令。", "Error: No such command 'nosuch'."),
    ("grade", "--json"): ("错误：选项'--json'需要一个值。", "Error: Option '--json' requires an argument."),
    ("grade", "--jsn"): ("错误：没有'--jsn'这个选项。你是不是想用'--json'？",
                         "Error: No such option '--jsn'. Did you mean '--json'?"),
}


def run_cli(lang: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMGRADE_LANG": "", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "grader.cli", "--lang", lang, *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args", list(CASES))
def test_click_errors_in_chinese_and_in_english(args: tuple[str, ...]) -> None:
    chinese, english = CASES[args]
    zh, en = run_cli("zh-CN", *args), run_cli("en", *args)
    assert zh.returncode == en.returncode == 2, (zh.stderr, en.stderr)
    assert chinese in zh.stderr.splitlines(), zh.stderr
    assert english in en.stderr.splitlines(), en.stderr
    assert not CJK.search(en.stderr)
    # Nothing of click's English is left: usage and help hint too (code and the command line aside).
    lines = [line for line in zh.stderr.splitlines() if line.strip()]
    assert all(CJK.search(line) for line in lines), lines
    prose = [re.sub(r"python -m grader\.cli( [a-z-]+)?", " ", line) for line in lines]  # the command line
    for arg in args:  # and what the user typed, quoted back
        prose = [line.replace(arg, " ") for line in prose]
    assert {line: untranslated_words(line) for line in prose if untranslated_words(line)} == {}
    if "Usage:" in en.stderr:
        assert any(line.startswith("用法：") for line in lines) and any(line.startswith("运行“") for line in lines)


def test_every_click_sentence_has_both_languages_and_english_is_clicks_own() -> None:
    """The English of ``click.*`` is click's message id itself (what click looks up), so a click that
    rewords one is noticed here rather than silently shown in English."""
    import click.exceptions
    import click.parser
    import click.types

    sources = "".join(Path(module.__file__ or "").read_text("utf-8")
                      for module in (click.core, click.exceptions, click.parser, click.types))
    english = {key: text for key, text in _load("en").items() if key.startswith("click.")}
    ours = {"click.missing_argument", "click.missing_option", "click.missing_parameter",  # joined by us
            "click.with_suggestion"}
    assert len(english) > 20
    stale = [key for key, text in english.items() if key not in ours and f'"{text}"' not in sources]
    assert stale == []
