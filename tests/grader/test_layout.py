"""The trust boundary is visible in the tree, and the code keeps to it.

Code that runs inside the sandboxed worker (``grader/sandbox/child.py``, ``protocol.py`` and every
recipe) must never import the trusted side: checks, comparisons, mistakes, the pytest plugin,
the runner, class grading or the reports. These tests read every import statement (lazy ones inside
functions included) and also import the worker's code in a fresh process and look at what loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRUSTED = ("grader.checking", "grader.runner", "grader.classroom", "grader.cli", "grader.suites", "grader.notebooks",
           "reports")
CHILD_SIDE = [ROOT / "grader/sandbox/child.py", ROOT / "grader/sandbox/protocol.py", ROOT / "grader/sandbox/key_watch.py",
              *sorted((ROOT / "grader/recipes").glob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from ... import`` statement anywhere in ``path`` names."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_trusted(name: str) -> bool:
    return any(name == t or name.startswith(t + ".") for t in TRUSTED)


def test_child_side_code_imports_nothing_trusted() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in imported_modules(p) if is_trusted(n))
                 for p in CHILD_SIDE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_static_rule_sees_a_trusted_import(tmp_path: Path) -> None:
    """The scan above would catch a lazy import of the trusted side (it is not vacuous)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from grader.checking.mistakes.ch05 import close\n    import reports.render\n")
    assert {n for n in imported_modules(bad) if is_trusted(n)} >= {"grader.checking.mistakes.ch05",
                                                                   "reports.render"}


def test_worker_process_loads_no_trusted_module() -> None:
    """Import the worker and every recipe in a fresh interpreter: no trusted module comes along."""
    code = ("import json, sys\n"
            "import grader.sandbox.child\n"
            "from grader import recipes\n"
            "recipes.get('module.forward')\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "grader.recipes.appendix_e" in loaded  # every recipe module really was imported
    assert [m for m in loaded if is_trusted(m)] == []



def test_runner_reaches_pytest_only_through_the_contract() -> None:
    """``grader/runner`` starts the trusted pytest process but imports none of its code: the command
    line, the key, the progress lines and the results format are in ``grader/runner/contract.py``."""
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in imported_modules(p) if n.startswith("grader.checking"))
                 for p in sorted((ROOT / "grader/runner").glob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}
    contract = imported_modules(ROOT / "grader/runner/contract.py")
    assert sorted(n for n in contract if n.startswith(("grader", "reports", "torch", "pytest"))) == []


def test_grader_does_not_import_reports() -> None:
    """``reports`` is a pure consumer: only the CLI (the composition root) may call it."""
    allowed = {"grader/cli.py"}
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in imported_modules(p)
                                                  if n == "reports" or n.startswith("reports."))
                 for p in sorted((ROOT / "grader").rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v and k not in allowed} == {}
    assert offenders["grader/cli.py"], "the CLI should be the one place that calls reports"
