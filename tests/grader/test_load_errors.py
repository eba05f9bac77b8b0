"""A broken module is reported once, with the student's file and line, and costs only its own items."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_each_load_problem_is_reported_once_and_isolated(tmp_path: Path) -> None:
    sub = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, sub, ignore=shutil.ignore_patterns("__pycache__"))
    ch02 = sub / "ch02.py"
    ch02.write_text(ch02.read_text("utf-8") + "\nraise RuntimeError('boom at import')\n", "utf-8")
    ch03 = sub / "ch03.py"
    ch03.write_text(ch03.read_text("utf-8").replace("class MultiHeadAttention(nn.Module):",
                                                    "class MultiHeadAttention(nn.Module)"), "utf-8")
    ch04 = sub / "ch04.py"
    ch04.write_text(ch04.read_text("utf-8").replace("class GELU(", "class GELU_renamed("), "utf-8")
    (sub / "appendix_e.py").unlink()

    run = grade_submission(sub, ["ch02.SimpleTokenizerV1", "ch03.MultiHeadAttention", "ch04.GELU",
                                 "ch04.LayerNorm", "appendix_e.LoRALayer"])
    status = {item.id: item.status for item in run.items}
    assert status == {"ch02.SimpleTokenizerV1": "error", "ch03.MultiHeadAttention": "error",
                      "ch04.GELU": "error", "ch04.LayerNorm": "passed", "appendix_e.LoRALayer": "error"}
    by_module = {(e.module, e.kind): e for e in run.load_errors}
    assert sorted(by_module) == [("appendix_e", "missing_file"), ("ch02", "import_error"),
                                 ("ch03", "syntax_error"), ("ch04", "missing_name")]
    boom = by_module[("ch02", "import_error")]
    assert boom.file.endswith("ch02.py") and boom.line is not None
    assert "raise RuntimeError('boom at import')" in boom.message and "RuntimeError" in boom.message
    syntax = by_module[("ch03", "syntax_error")]
    assert syntax.line is not None and "class MultiHeadAttention(nn.Module)" in syntax.message
    assert by_module[("ch04", "missing_name")].names == ["GELU"]
    assert "llmgrade init" in by_module[("appendix_e", "missing_file")].message


def test_a_hang_at_import_costs_only_its_module(tmp_path: Path) -> None:
    """``while True: pass`` at the end of ch03.py: ch03's items are errors naming the file and the
    line where the import was stuck; ch04 (which imports ch03) and every other module still grade,
    and no item says "no hidden checks"."""
    sub = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, sub, ignore=shutil.ignore_patterns("__pycache__"))
    ch03 = sub / "ch03.py"
    source = ch03.read_text("utf-8") + "\n\nwhile True:\n    pass\n"
    ch03.write_text(source, "utf-8")
    hang_line = source.splitlines().index("while True:") + 1

    run = grade_submission(sub, ["ch03.CausalAttention", "ch03.MultiHeadAttention", "ch04.GELU",
                                 "ch04.LayerNorm", "ch02.SimpleTokenizerV1"])
    assert run.status == "complete"
    status = {item.id: item.status for item in run.items}
    assert status == {"ch03.CausalAttention": "error", "ch03.MultiHeadAttention": "error",
                      "ch04.GELU": "passed", "ch04.LayerNorm": "passed", "ch02.SimpleTokenizerV1": "passed"}
    (error,) = run.load_errors
    assert (error.module, error.kind) == ("ch03", "import_error")
    assert error.file.endswith("ch03.py") and error.line in (hang_line, hang_line + 1)
    assert "did not finish within" in error.message and "ch03.py" in error.message
    for item in run.items:
        assert "no hidden checks" not in item.message
