"""The hidden suites and the catalog agree: every item has checks, every check names a real item
that lives in the module its file is named for (``test_<module>_*.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader.catalog import BY_ID, ITEMS
from grader.runner.run import SUITES_DIR


class _Collect:
    def __init__(self) -> None:
        self.items: list[pytest.Item] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.items.extend(items)


@pytest.fixture(scope="module")
def collected() -> list[pytest.Item]:
    plugin = _Collect()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-c", str(SUITES_DIR / "pytest.ini"),
                        "--rootdir", str(SUITES_DIR), "-p", "grader.checking.plugin", "-p", "grader.checking.fixtures",
                        str(SUITES_DIR)], plugins=[plugin])
    assert code == 0
    return plugin.items


def _item(node: pytest.Item) -> str | None:
    marker = node.get_closest_marker("item")
    return str(marker.args[0]) if marker else None


def test_every_check_names_a_catalog_item_of_its_files_module(collected: list[pytest.Item]) -> None:
    pattern = re.compile(r"test_(ch0\d|appendix_[a-z])_\w+\.py$")
    for node in collected:
        item = _item(node)
        assert item in BY_ID, f"{node.nodeid} has no valid item marker ({item!r})"
        match = pattern.search(Path(str(node.path)).name)
        assert match, f"{node.path} is not named test_<module>_<topic>.py"
        assert BY_ID[item].module == match.group(1), f"{node.nodeid} grades {item} from another module's file"


def test_every_item_has_at_least_two_checks(collected: list[pytest.Item]) -> None:
    counts = {item.id: 0 for item in ITEMS}
    for node in collected:
        counts[str(_item(node))] = counts.get(str(_item(node)), 0) + 1
    too_few = {item: n for item, n in counts.items() if n < 2}
    assert too_few == {}
