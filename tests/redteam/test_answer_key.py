"""Using the answer key is seen: a module that imports reference/ scores 0 with a message naming the
file and line (static scan), and an import built at run time fails the check that ran it (audit hook)."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun

ROOT = Path(__file__).resolve().parents[2]


def test_imports_of_the_answer_key_score_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    ch03 = (ROOT / "solutions" / "ch03.py").read_text("utf-8")
    (work / "ch03.py").write_text(ch03 + (
        "\n\n_own_forward = SelfAttention_v1.forward\n\n\n"
        "def _peek(self, x):  # a name built at run time: only the audit hook can see it\n"
        "    import importlib\n"
        "    importlib.import_module(''.join(['ref', 'erence', '.ch05']))\n"
        "    return _own_forward(self, x)\n\n\n"
        "SelfAttention_v1.forward = _peek\n"), "utf-8")
    ch04 = (ROOT / "solutions" / "ch04.py").read_text("utf-8")
    head, future, tail = ch04.partition("from __future__ import annotations\n")
    (work / "ch04.py").write_text(head + future + "from reference.ch04 import *  # noqa\n" + tail, "utf-8")
    line = (head + future).count("\n") + 1
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch04.GELU", "ch03.SelfAttention_v1", "ch03.MultiHeadAttention",
                                       "--submission", str(work), "--no-record", "--json", str(out)])
    assert result.exit_code == 1, result.output
    run = GradeRun.read(out)
    items = {item.id: item for item in run.items}
    assert items["ch04.GELU"].status == "answer_key" and items["ch04.GELU"].points == 0
    error = next(e for e in run.load_errors if e.module == "ch04")
    assert error.kind == "answer_key" and error.line == line
    assert f"ch04.py line {line} imports reference.ch04" in error.message
    assert items["ch04.GELU"].message == error.message  # the item says where and how
    assert f"ch04.py line {line} imports reference.ch04" in result.output  # and so does the terminal
    peek = items["ch03.SelfAttention_v1"]
    assert peek.status == "answer_key" and peek.points == 0
    assert any(c.message_id == "check.uses_answer_key" and ("imports reference" in c.message or
               "reads reference/ch05.py" in c.message) for c in peek.checks), \
        [(c.message_id, c.message) for c in peek.checks]
    assert items["ch03.MultiHeadAttention"].status == "passed"
