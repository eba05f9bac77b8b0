"""`llmgrade grade` and `llmgrade check` through click: output, exit codes, files written."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from grader.cli import main
from grader.results import GradeRun

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def copy_solutions(tmp_path: Path) -> Path:
    target = tmp_path / "work"
    shutil.copytree(SOLUTIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_grade_prints_a_table_records_the_run_and_writes_json(tmp_path: Path) -> None:
    work = copy_solutions(tmp_path)
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["grade", "ch04.GELU", "ch04.LayerNorm", "--submission", str(work),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "ch04.GELU" in result.output and "Score: 3 / 3 points" in result.output
    run = GradeRun.read(out)
    assert [item.status for item in run.items] == ["passed", "passed"]
    assert run.device == "cpu" and run.torch_version
    assert (work / ".llmgrade" / "gradebook.sqlite").is_file()
    report = (work / ".llmgrade" / "report.html").read_text("utf-8")
    assert "ch04.GELU" in report


def test_check_shows_every_check_and_the_diagnosis(tmp_path: Path) -> None:
    work = copy_solutions(tmp_path)
    ch03 = work / "ch03.py"
    source = ch03.read_text("utf-8")
    head, sep, tail = source.rpartition("attn_scores / keys.shape[-1] ** 0.5")
    ch03.write_text(head + "attn_scores" + tail, "utf-8")
    result = CliRunner().invoke(main, ["check", "ch03.MultiHeadAttention", "--submission", str(work)])
    assert result.exit_code == 1
    assert "[passed] state_dict_names_and_mask_buffer" in result.output
    assert "[failed] forward_and_gradients" in result.output
    assert "not divided by sqrt(head_dim)" in " ".join(result.output.split())  # wrapped to the width


def test_setup_errors_exit_2_with_one_sentence(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["grade", "ch99.Nothing", "--submission", str(SOLUTIONS), "--no-record"])
    assert unknown.exit_code == 2 and "llmgrade list" in unknown.output
    device = runner.invoke(main, ["grade", "ch04.GELU", "--submission", str(SOLUTIONS), "--no-record",
                                  "--device", "nosuchdevice"])
    assert device.exit_code == 2 and "cannot be used" in device.output
    assert "Traceback" not in device.output
    from_env = runner.invoke(main, ["grade", "ch04.GELU", "--submission", str(SOLUTIONS), "--no-record"],
                             env={"LLMGRADE_DEVICE": "nosuchdevice"})  # the documented override reaches pytest
    assert from_env.exit_code == 2 and "LLMGRADE_DEVICE is set to 'nosuchdevice'" in from_env.output
    missing = runner.invoke(main, ["grade", "--submission", str(tmp_path / "nowhere"), "--no-record"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
