"""What a hidden suite grades: ``component(...)`` and ``problem(...)`` at the top of the suite file.

These calls are the catalog's only source (:mod:`grader.catalog` reads their literal arguments
from the suite's text). Run by pytest, each returns the ``@pytest.mark.item(id)`` marker that ties
checks to that item::

    LN = component("ch04", "LayerNorm", section="4.2", title="Layer normalization", points=2)

    @LN
    def test_normalizes_each_row(student, ref): ...

A file that grades one item may write ``pytestmark = component(...)`` instead.
"""

from __future__ import annotations

import pytest

from grader import catalog
from grader.errors import SetupError


def _marker(item: catalog.Item) -> pytest.MarkDecorator:
    if catalog.BY_ID.get(item.id) != item:
        # Only calls the catalog read (literal, top level, in grader/suites) can declare an item.
        raise SetupError("catalog.not_in_catalog", id=item.id, folder=str(catalog.SUITES_DIR))
    return pytest.mark.item(item.id)


def component(module: str, name: str, section: str, title: str, points: float,
              depends: tuple[str, ...] = (), symbols: tuple[str, ...] = (),
              hidden: bool = False, helpers: tuple[str, ...] = (), uses: tuple[str, ...] = ()) -> pytest.MarkDecorator:
    """Declare a component, id ``<module>.<name>`` (``symbols`` default to ``(name,)``); its checks' marker.
    ``helpers``: names of the item that a submission may lack; ``uses``: items whose reference code its
    checks build with (see :mod:`grader.catalog`)."""
    return _marker(catalog.component_item(module, name, section, title, points, depends, symbols, hidden,
                                          helpers, uses))


def problem(number: str, module: str, section: str, title: str, points: float, symbols: tuple[str, ...],
            depends: tuple[str, ...] = (), hidden: bool = False, uses: tuple[str, ...] = ()) -> pytest.MarkDecorator:
    """Declare an end-of-section exercise, id = the book's number ("4.3"); its checks' marker."""
    return _marker(catalog.problem_item(number, module, section, title, points, symbols, depends, hidden, uses))
