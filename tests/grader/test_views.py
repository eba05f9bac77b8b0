"""Reference views (grader/sandbox/views.py): a worker grading an item is given the reference of
what the item builds on, never the item's own code, nor that of an item that builds on it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from grader.catalog import BY_ID, ITEMS, _cycle
from grader.sandbox import views

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


@pytest.mark.parametrize("item_id", [item.id for item in ITEMS])
def test_a_view_holds_what_its_item_builds_on_and_never_the_item(item_id: str) -> None:
    view = views.view_for([item_id])
    for other in (item_id, *views.dependents(item_id)):
        item = BY_ID[other]
        held = set(item.names) & view.names(item.module)
        assert held == set(), f"the view for {item_id} holds {other}'s {sorted(held)}"
    for dep in views.closure([item_id]):
        item = BY_ID[dep]
        assert set(item.symbols) <= view.names(item.module), (item_id, dep)


def test_a_view_keeps_the_reference_line_numbers() -> None:
    view = views.view_for(["ch04.TransformerBlock"])
    source = dict(view.modules)["reference.ch03"]
    original = (REFERENCE / "ch03.py").read_text("utf-8").splitlines()
    line = next(i for i, text in enumerate(original) if text.startswith("class MultiHeadAttention("))
    assert source.splitlines()[line] == original[line]
    assert '"""' not in source.splitlines()[0]  # the module docstring (it can describe answers) is gone
    ast.parse(source)


def test_the_loading_workers_view_is_support_only() -> None:
    view = views.view_for([])
    for item in ITEMS:
        assert set(item.symbols) & view.names(item.module) == set(), item.id
    assert "get_gpt2_tokenizer" in view.names("gpt2_tokenizer") and "get_device" in view.names("device")


def test_code_that_reaches_an_item_is_never_support(tmp_path: Path) -> None:
    """A helper no item calls but that calls an item's code is in no view; a support module (in
    every view) that imports an item's code would put it in every view: refused."""
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE, copy)
    ch04 = copy / "ch04.py"
    ch04.write_text(ch04.read_text("utf-8") + "\n\nSHARED = [GELU]\n\n\ndef helper():\n    return SHARED\n", "utf-8")
    view = views.view_for(["ch04.FeedForward"], copy)  # FeedForward builds on GELU
    assert "GELU" in view.names("ch04") and {"SHARED", "helper"} & view.names("ch04") == set()
    assert {"GELU", "SHARED", "helper"} & views.view_for(["ch04.GELU"], copy).names("ch04") == set()
    device = copy / "device.py"
    device.write_text(device.read_text("utf-8") + "\nfrom .ch04 import GELU\n", "utf-8")
    with pytest.raises(views.ViewError, match="GELU"):
        views.view_for(["ch04.GELU"], copy)


def test_statements_the_reference_does_not_hold_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE, copy)
    (copy / "ch03.py").write_text((copy / "ch03.py").read_text("utf-8") + "\nfor _ in range(2):\n    pass\n")
    with pytest.raises(views.ViewError, match="For"):
        views.view_for(["ch03.MultiHeadAttention"], copy)


def test_the_catalog_refuses_a_cycle_of_depends_and_uses() -> None:
    assert _cycle({"a": ("b",), "b": ("c",), "c": ("a",)}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ("b",), "b": ()}) == []
    assert _cycle({item.id: (*item.depends, *item.uses) for item in ITEMS}) == []
