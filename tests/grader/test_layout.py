"""The trust boundary is visible in the tree, and the code keeps to it.

Code that runs inside the sandbox (the fork server, the worker, the wire, every recipe: the files of
``grader.sandbox.policy.WORKER_FILES``, the only ones of the grader's tree mounted there) must never
import the trusted side: checks, comparisons, mistakes, the pytest plugin, the runner, class grading
or the reports. These tests read every import statement (lazy ones inside functions included) and
also import the worker's code in a fresh process and look at what loaded.
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
CHILD_SIDE = [ROOT / "grader/sandbox/forkserver.py", ROOT / "grader/sandbox/child.py", ROOT / "grader/sandbox/nest.py",
              ROOT / "grader/sandbox/seccomp.py", ROOT / "grader/sandbox/protocol.py",
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
    """Import the fork server, the worker and every recipe in a fresh interpreter: no trusted module
    comes along, and every file of the grader's tree that loads is one the sandbox mounts (and
    every one it mounts is used)."""
    code = ("import json, sys\n"
            "import grader.sandbox.forkserver, grader.sandbox.child, grader.sandbox.nest, grader.sandbox.seccomp\n"
            "import grader.sandbox.protocol\n"
            "from grader import recipes\n"
            "recipes.get('module.forward')\n"
            "from grader.catalog import ITEMS\n"
            "from grader.messages import t; t('catalog.index_current', file='x')\n"
            "print(json.dumps({name: getattr(m, '__file__', None) for name, m in sys.modules.items()}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "grader.recipes.appendix_e" in loaded  # every recipe module really was imported
    assert [m for m in loaded if is_trusted(m)] == []
    assert [m for m in loaded if m == "reference" or m.startswith("reference.")] == []
    from grader.sandbox.policy import WORKER_FILES

    mounted = [ROOT / part for part in WORKER_FILES]
    files = {Path(f).resolve() for name, f in loaded.items() if name.split(".")[0] == "grader" and f}
    outside = sorted(str(f.relative_to(ROOT)) for f in files if not any(f == m or m in f.parents for m in mounted))
    assert outside == []
    unused = [part for part in WORKER_FILES if part.endswith(".py") and ROOT / part not in files]
    assert unused == []


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
