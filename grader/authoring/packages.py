"""Where the installed ``solutions`` and ``exercises`` packages live, found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from grader.errors import SetupError


def package_dir(name: str) -> Path:
    """The folder of the installed package ``name`` (``"solutions"``, ``"exercises"``)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise SetupError("setup.no_package", name=name)
    return Path(locations[0])
