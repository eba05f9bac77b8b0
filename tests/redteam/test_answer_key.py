"""Naming the grader's code in a submission earns nothing and costs nothing by itself.

The worker grading an item holds only the reference of what that item builds on
(grader/sandbox/views.py), so an import of ``reference`` finds no answer: a file that relies on one
cannot be loaded and says why (with its file and line); a file that only names it is graded on its
own code. Either way the instructor gets a note of where the files name the grader's code, and no
item is ever called a use of the answer key.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_is_not_there_to_import_and_naming_it_is_only_a_note(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    ch03 = (ROOT / "solutions" / "ch03.py").read_text("utf-8")
    (work / "ch03.py").write_text(ch03 + (
        "\n\n_own_forward = SelfAttention_v1.forward\n\n\n"
        "def _peek(self, x):  # a name built at run time: it finds no answer either\n"
        "    import importlib\n"
        "    importlib.import_module(''.join(['ref', 'erence', '.ch05']))\n"
        "    return _own_forward(self, x)\n\n\n"
        "SelfAttention_v1.forward = _peek\n"), "utf-8")
    # ch04 leans on the grader's reference for GELU instead of writing it
    ch04 = (ROOT / "solutions" / "ch04.py").read_text("utf-8")
    head, future, tail = ch04.partition("from __future__ import annotations\n")
    start = tail.index("class GELU(")
    end = tail.index("\nclass ", start + 1)
    (work / "ch04.py").write_text(head + future + "from reference.ch04 import GELU  # noqa\n"
                                  + tail[:start] + tail[end:], "utf-8")
    line = (head + future).count("\n") + 1
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch04.GELU", "ch03.SelfAttention_v1", "ch03.MultiHeadAttention",
                                       "--submission", str(work), "--no-record", "--json", str(out)])
    assert result.exit_code == 1, result.output
    run = GradeRun.read(out)
    items = {item.id: item for item in run.items}
    assert items["ch04.GELU"].status == "error" and items["ch04.GELU"].points == 0
    error = next(e for e in run.load_errors if e.module == "ch04")
    assert error.message_id == "load.imports_grader_code" and error.line == line, error
    assert "imports reference.ch04" in error.message and "Write the code yourself" in error.message
    assert f"ch04.py line {line} imports reference.ch04" in result.output  # the terminal says it too
    assert items["ch03.SelfAttention_v1"].status == "passed"  # its own code is right: graded as such
    assert items["ch03.MultiHeadAttention"].status == "passed"
    assert all(item.status != "answer_key" for item in run.items)
    # the instructor's note: only what the files say, with file and line (the built name is not in them)
    assert [(n.file, n.line, n.name) for n in run.grader_code] == [("ch04.py", line, "reference.ch04")]
    assert "answer key" not in result.output
