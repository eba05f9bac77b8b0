"""Shared fixtures for the project's own tests.

- ``tests.helpers.IMPLS`` / ``load(impl, module)``: run one test against ``reference`` and ``solutions``.
- ``shared_data``: the real book data in ``../shared/data``, or a skip that says why.
- The tiktoken "gpt2" encoding is made to work offline for the whole session, as the grader's
  worker does for student code that calls ``tiktoken.get_encoding("gpt2")`` like the book.
"""

from __future__ import annotations

import os
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
