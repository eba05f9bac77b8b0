"""Every user-facing sentence, keyed by message id.

Sentences live in ``grader/locales/<lang>/*.json`` (``en`` now), one file per area (``cli``,
``diagnostics``, ``reports``, ...), all merged into one catalog; keys are namespaced by area and must be
unique across files. A translation is a new folder (``zh-CN/``) with the same keys. Code never builds user-facing sentences itself: it calls ``t("id", **params)``.
The language comes from ``LLMGRADE_LANG`` (e.g. ``zh-CN``), falling back to English per key.
Item titles can be translated with keys ``item.<id>``; English titles live in the catalog.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from typing import Any

DEFAULT_LANG = "en"
ENV_VAR = "LLMGRADE_LANG"


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


def current_lang() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_LANG


def has(key: str) -> bool:
    return key in _load(DEFAULT_LANG)


def t(key: str, /, **params: Any) -> str:
    """The sentence for ``key`` in the current language, with ``{name}`` fields filled in.

    An unknown key is a programming error and raises ``KeyError``; a missing parameter too.
    """
    lang = current_lang()
    template = _load(lang).get(key) if lang != DEFAULT_LANG else None
    if template is None:
        template = _load(DEFAULT_LANG)[key]
    return template.format(**params)


def item_title(item_id: str, english: str) -> str:
    """The title of a catalog item in the current language (English when not translated)."""
    lang = current_lang()
    if lang != DEFAULT_LANG:
        return _load(lang).get(f"item.{item_id}", english)
    return english
