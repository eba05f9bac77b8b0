"""Synthetic solution trees for the grader's own tests (small, one function per module)."""

from __future__ import annotations

from pathlib import Path

from grader import catalog


def write_solutions(folder: Path, extra: str = "") -> None:
    """A solutions folder: every catalog module with one function owned by its first item."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text("")
    for module in catalog.MODULES:
        symbol = next(item.symbols[0] for item in catalog.ITEMS if item.module == module)
        (folder / f"{module}.py").write_text(
            f'"""{module} solutions."""\n\n\ndef {symbol}(x):\n    """Do the thing."""\n'
            f"    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n{extra}")
