"""Exercise texts in other languages: every docstring of solutions/ is translated (and not stale), the
translations keep the code, and ``llmgrade init --lang`` writes stubs that differ from the English
ones only in their texts, while the committed exercises/ stay English whatever the language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.authoring.exercise_texts import english_texts, load_translations, source_digest
from grader.authoring.stubs import build_stubs, generate, make_stub
from grader.authoring.workspace import init_workspace, read_marker
from grader.cli import main
from grader.messages import available_langs

from .test_translations import untranslated_words

ROOT = Path(__file__).resolve().parents[2]
LANGS = [lang for lang in available_langs() if lang != "en"]
# Spans that are a description in English, not code, and so are translated.
PROSE_SPANS = {"``(token ids, label)``", "``min(max_length, context length)``",
               "``(trainable before, trainable after)``"}


# Names the texts keep: GPT-2's model sizes, a DDP backend, a library.
KEPT_NAMES = {"small", "medium", "large", "gloo", "nccl", "pandas"}


def english(module: str) -> dict[str, str]:
    return english_texts((ROOT / "solutions" / f"{module}.py").read_text("utf-8"))


@pytest.mark.parametrize("lang", LANGS)
def test_every_exercise_text_is_translated_and_current(lang: str) -> None:
    missing, stale, unknown = [], [], []
    for module in catalog.MODULES:
        texts, translated = english(module), load_translations(lang, module)
        missing += [f"{module}:{name}" for name in texts if name not in translated]
        stale += [f"{module}:{name} (now {source_digest(texts[name])})" for name in texts
                  if name in translated and translated[name]["source"] != source_digest(texts[name])]
        unknown += [f"{module}:{name}" for name in translated if name not in texts]
    assert missing == [], "translate these docstrings (see docs/translating.md)"
    assert stale == [], "the English changed since these were translated: update text and source"
    assert unknown == []


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_code_spans_and_examples(lang: str) -> None:
    lost = []
    for module in catalog.MODULES:
        translated = load_translations(lang, module)
        for name, text in english(module).items():
            target = " ".join(translated[name]["text"].split())
            spans = {" ".join(s.split()) for s in re.findall(r"``[^`]+``|`[^`]+`", text)} - PROSE_SPANS
            examples = [line for line in text.splitlines() if line.startswith((">>> ", "['", "{'"))]
            lost += [f"{module}:{name}: {s}" for s in [*spans, *examples] if s not in target]
    assert lost == []


@pytest.mark.parametrize("lang", LANGS)
def test_exercise_texts_are_not_left_in_english(lang: str) -> None:
    left = {}
    for module in catalog.MODULES:
        for name, entry in load_translations(lang, module).items():
            prose = "\n".join(line for line in entry["text"].splitlines() if not line.startswith((">>>", "['", "{'")))
            prose = re.sub(r"``.*?``", " ", prose, flags=re.S).replace("{", "(").replace("}", ")")
            words = [w for w in untranslated_words(prose) if w not in KEPT_NAMES]
            if words:
                left[f"{module}:{name}"] = words
    assert left == {}


def code_only(source: str) -> str:
    """The module's code without docstrings and with every NotImplementedError message blanked."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body[0].value.value = ""
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and getattr(node.exc.func, "id", "") == "NotImplementedError":
            node.exc.args = []
    return ast.dump(tree)


@pytest.mark.parametrize("lang", LANGS)
def test_translated_stubs_differ_from_english_only_in_texts(lang: str, tmp_path: Path) -> None:
    english_stubs = generate(ROOT / "solutions", tmp_path)
    translated_stubs = generate(ROOT / "solutions", tmp_path, lang)
    assert english_stubs.keys() == translated_stubs.keys()
    for path, text in translated_stubs.items():
        assert code_only(text) == code_only(english_stubs[path]), path
        if path.name != "__init__.py":
            assert text != english_stubs[path]
            assert "BEGIN SOLUTION" not in text and "# END SOLUTION" not in text


def test_chinese_stub_names_the_exercise_in_chinese() -> None:
    stub = make_stub((ROOT / "solutions" / "ch03.py").read_text("utf-8"), "ch03", lang="zh-CN")
    assert 'raise NotImplementedError("练习ch03.MultiHeadAttention：返回上下文向量，形状为(batch, num_tokens, d_out)。")' in stub
    assert "# ch03.py：《从零构建大模型》中“编码注意力机制”的练习。" in stub
    assert "本书3.6.2节。" in stub


def test_init_lang_writes_chinese_stubs_and_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "")
    result = CliRunner().invoke(main, ["init", "--lang", "zh-CN", str(tmp_path / "ws")],
                                env={"LLMGRADE_LANG": ""})
    assert result.exit_code == 0, result.output
    assert "已在" in result.output
    ws = tmp_path / "ws"
    assert "# 你的llmgrade工作区" in (ws / "README.md").read_text("utf-8")
    assert "练习ch02.SimpleTokenizerV1：" in (ws / "ch02.py").read_text("utf-8")
    assert read_marker(ws)["lang"] == "zh-CN"
    english_ws = init_workspace(tmp_path / "en", lang="en")
    assert (english_ws / "ch02.py").read_bytes() == (ROOT / "exercises" / "ch02.py").read_bytes()


def test_build_stubs_is_english_whatever_the_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert build_stubs(ROOT / "solutions", ROOT / "exercises", check=True) == []
    build_stubs(ROOT / "solutions", tmp_path)
    for name in ("__init__.py", "ch03.py"):
        assert (tmp_path / name).read_bytes() == (ROOT / "exercises" / name).read_bytes()


def test_chinese_exercise_texts_follow_the_books_typography() -> None:
    """No space between Chinese and Latin letters, digits or code; no half-width punctuation after
    Chinese (doctest lines excepted: they are code)."""
    if "zh-CN" not in LANGS:
        pytest.skip("no zh-CN folder")
    cjk = "[\u3400-\u9fff]"
    wrong = []
    for module in catalog.MODULES:
        for name, entry in load_translations("zh-CN", module).items():
            for line in entry["text"].splitlines():
                if line.startswith((">>>", "['", "{'")):
                    continue
                if re.search(rf"{cjk} +[A-Za-z0-9{{`(]|[A-Za-z0-9}}`)] +{cjk}|{cjk}[,;:?!]", line):
                    wrong.append(f"{module}:{name}: {line}")
    assert wrong == []
