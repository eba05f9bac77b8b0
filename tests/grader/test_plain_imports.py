"""Chapter files may import each other by plain name (``from ch03 import ...``), as a script or a
notebook does: in the worker that name is the package's own module, so swapping a dependency for
the reference's reaches every place the student's code uses it."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_a_dependency_imported_by_plain_name_is_swapped_like_a_relative_import(tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    ch04 = submission / "ch04.py"
    text = ch04.read_text("utf-8")
    assert "from .ch03 import MultiHeadAttention" in text
    ch04.write_text(text.replace("from .ch03 import MultiHeadAttention", "from ch03 import MultiHeadAttention"), "utf-8")
    ch03 = submission / "ch03.py"
    lines = ch03.read_text("utf-8").splitlines(keepends=True)
    # MultiHeadAttention (the last class of the four) forgets to scale the scores
    lines[199] = lines[199].replace("attn_scores / keys.shape[-1] ** 0.5", "attn_scores")
    ch03.write_text("".join(lines), "utf-8")

    run = grade_submission(submission, ["ch03.MultiHeadAttention", "ch04.TransformerBlock"])

    got = {item.id: item for item in run.items}
    assert got["ch03.MultiHeadAttention"].status == "failed"
    # Checks that swap the reference's MultiHeadAttention in pass; the ones that run the student's
    # own attention are charged to it: one mistake costs points once.
    block = got["ch04.TransformerBlock"]
    assert block.status == "passed", [(c.name, c.status, c.message) for c in block.checks]
    assert any(c.blamed_on == "ch03.MultiHeadAttention" for c in block.checks)
