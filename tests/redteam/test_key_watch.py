"""The answer-key tripwire cannot be blinded into giving points, and the worker's own objects are no
side door: a hostile submission (tests/redteam/key_attacks.py) tries each way, through the real CLI,
next to an honest item of the same module."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun
from tests.redteam.key_attacks import write_blind_at_import, write_submission

# item -> what it tried; True where the tripwire must also have said so (the pipe attack blinds
# the report itself, so there the use is refused without a word).
ATTACKED = {
    "ch03.SelfAttention_v1": True,  # gc.get_objects to find the hook and blank its closure
    "ch03.SelfAttention_v2": True,  # monkeypatched sys/os helpers and builtins, cleared globals, a lying str
    "ch03.CausalAttention": True,  # sys._getframe / tb_frame into the worker's frames
    "ch04.GELU": True,  # the tripwire's pipe pointed at /dev/null: the worker ends, and that counts
    "ch04.LayerNorm": True,  # code compiled under a file name of the Python install
    "ch04.FeedForward": True,  # the reference's source read from disk and run
    "ch04.TransformerBlock": True,  # sys.modules["reference.ch04"], loaded for the checks' swaps
    "ch04.ExampleDeepNeuralNetwork": True,  # the import run in a subprocess, where no hook is
}


def test_blinding_the_tripwire_scores_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    write_submission(work)
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", *ATTACKED, "ch03.MultiHeadAttention", "--submission", str(work),
                                       "--no-record", "--json", str(out)])
    assert result.exit_code == 1, result.output
    items = {item.id: item for item in GradeRun.read(out).items}
    for item_id, reported in ATTACKED.items():
        item = items[item_id]
        summary = [(c.name, c.status, c.message_id, c.message[:200]) for c in item.checks]
        assert item.points == 0 and item.status != "passed", (item_id, summary)
        if reported:
            assert item.status == "answer_key", (item_id, summary)
            assert any(c.message_id == "check.uses_answer_key" for c in item.checks), (item_id, summary)
    block = [c.message for c in items["ch04.TransformerBlock"].checks if c.message_id == "check.uses_answer_key"]
    assert "reference.ch04.TransformerBlock" in block[0], block  # the module's guard saw it, not a file read
    spawn = [c.message for c in items["ch04.ExampleDeepNeuralNetwork"].checks if c.message_id == "check.uses_answer_key"]
    assert "subprocess.Popen" in spawn[0], spawn
    assert items["ch03.MultiHeadAttention"].status == "passed"


def test_blinding_the_tripwire_while_modules_load_scores_nothing(tmp_path: Path) -> None:
    """Which module did it cannot be told once the report pipe is gone: every item scores 0."""
    work = tmp_path / "work"
    write_blind_at_import(work)
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch03.SelfAttention_v1", "ch04.GELU", "--submission", str(work),
                                       "--no-record", "--json", str(out)])
    assert result.exit_code == 1, result.output
    run = GradeRun.read(out)
    assert [(i.id, i.status, i.points) for i in run.items] == [
        ("ch03.SelfAttention_v1", "answer_key", 0), ("ch04.GELU", "answer_key", 0)], result.output
    error = next(e for e in run.load_errors if e.module == "*")
    assert error.kind == "answer_key" and "blinds the grader's answer-key check" in error.message
