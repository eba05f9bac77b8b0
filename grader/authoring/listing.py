"""``llmgrade list``: the catalog grouped by chapter, as text or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from grader import catalog
from grader.messages import item_title, t


def _points(value: float) -> str:
    return f"{value:g}"


def catalog_as_dict(items: list[catalog.Item]) -> dict[str, Any]:
    """The JSON form of ``items``: chapters with titles, every item's fields, and the total."""
    modules = [m for m in catalog.MODULES if any(item.module == m for item in items)]
    return {
        "chapters": [{"module": m, "title": catalog.CHAPTER_TITLES[m]} for m in modules],
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
    lines: list[str] = [t("listing.columns", id=t("listing.column.id"), width=width,
                          section=t("listing.column.section"), points=t("listing.column.points"),
                          kind=t("listing.column.kind"), title=t("listing.column.title"))]
    for module in catalog.MODULES:
        chosen = [item for item in items if item.module == module]
        if not chosen:
            continue
        lines.append("")
        lines.append(t("cli.list.header", chapter=module, title=catalog.CHAPTER_TITLES[module]))
        for item in chosen:
            lines.append(t("listing.item", id=item.id, width=width, section=item.section,
                           points=_points(item.points), kind=t(f"listing.kind.{item.kind}"),
                           title=item_title(item.id, item.title),
                           hidden=t("listing.hidden") if item.hidden else ""))
    lines.append("")
    lines.append(t("cli.list.total", count=len(items), points=_points(catalog.max_score(items))))
    return "\n".join(lines)
