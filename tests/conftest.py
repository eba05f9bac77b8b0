"""Shared fixtures for the project's own tests.

- ``tests.helpers.IMPLS`` / ``load(impl, module)``: run one test against ``reference`` and ``solutions``.
- ``shared_data``: the real book data in ``../shared/data``, or a skip that says why.
- ``private_runtime``: a private, short ``XDG_RUNTIME_DIR`` for tests that start keepers of ``check``.
- The tiktoken "gpt2" encoding is made to work offline for the whole session, as the grader's
  worker does for student code that calls ``tiktoken.get_encoding("gpt2")`` like the book.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the book's data folder {SHARED_DATA} is absent (optional real-data test)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _offline_tiktoken(tmp_path_factory: pytest.TempPathFactory) -> None:
    from reference.ch02 import prepare_tiktoken_cache

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    prepare_tiktoken_cache(cache)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


@pytest.fixture(scope="session", autouse=True)
def _english_by_default() -> None:
    """Tests read English messages whatever the developer's LLMGRADE_LANG or locale; a test that wants
    another language sets it itself."""
    os.environ["LLMGRADE_LANG"] = "en"


@pytest.fixture
def private_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``XDG_RUNTIME_DIR`` short enough for a keeper's socket (pytest's ``tmp_path`` may be
    too long for ``sun_path``, and the keeper would then use the shared ``/tmp/llmgrade-<uid>``)."""
    folder = Path(tempfile.mkdtemp(prefix="kw-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _no_keepers() -> None:
    """No test leaves a keeper (grader/runner/keep_warm.py) running or asks a developer's own one;
    tests/grader/test_keep_warm.py turns them on for itself, in a private runtime folder."""
    os.environ["LLMGRADE_KEEP_WARM"] = "0"


# --- Parallel runs (scripts/test.sh runs pytest-xdist with ``--dist loadgroup``) -----------------------

LOAD_SENSITIVE_GROUP = "load-sensitive"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order and group the tests for pytest-xdist; without ``-n`` only the order changes.

    - Modules with slow tests first (a stable sort that keeps each module's tests together, so no
      module-scoped fixture is built twice): the long ones start early and the workers finish together.
    - A test that uses a module- or class-scoped fixture runs on the same worker as the rest of its
      module, so that fixture (often a whole grading run) is still built once.
    - ``load_sensitive`` tests (busy loops on every core, or a wall-clock bound) share one worker, so
      none of them runs while another one loads the machine.
    """
    slow_modules = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in slow_modules)
    if hasattr(config, "workerinput"):  # an xdist worker: the groups it reports decide the schedule
        for item in items:
            group = _xdist_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
                _report_group(item, group)


def _report_group(item: pytest.Item, group: str) -> None:
    """The worker reports a test's group as a ``@group`` suffix of its node id. pytest-xdist 3.8 adds it
    by setting ``item._nodeid``, which pytest 9 no longer reads (it keeps a structured ``item._id``), so
    without this every group would be scattered over the workers."""
    if item.nodeid.endswith(f"@{group}") or not hasattr(item, "_id"):
        return
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


def _xdist_group(item: pytest.Item) -> str | None:
    if item.get_closest_marker("load_sensitive") is not None:
        return LOAD_SENSITIVE_GROUP
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info is not None else ()):
        if any(definition.scope in ("module", "class", "package") for definition in definitions):
            return item.nodeid.split("::", 1)[0]
    return None
