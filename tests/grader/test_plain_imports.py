"""Chapter files import each other by plain name (``from ch03 import ...``, as solutions/ and the
stubs do, so that ``python ch04.py`` and a notebook work), or relatively (``from .ch03 import ...``,
as workspaces made before did): in the worker both names are the package's own module, so swapping
a dependency for the reference's reaches every place the student's code uses it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_a_dependency_imported_relatively_is_swapped_like_one_imported_by_plain_name(tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    ch04 = submission / "ch04.py"
    text = ch04.read_text("utf-8")
    assert "from ch03 import MultiHeadAttention" in text
    ch04.write_text(text.replace("from ch03 import MultiHeadAttention", "from .ch03 import MultiHeadAttention"), "utf-8")
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


def test_a_chapter_runs_as_a_script_and_imports_from_a_prompt_in_the_workspace(tmp_path: Path) -> None:
    """What the workspace README tells a student to try: their own code, outside the grader."""
    from grader.authoring.workspace import init_workspace

    workspace = init_workspace(tmp_path / "my_llm", lang="en")
    for name in ("ch02.py", "ch03.py", "ch04.py"):
        shutil.copyfile(SOLUTIONS / name, workspace / name)
    (workspace / "ch04.py").write_text((workspace / "ch04.py").read_text("utf-8") + (
        "\n\nif __name__ == \"__main__\":\n"
        "    model = GPTModel({**GPT_CONFIG_124M, 'n_layers': 1, 'emb_dim': 16, 'n_heads': 2})\n"
        "    print('layers', len(model.trf_blocks))\n"), "utf-8")
    script = subprocess.run([sys.executable, "ch04.py"], cwd=workspace, capture_output=True, text=True, timeout=300)
    assert script.returncode == 0 and "layers 1" in script.stdout, script.stderr
    prompt = subprocess.run([sys.executable, "-c", "from ch04 import TransformerBlock; print(TransformerBlock.__name__)"],
                            cwd=workspace, capture_output=True, text=True, timeout=300)
    assert prompt.returncode == 0 and "TransformerBlock" in prompt.stdout, prompt.stderr
    readme = (workspace / "README.md").read_text("utf-8")
    assert "python ch04.py" in readme and "from ch04 import" in readme
