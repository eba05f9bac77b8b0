"""Every user-facing sentence, keyed by message id.

Sentences live in ``grader/locales/<lang>/*.json``, one file per area (``cli``, ``diagnostics``,
``reports``, ...), all merged into one catalog per language; keys are namespaced by area and must be
unique across files. A language is a folder (``en``, ``zh-CN``) with the same keys as ``en``; a key a
language lacks falls back to English. Code never builds user-facing sentences itself: it calls
``t("id", **params)``. Item titles can be translated with keys ``item.<id>``, chapter titles with
``chapter.<module>``; English titles live in the catalog.

The language is, in order: ``--lang`` (the CLI stores it in ``LLMGRADE_LANG``, so the grading
subprocess inherits it), ``LLMGRADE_LANG``, the system locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``,
in POSIX order), then English. ``docs/translating.md`` says how to add a language.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from typing import Any

DEFAULT_LANG = "en"
ENV_VAR = "LLMGRADE_LANG"
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")


@lru_cache(maxsize=None)
def available_langs() -> tuple[str, ...]:
    """The languages with a folder under ``grader/locales/``, English first."""
    folder = resources.files("grader") / "locales"
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name[:1].isalpha())
    return (DEFAULT_LANG, *(name for name in names if name != DEFAULT_LANG))


def normalize_lang(value: str | None) -> str | None:
    """The available language a user's or a locale's spelling names, or None.

    ``zh-CN``, ``zh_CN``, ``zh_CN.UTF-8``, ``zh-cn`` and ``zh`` all name ``zh-CN``; ``en_US.UTF-8``
    names ``en``; ``C`` and ``POSIX`` name none (the system has no language preference).
    """
    if not value:
        return None
    tag = value.split(".")[0].split("@")[0].replace("_", "-").strip().lower()
    if tag in ("", "c", "posix"):
        return None
    by_lower = {lang.lower(): lang for lang in available_langs()}
    if tag in by_lower:
        return by_lower[tag]
    base = tag.split("-")[0]
    candidates = [lang for lang in available_langs() if lang.lower().split("-")[0] == base]
    return candidates[0] if candidates else None


def current_lang() -> str:
    """``LLMGRADE_LANG``, else the system locale, else English (see the module docstring)."""
    chosen = normalize_lang(os.environ.get(ENV_VAR))
    if chosen:
        return chosen
    for var in LOCALE_VARS:
        value = os.environ.get(var)
        if value:  # POSIX: the first one set decides, even if it names a language we lack
            return normalize_lang(value) or DEFAULT_LANG
    return DEFAULT_LANG


def set_lang(lang: str) -> str:
    """Use ``lang`` from now on, in this process and in the processes it starts.

    Raises ``ValueError`` for a language that has no folder under ``grader/locales/``.
    """
    chosen = normalize_lang(lang)
    if chosen is None:
        raise ValueError(lang)
    os.environ[ENV_VAR] = chosen
    return chosen


@lru_cache(maxsize=None)
def _load(lang: str) -> dict[str, str]:
    folder = resources.files("grader") / "locales" / lang
    merged: dict[str, str] = {}
    if not folder.is_dir():
        return merged
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        data: dict[str, str] = json.loads(entry.read_text("utf-8"))
        duplicated = merged.keys() & data.keys()
        if duplicated:
            raise ValueError(f"message ids defined twice in locale {lang}: {sorted(duplicated)}")
        merged.update(data)
    return merged


def has(key: str) -> bool:
    return key in _load(DEFAULT_LANG)


def t(key: str, /, **params: Any) -> str:
    """The sentence for ``key`` in the current language, with ``{name}`` fields filled in.

    An unknown key is a programming error and raises ``KeyError``; a missing parameter too.
    """
    return t_in(current_lang(), key, **params)


def t_in(lang: str, key: str, /, **params: Any) -> str:
    """The sentence for ``key`` in ``lang`` (English where ``lang`` lacks it); a :class:`Phrase`
    parameter is rendered in ``lang`` too."""
    template = _load(lang).get(key) if lang != DEFAULT_LANG else None
    if template is None:
        template = _load(DEFAULT_LANG)[key]
    return template.format(**{name: _in_lang(value, lang) for name, value in params.items()})


def _in_lang(value: Any, lang: str) -> Any:
    if isinstance(value, Phrase):
        return t_in(lang, value.key, **value.params)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Phrase) for v in value):
        return t_in(lang, "list.separator").join(_in_lang(v, lang) for v in value)
    return value


class Phrase(str):
    """A part of a sentence from the catalog, given as a parameter of another message (what a check
    compared: ``phrase("what.layernorm_output_for_rows_that")``). A list of phrases as a parameter reads
    as the phrases joined by the language's ``list.separator``. A phrase reads as its text in the current language, and
    keeps its id and parameters, so the message that holds it can be rendered again in another
    language (a report in the other language, ``encode_params``)."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, /, **params: Any) -> Phrase:
        self = super().__new__(cls, t(key, **params))
        self.key = key
        self.params = params
        return self

    def __reduce__(self) -> Any:  # pickles (pytest's excinfo) as a phrase, not as its text
        return (_phrase_from, (self.key, self.params))


def _phrase_from(key: str, params: dict[str, Any]) -> Phrase:
    return Phrase(key, **params)


def phrase(key: str, /, **params: Any) -> Phrase:
    """The catalog's fragment ``key`` as a message parameter (see :class:`Phrase`)."""
    return Phrase(key, **params)


PHRASE_TAG = "$phrase"


def encode_params(params: dict[str, Any]) -> dict[str, Any]:
    """A message's parameters as JSON: a phrase becomes ``{"$phrase": id, "params": {...}}``,
    anything else that is not a JSON value its text."""
    return {str(name): _encode(value) for name, value in params.items()}


def _encode(value: Any) -> Any:
    if isinstance(value, Phrase):
        return {PHRASE_TAG: value.key, "params": encode_params(value.params)}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if type(value) in (str, int, float, bool) or value is None else str(value)
    return str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get(PHRASE_TAG), str) and isinstance(value.get("params", {}), dict):
            return _Stored(value[PHRASE_TAG], decode_params(value.get("params", {})))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class _Stored(Phrase):
    """A phrase read back from a results document: not rendered until a language is chosen."""

    def __new__(cls, key: str, params: dict[str, Any]) -> _Stored:
        self = str.__new__(cls, key)
        self.key = key
        self.params = params
        return self


def message_fields(message_id: str, /, **params: Any) -> dict[str, Any]:
    """A recorded message: its text in the current language, its id and its parameters
    (``message``, ``message_id``, ``message_params``), so a report can say it in another language."""
    return {"message": t(message_id, **params), "message_id": message_id, "message_params": encode_params(params)}


def decode_params(params: dict[str, Any]) -> dict[str, Any]:
    """``encode_params`` undone: phrases come back as phrases."""
    return {str(name): _decode(value) for name, value in params.items()}


def render_stored(lang: str, key: str, params: dict[str, Any]) -> str | None:
    """The message ``key`` with stored (``encode_params``) parameters in ``lang``, or None when the
    catalog no longer fits them (an unknown id or parameter: the caller keeps the stored text)."""
    try:
        return t_in(lang, key, **decode_params(params))
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return None


def template(key: str) -> str:
    """The unfilled sentence for ``key`` in the current language (for a library that fills it in
    itself, such as click's ``_("No such option {name!r}.").format(...)``)."""
    lang = current_lang()
    found = _load(lang).get(key) if lang != DEFAULT_LANG else None
    return found if found is not None else _load(DEFAULT_LANG)[key]


def item_title(item_id: str, english: str) -> str:
    """The title of a catalog item in the current language (English when not translated)."""
    return translated(f"item.{item_id}", english)


def translated(key: str, english: str, lang: str | None = None) -> str:
    """``lang``'s (default: the current language's) text for ``key``, or ``english`` (for texts whose
    English lives in code, such as titles in the catalog)."""
    lang = lang or current_lang()
    if lang != DEFAULT_LANG:
        return _load(lang).get(key, english)
    return english
