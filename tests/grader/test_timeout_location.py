"""A timeout says where the student's code was when it was stopped, and which item holds that line.

The stack comes from the worker (faulthandler on SIGUSR1, just before the kill); the parent reads it
as untrusted text: frames outside the student's folder, or pointing at lines that do not exist, are
ignored, and the source line is read from the student's own file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.runner.run import grade_submission
from grader.sandbox.stack_dump import owner_item, stuck_at

ROOT = Path(__file__).resolve().parents[2]
HANG = "        while True:\n            x = x * 1.0  # stuck here\n"


def _dump(*frames: tuple[str, int, str]) -> str:
    body = "".join(f'  File "{file}", line {line} in {function}\n' for file, line, function in frames)
    return f"Current thread 0x00007f (most recent call first):\n{body}\n"


def _submission(tmp_path: Path) -> tuple[Path, int]:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    ch04 = work / "ch04.py"
    source = ch04.read_text("utf-8")
    start = source.index('        """Apply the tanh approximation of GELU elementwise."""\n')
    end = source.index("        # END SOLUTION", start)
    source = source[:start] + HANG + source[end:]
    ch04.write_text(source, "utf-8")
    line = source.splitlines().index("            x = x * 1.0  # stuck here") + 1
    return work, line


def test_a_hang_names_the_file_line_and_source_line(tmp_path: Path) -> None:
    work, line = _submission(tmp_path)
    run = grade_submission(work, ["ch04.GELU", "ch04.LayerNorm"])
    gelu = next(item for item in run.items if item.id == "ch04.GELU")
    first = next(c for c in gelu.checks if c.status == "failed")
    # The reference ran the same call first, so the message also says how long it took (issue 10).
    assert first.message_id == "check.student_timeout_at_paced"
    assert float(first.details["reference_s"]) > 0 and "the reference solution took" in first.message
    assert f"ch04.py:{line}, in forward: `x = x * 1.0  # stuck here`" in first.message
    assert first.details["line"] == line and first.details["stuck_in_item"] == "ch04.GELU"
    assert "which is the code of" not in first.message  # its own item: no one else to blame
    assert next(i for i in run.items if i.id == "ch04.LayerNorm").status == "passed"


def test_the_innermost_frame_in_the_students_folder_is_blamed_on_its_item(tmp_path: Path) -> None:
    work, line = _submission(tmp_path)
    dump = _dump(("/usr/lib/python3/site-packages/torch/nn/modules/module.py", 12, "_call_impl"),
                 (str(work / "ch04.py"), line, "forward"),
                 (str(work / "ch04.py"), 1, "<module>"))
    found = stuck_at(dump, work)
    assert found is not None
    assert (Path(found.file).name, found.line, found.function) == ("ch04.py", line, "forward")
    assert found.source_line == "x = x * 1.0  # stuck here" and found.item == "ch04.GELU"
    assert owner_item(work / "ch04.py", 1) == ""  # the module docstring belongs to no item


def test_a_forged_or_foreign_dump_is_ignored(tmp_path: Path) -> None:
    work, line = _submission(tmp_path)
    assert stuck_at(_dump(("/etc/passwd", 1, "f"), (str(work / "ch04.py"), 10**6, "f")), work) is None
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    escape = str(work / ".." / "elsewhere.py")
    assert stuck_at(_dump((escape, 1, "f")), work) is None
    assert stuck_at('File "\n' * 10_000, work) is None
