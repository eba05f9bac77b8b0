"""What a newcomer tripped on (issue 22), each through the real CLI: one notebook graded alone, a
workspace that keeps its language, commands run from a subfolder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader.cli import main


@pytest.fixture(autouse=True)
def _no_language_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither LLMGRADE_LANG nor a locale chooses a language: what the workspace says decides."""
    for var in ("LLMGRADE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def init(*args: str) -> None:
    """``llmgrade init ARGS``, then forget the language it chose (``--lang`` stays in this process's
    environment, as it does for the processes a command starts): later commands are new ones."""
    import os

    assert run("init", *args).exit_code == 0
    os.environ.pop("LLMGRADE_LANG", None)


def test_one_notebook_is_graded_as_its_chapter_into_the_workspace_gradebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "ws"
    init("--notebooks", str(workspace))
    monkeypatch.chdir(workspace)
    result = run("grade", "--submission", "ch03.ipynb")
    assert result.exit_code == 1, result.output  # the stubs: not passed (2 was "could not open")
    assert "Could not open the gradebook" not in result.output
    assert "0 / 17 points" in result.output  # ch03's 17 points, not the whole book's
    assert "ch04" not in result.output and "appendix_a.py" not in result.output
    assert (workspace / ".llmgrade" / "gradebook.sqlite").is_file()
    assert f"{workspace / '.llmgrade' / 'report.html'}(" in "".join(result.output.split())
    assert (workspace / ".llmgrade" / "report.html").is_file()
    assert not (workspace / "ch03.ipynb").is_dir()


def test_a_chinese_workspace_speaks_chinese_unless_told_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "ws"
    init("--lang", "zh-CN", str(workspace))
    monkeypatch.chdir(workspace)
    assert "共8个评分项" in run("list", "ch03").output
    assert "8 items, 17 points in all." in run("list", "ch03", "--lang", "en").output
    monkeypatch.delenv("LLMGRADE_LANG")  # what --lang left
    monkeypatch.setenv("LLMGRADE_LANG", "en")
    assert "8 items, 17 points in all." in run("list", "ch03").output
    monkeypatch.delenv("LLMGRADE_LANG")
    monkeypatch.chdir(tmp_path)  # outside, but grading it by name
    result = run("grade", "ch03.SelfAttention_v1", "--submission", str(workspace))
    assert "得分" in result.output, result.output
    assert '<html lang="zh-CN">' in (workspace / ".llmgrade" / "report.html").read_text("utf-8")


def test_the_notebook_checker_speaks_the_workspace_language(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmgrade
    from grader.errors import SetupError

    init("--notebooks", "--lang", "zh-CN", str(tmp_path / "ws"))
    monkeypatch.chdir(tmp_path / "ws")
    with pytest.raises(SetupError) as raised:
        llmgrade.check("ch03.NoSuchThing")
    assert "ch03.NoSuchThing" in str(raised.value) and "。" in str(raised.value)


def test_commands_find_the_workspace_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "ws"
    init(str(workspace))
    (workspace / "notes" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(workspace / "notes" / "deeper")
    result = run("check", "ch03.SelfAttention_v1")
    assert result.exit_code == 1, result.output  # graded (a stub), not "no workspace here" (2)
    assert "SelfAttention_v1" in result.output and "not started" in result.output


def test_a_check_in_a_notebook_workspace_names_only_its_own_notebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init("--notebooks", str(tmp_path / "ws"))
    monkeypatch.chdir(tmp_path / "ws")
    result = run("check", "ch03.SelfAttention_v1")
    assert result.exit_code == 1, result.output
    assert "ch03.ipynb was graded: every code cell holds definitions." in " ".join(result.output.split())
    assert "ch02.ipynb" not in result.output and "ch04.ipynb" not in result.output
    assert "%load_ext" not in result.output and "%llmgrade" not in result.output


def test_the_readme_first_command_installs_the_cpu_build_of_torch() -> None:
    """A plain ``pip install torch==...`` on Linux downloads the CUDA build (gigabytes)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    first = readme.split("```sh\n", 1)[1].split("\n", 1)[0]
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu &&" in first
    assert first.endswith("llmgrade grade --submission solutions --no-record")


def test_grade_class_takes_suites_device_and_time_scale_like_grade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.classroom import grade_class
    from grader.runner.options import GradeOptions

    (tmp_path / "subs" / "ann").mkdir(parents=True)
    missing = run("grade-class", str(tmp_path / "subs"), "--suites", str(tmp_path / "nowhere"),
                  "--allow-unisolated", "--db", str(tmp_path / "gb.sqlite"))
    assert missing.exit_code == 2 and "nowhere" in missing.output and "No such option" not in missing.output

    seen: dict[str, object] = {}

    def fake_grade_class(*_args: object, **kwargs: object) -> grade_class.ClassSummary:
        seen.update(kwargs)
        return grade_class.ClassSummary()

    monkeypatch.setattr(grade_class, "grade_class", fake_grade_class)
    (tmp_path / "mine").mkdir()
    result = run("grade-class", str(tmp_path / "subs"), "--suites", str(tmp_path / "mine"), "--device", "cpu",
                 "--time-scale", "2.5", "--allow-unisolated", "--db", str(tmp_path / "gb.sqlite"))
    assert result.exit_code == 0, result.output
    assert seen["options"] == GradeOptions("cpu", (str(tmp_path / "mine"),), 2.5)
    assert seen["time_limit_s"] == grade_class.DEFAULT_TIME_LIMIT_S * 2.5
    assert GradeOptions("cpu", (str(tmp_path / "mine"),), 2.5).kwargs() == {
        "device": "cpu", "suites": [tmp_path / "mine"], "time_scale": 2.5}


def test_grade_class_hands_its_options_to_each_grade(tmp_path: Path) -> None:
    from grader.classroom.grade_class import grade_class
    from grader.runner.options import GradeOptions
    from tests.grader.fake_runs import fake_run, write_submission

    write_submission(tmp_path / "subs" / "ann")
    calls: list[dict[str, object]] = []

    def grade(folder: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return fake_run(submission=str(folder))

    grade_class(tmp_path / "subs", tmp_path / "gb.sqlite", grade_fn=grade, progress=None,
                options=GradeOptions("cpu", (str(tmp_path),), 3.0))
    assert calls and calls[0]["device"] == "cpu" and calls[0]["suites"] == [tmp_path]
    assert calls[0]["time_scale"] == 3.0


def test_an_accepted_convention_is_said_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "ws"
    init(str(workspace))
    solution = (Path(__file__).resolve().parents[2] / "solutions" / "ch02.py").read_text("utf-8")
    printed = solution.replace("""return re.sub(r'\\s+([,.:;?!"()\\'])', r"\\1", text)""",
                               """return re.sub(r'\\s+([,.?!"()\\'])', r"\\1", text)""", 1)
    assert printed != solution
    (workspace / "ch02.py").write_text(printed, encoding="utf-8")
    monkeypatch.chdir(workspace)
    result = run("check", "ch02.SimpleTokenizerV1")
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()).count("Accepted: you used") == 1, result.output


def test_watch_says_save_again_and_a_syntax_error_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.runner.commands import watch_items

    workspace = tmp_path / "ws"
    init(str(workspace))
    (workspace / "ch04.py").write_text("import torch\n\ndef gelu(:\n    pass\n", encoding="utf-8")
    assert watch_items(workspace, ["ch04.GELU"], checks=1) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("has a syntax error at line 3") == 1, out
    assert "save again" in out and "grade again" not in out


def test_grading_without_a_terminal_says_how_far_it_is(tmp_path: Path) -> None:
    """Finding 11: in a log or CI (stderr not a terminal) ``grade`` was silent until the end."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "grader.cli", "grade", "ch03", "--submission",
                             str(root / "solutions"), "--no-record", "--lang", "en"],
                            capture_output=True, text=True, cwd=root, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Grading: ")]
    assert 2 <= len(lines) <= 10, result.stderr  # a tenth at a time, not one line per check
    done = [int(line.split()[1]) for line in lines]
    assert done == sorted(done) and lines[-1].endswith(f"{done[-1]} of {done[-1]} checks done.")
