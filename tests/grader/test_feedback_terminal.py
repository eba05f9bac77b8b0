"""What a student reads in an 80-column terminal: "Fix next" with every diagnosis whole, not-started
items one line per chapter, checks that fail the same way said once, "did you mean" for a near miss.

One real grading run (the book's scaling mistake in MultiHeadAttention, ch04 left as stubs) through
the real CLI, read as the student sees it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader import catalog
from grader.classroom.export import gradescope_results
from grader.cli import main
from grader.messages import t
from grader.results import CheckResult, GradeRun
from grader.runner.summary import format_details
from tests.grader.fake_runs import fake_run

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 80
SCALING = "attn_scores / keys.shape[-1] ** 0.5"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Result:
    work = tmp_path_factory.mktemp("fb") / "work"
    shutil.copytree(ROOT / "exercises", work, ignore=shutil.ignore_patterns("__pycache__"))
    source = (ROOT / "solutions" / "ch03.py").read_text("utf-8")
    head, sep, tail = source.rpartition(SCALING)  # only MultiHeadAttention's (the last) scaling
    assert sep
    (work / "ch03.py").write_text(head + "attn_scores" + tail, "utf-8")
    return CliRunner().invoke(main, ["grade", "ch03.MultiHeadAttention", "ch04", "--submission", str(work)],
                              env={"COLUMNS": str(WIDTH), "LLMGRADE_LANG": ""})


def flat(text: str) -> str:
    return " ".join(text.split())


def test_fix_next_comes_first_with_the_whole_diagnosis_in_80_columns(graded: Result) -> None:
    out = graded.output
    assert graded.exit_code == 1, out
    lines = out.splitlines()
    assert lines[0].startswith("Fix next")
    assert lines[1].strip().startswith("1. ch03.MultiHeadAttention")
    too_wide = [line for line in lines if len(line) > WIDTH and " " in line.strip()]
    assert too_wide == []
    diagnosis = t("diagnosis.attention_missing_scaling")
    fix_next = flat(out[:out.index("ch03 (")])
    assert diagnosis in fix_next  # the whole "Likely mistake" sentence, wrapped, never cut
    assert "..." not in out
    assert "report.html#detail-ch03.MultiHeadAttention" in fix_next


def test_identical_failures_are_merged(graded: Result) -> None:
    fix_next = flat(graded.output[:graded.output.index("ch03 (")])
    assert fix_next.count(t("diagnosis.attention_missing_scaling")) == 1
    assert "3 checks (forward_and_gradients, four_heads_with_qkv_bias, batch_of_one_at_full_context):" \
        in fix_next


def test_not_started_items_take_one_line_per_chapter(graded: Result) -> None:
    lines = graded.output.splitlines()
    ch04 = [item for item in catalog.ITEMS if item.module == "ch04"]
    points = sum(item.points for item in ch04)
    assert f"ch04: {len(ch04)} not started ({points:g} points)" in lines
    assert not any(item.id in line for item in ch04 for line in lines)
    assert "Not started yet" not in graded.output
    assert "ch03.MultiHeadAttention" in graded.output.split("ch03 (")[1]  # the table row


def test_did_you_mean_and_ids_ignore_case() -> None:
    runner = CliRunner()
    for typo, meant in [("ch03.MHA", "ch03.MultiHeadAttention"), ("ch03.MultiheadAtention", "ch03.MultiHeadAttention"),
                        ("ch04.gelu.", "ch04.GELU"), ("appendixe", "appendix_e")]:
        result = runner.invoke(main, ["check", typo, "--submission", str(ROOT / "solutions")])
        assert result.exit_code == 2, result.output
        assert f"did you mean {meant}?" in result.stderr
        assert "Traceback" not in result.output
    listed = runner.invoke(main, ["list", "CH3", "CH04.GELU"])
    assert listed.exit_code == 0, listed.output
    assert "ch03.MultiHeadAttention" in listed.output and "ch04.GELU" in listed.output
    assert "ch04.LayerNorm" not in listed.output
    nothing = runner.invoke(main, ["list", "zzzz"])
    assert nothing.exit_code == 2 and "did you mean" not in nothing.stderr


def test_every_command_help_has_an_example_and_init_names_target() -> None:
    runner = CliRunner()
    for name in ["", *main.commands]:
        result = runner.invoke(main, [name, "--help"] if name else ["--help"])
        assert result.exit_code == 0 and "Example:\n    llmgrade " in result.output, name
    init = runner.invoke(main, ["init", "--help"]).output
    assert "TARGET" in init and "DIR" not in init


def test_gradescope_output_says_a_repeated_failure_once() -> None:
    run: GradeRun = fake_run(statuses={"ch03.MultiHeadAttention": "failed"})
    item = next(i for i in run.items if i.id == "ch03.MultiHeadAttention")
    item.checks = [CheckResult(f"check_{n}", "failed", message=f"same words {n % 2}", details={})
                   for n in range(5)]
    test = next(x for x in gradescope_results(run)["tests"] if x["number"] == item.id)
    assert test["output"].count("same words 0") == 1 and test["output"].count("same words 1") == 1
    assert "3 checks (check_0, check_2, check_4): same words 0" in test["output"]


def test_chinese_text_wraps_by_screen_columns_keeping_latin_words_whole() -> None:
    from grader.runner.summary import _columns, wrap

    text = "没有名为“ch03.mha”的评分项或章；你要找的是不是ch03.MultiHeadAttention？运行“llmgrade list”查看所有ID。" * 3
    lines = wrap(text, 40, "  ", "- ")
    assert all(sum(_columns(ch) for ch in line) <= 40 for line in lines)
    assert "".join(line[2:] for line in lines).replace(" ", "") == text.replace(" ", "")  # nothing lost
    assert all("ch03.MultiHeadAttention" in line for line in lines if "MultiHead" in line)


def test_check_says_why_a_failed_check_costs_a_passed_item_nothing() -> None:
    # ``check ch04.GPTModel`` with a LayerNorm bug: 4/4, and its integration check fails; the line
    # under that check says whose failure it is (issue 10), not a bare [failed]
    run: GradeRun = fake_run(statuses={"ch04.GPTModel": "passed"})
    item = next(i for i in run.items if i.id == "ch04.GPTModel")
    blamed = t("check.used_failing_dependency", item=item.id, dependency="ch04.LayerNorm",
               title="Layer normalization", message="GPTModel output differs")
    item.checks = [CheckResult("gpt_logits_and_gradients", "passed"),
                   CheckResult("gpt_with_your_blocks_and_layernorm", "failed", message=blamed,
                               blamed_on="ch04.LayerNorm")]
    run.items = [item]
    text = flat(format_details(run, width=80))
    assert "[failed] gpt_with_your_blocks_and_layernorm" in text
    assert flat(blamed) in text and "Fix ch04.LayerNorm first" in text
