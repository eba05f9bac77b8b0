"""Every translation is complete and really translated.

For each language folder next to ``grader/locales/en/``: every English message id has a translation
with exactly the same placeholders (names, conversions and format specs), no translation is left in
English, and Chinese text follows the typography of the Chinese edition (no space between Chinese and
Latin characters, full-width punctuation).
"""

from __future__ import annotations

import io
import keyword
import re
import string
import tokenize
from pathlib import Path

import pytest

from grader.messages import _load, available_langs

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = [lang for lang in available_langs() if lang != "en"]
CJK = re.compile(r"[\u3400-\u9fff]")

# Words a Chinese text keeps in Latin letters: the book's own kept terms (GLOSSARY_ZH.md, rule 4),
# product and format names, units and the commands' metavariables.
KEPT_TERMS = {
    "Transformer", "GPT", "BPE", "softmax", "logits", "logit", "dropout", "ReLU", "GELU", "LoRA", "DDP",
    "PyTorch", "Dask", "Linux", "Jupyter", "bubblewrap", "ID", "IDs", "Top", "XL", "OpenAI", "Alpaca", "AdamW", "Python", "SQLite", "JSON", "CSV",
    "UTF", "zip", "MB", "GB", "NaN", "CPU", "GPU", "CUDA", "MPS", "Gradescope", "llmgrade", "Pre", "Post",
    "LN", "tanh", "sigmoid", "erf", "Phi", "gain", "bias", "all", "reduce", "cd", "DIR", "SUBMISSIONS",
    "Exercise", "id", "pi", "cos", "sqrt", "abs", "meta", "rank", "world", "size", "batch", "tokens",
    "vocab", "in", "out", "diverse", "conservative", "weight", "tying", "detach",
    "True", "False", "None", "break", "nan", "solutions", "exercises", "gradescope", "csv",
}


def code_names() -> set[str]:
    """Every identifier in the book's code (names a message may quote: ``scale``, ``rank``, ...)."""
    names: set[str] = set()
    files = [*ROOT.joinpath("solutions").glob("*.py"), *ROOT.joinpath("reference").glob("*.py"),
             *ROOT.joinpath("grader/recipes").glob("*.py")]
    for path in files:
        for token in tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline):
            if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
                names.add(token.string)
    return names


CODE_NAMES = code_names()


def fields(template: str) -> set[tuple[str, str, str]]:
    """Each placeholder once (a translation may name one twice or once where English differs)."""
    return set((name, spec or "", conv or "")
                   for _, name, spec, conv in string.Formatter().parse(template) if name is not None)


def prose(template: str) -> str:
    """The template without its placeholders, code spans, quoted strings and code-like tokens."""
    text = re.sub(r"\{\{|\}\}", " ", template)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\"[^\"]*\"|'[^']*'|“llmgrade[^”]*”", " ", text)
    # Half-width parentheses hold code ((b, num_tokens), (train, test, validation)) or an English gloss.
    text = re.sub(r"(?<=[\u3400-\u9fff])\([\x20-\x7e]*\)|\([\x20-\x7e]*[,_.=\[]+[\x20-\x7e]*\)", " ", text)
    # Tokens with code punctuation or digits (x.var(), k + 1, test_*.py, <|endoftext|>, --force).
    tokens = [tok.rstrip(".,;:!?") for tok in re.split(r"[\s\u3000-\u303f\uff00-\uffef]+", text)]
    return " ".join(tok for tok in tokens if not re.search(r"[_.()=/<>|@*%:0-9+-]", tok))


def untranslated_words(template: str) -> list[str]:
    words = re.findall(r"[A-Za-z]+", prose(template))
    return [w for w in words if len(w) > 1 and w not in KEPT_TERMS and w not in CODE_NAMES
            and not re.search(r"[a-z][A-Z]", w)  # CamelCase: a class name from the code
            and not w.isupper()]  # acronyms and metavariables: HTML, README, DIR, BEGIN SOLUTION


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_every_english_id_is_translated(lang: str) -> None:
    missing = sorted(_load("en").keys() - _load(lang).keys())
    assert missing == [], f"{lang} lacks translations for {missing}"


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_translations_keep_every_placeholder(lang: str) -> None:
    english, translated = _load("en"), _load(lang)
    wrong = {key: (sorted(fields(english[key])), sorted(fields(text)))
             for key, text in translated.items() if key in english and fields(english[key]) != fields(text)}
    assert wrong == {}


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_no_translation_is_left_in_english(lang: str) -> None:
    english, translated = _load("en"), _load(lang)
    left = {key: untranslated_words(text) for key, text in translated.items() if untranslated_words(text)}
    assert left == {}
    # A sentence with English words must not come back unchanged ("✓" and "llmgrade {version}" may).
    same = [key for key, text in translated.items()
            if key in english and text == english[key] and untranslated_words(text)]
    assert same == []


def test_the_english_detector_finds_english() -> None:
    assert untranslated_words("{what}: your code raised {type}, fix it.") == ["your", "code", "raised", "fix", "it"]
    assert untranslated_words("可能的错误：在softmax之前没有除以sqrt(head_dim)。") == []
    assert untranslated_words("已接受：你采用了{convention}。Check `x.var()` again") == ["Check", "again"]
    assert untranslated_words("权重共享(weight tying)，运行“llmgrade check 3.2”，返回(train, test)。") == []


def test_the_detector_flags_the_english_catalog() -> None:
    """Run on English itself, it flags every sentence, not only a few: it is not blind."""
    english = _load("en")
    sentences = {key for key, text in english.items() if len(re.findall(r"[A-Za-z]{2,}", prose(text))) >= 2}
    unflagged = sorted(key for key in sentences if not untranslated_words(english[key]))
    assert len(sentences) > 400
    assert len(unflagged) <= len(sentences) // 50, unflagged


def zh_texts() -> dict[str, str]:
    return _load("zh-CN") if "zh-CN" in TRANSLATIONS else {}


def test_zh_cn_exists_and_is_chinese() -> None:
    texts = zh_texts()
    assert texts, "grader/locales/zh-CN/ is missing"
    no_chinese = [key for key, text in texts.items() if untranslated_words(_load("en").get(key, ""))
                  and not CJK.search(text)]
    assert no_chinese == []


def test_zh_cn_typography() -> None:
    """No space between Chinese and Latin letters or digits; full-width sentence punctuation."""
    # Column layouts ("{id:<34} {points:>4}分  {title}") keep their spaces: they align a table.
    spaced = {key: text for key, text in zh_texts().items() if not re.search(r"\{\w+:[<>]", text)
              and re.search(rf"{CJK.pattern} +[A-Za-z0-9{{`]|[A-Za-z0-9}}`] +{CJK.pattern}", text)}
    assert spaced == {}
    half_width = {key: text for key, text in zh_texts().items()
                  if re.search(rf"{CJK.pattern}[,;:?!]|{CJK.pattern}\.(?![\w/])", text)}
    assert half_width == {}


def test_zh_cn_uses_the_books_terms() -> None:
    """Words the Chinese edition renders differently never appear (GLOSSARY_ZH.md, table 1)."""
    not_the_books = {"令牌": "词元", "标记化": "词元化", "残差块": "Transformer块", "层规范化": "层归一化",
                     "层标准化": "层归一化", "嵌入维数": "嵌入维度", "注意力得分": "注意力分数"}
    found = {key: [w for w in not_the_books if w in text] for key, text in zh_texts().items()
             if any(w in text for w in not_the_books)}
    assert found == {}
