"""``llmgrade list``: the catalog grouped by chapter, as text or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from grader import catalog
from grader.messages import item_title, t, translated
from grader.textwidth import ljust, rjust


def _points(value: float) -> str:
    return f"{value:g}"


def chapter_title(module: str) -> str:
    """The chapter's title in the current language."""
    return translated(f"chapter.{module}", catalog.CHAPTER_TITLES[module])


def catalog_as_dict(items: list[catalog.Item]) -> dict[str, Any]:
    """The JSON form of ``items``: chapters with titles, every item's fields, and the total."""
    modules = [m for m in catalog.MODULES if any(item.module == m for item in items)]
    return {
        "chapters": [{"module": m, "title": chapter_title(m)} for m in modules],
        "items": [{**asdict(item), "chapter": item.chapter} for item in items],
        "count": len(items),
        "total_points": catalog.max_score(items),
    }


def format_catalog(selectors: tuple[str, ...] = (), as_json: bool = False) -> str:
    """The catalog (or the items matching ids/chapters in ``selectors``) as text or JSON.

    Raises ``KeyError`` with an unknown selector (see ``catalog.items_for``).
    """
    items = catalog.items_for(selectors)
    if as_json:
        return json.dumps(catalog_as_dict(items), indent=2, ensure_ascii=False)
    width = max(len(item.id) for item in items)
    # Headers are padded by display width (a Chinese header is two columns a character).
    lines: list[str] = [t("listing.columns", id=t("listing.column.id"), width=width,
                          section=ljust(t("listing.column.section"), 7),
                          points=rjust(t("listing.column.points"), 7),
                          kind=ljust(t("listing.column.kind"), 9), title=t("listing.column.title"))]
    for module in catalog.MODULES:
        chosen = [item for item in items if item.module == module]
        if not chosen:
            continue
        lines.append("")
        lines.append(t("cli.list.header", chapter=module, title=chapter_title(module)))
        for item in chosen:
            lines.append(t("listing.item", id=item.id, width=width, section=item.section,
                           points=_points(item.points), kind=ljust(t(f"listing.kind.{item.kind}"), 9),
                           title=item_title(item.id, item.title),
                           hidden=t("listing.hidden") if item.hidden else ""))
    lines.append("")
    lines.append(t("cli.list.total", count=len(items), points=_points(catalog.max_score(items))))
    return "\n".join(lines)
