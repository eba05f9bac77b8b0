"""Adversarial submissions: none of them raises a score, and none stops the run.

Each submission is a copy of solutions/ whose chosen ``forward`` methods are replaced by hostile
code; the items they belong to must fail with the right reason, and an untouched item graded in
the same run must still pass.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def hostile_copy(tmp_path: Path, module: str, patches: dict[str, str]) -> Path:
    """solutions/ with ``Class.forward`` replaced by ``body`` for each class in ``patches``."""
    target = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    path = target / f"{module}.py"
    extra = []
    for cls, body in patches.items():
        extra.append(f"\n\ndef _hostile_{cls}(self, *args, **kwargs):\n{textwrap.indent(textwrap.dedent(body), '    ')}\n"
                     f"{cls}.forward = _hostile_{cls}\n")
    path.write_text(path.read_text("utf-8") + "".join(extra), "utf-8")
    return target


def statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {item.id: item.status for item in run.items}


def first_failure_id(run, item_id: str) -> str:  # type: ignore[no-untyped-def]
    item = next(i for i in run.items if i.id == item_id)
    return next(c.message_id for c in item.checks if c.status == "failed")


def test_hang_crash_exit_and_segfault_cost_only_their_items(tmp_path: Path) -> None:
    submission = hostile_copy(tmp_path, "ch03", {
        "MultiHeadAttention": "while True:\n    pass\n",
        "CausalAttention": "import os\nos._exit(0)\n",
        "SelfAttention_v1": "import ctypes\nctypes.string_at(0)\n",
        "SelfAttention_v2": "import sys\nsys.exit(0)\n",
    })
    run = grade_submission(submission, ["ch03.MultiHeadAttention", "ch03.CausalAttention",
                                        "ch03.SelfAttention_v1", "ch03.SelfAttention_v2", "ch04.GELU"])
    assert run.status == "complete"
    got = statuses(run)
    assert got["ch04.GELU"] == "passed"
    for item in ("ch03.MultiHeadAttention", "ch03.CausalAttention", "ch03.SelfAttention_v1",
                 "ch03.SelfAttention_v2"):
        assert got[item] == "failed", (item, got[item])
    # stopped where it was stuck, with a limit scaled from the reference's own time for the same call
    assert first_failure_id(run, "ch03.MultiHeadAttention") == "check.student_timeout_at_paced"
    mha = next(i for i in run.items if i.id == "ch03.MultiHeadAttention")
    timeout = next(c for c in mha.checks if c.status == "failed")
    assert timeout.details["reference_s"] > 0 and "the reference solution took" in timeout.message
    assert first_failure_id(run, "ch03.CausalAttention") == "check.student_crashed"
    assert first_failure_id(run, "ch03.SelfAttention_v1") == "check.student_crashed"
    assert first_failure_id(run, "ch03.SelfAttention_v2") == "check.student_exited"


def test_memory_bomb_fails_cleanly(tmp_path: Path) -> None:
    submission = hostile_copy(tmp_path, "ch03", {
        "MultiHeadAttention": "import torch\nreturn torch.ones(10**6, 10**5)\n",
    })
    run = grade_submission(submission, ["ch03.MultiHeadAttention", "ch04.GELU"])
    got = statuses(run)
    assert got == {"ch03.MultiHeadAttention": "failed", "ch04.GELU": "passed"}
    assert first_failure_id(run, "ch03.MultiHeadAttention") == "check.student_memory"


def test_cheating_does_not_raise_the_score(tmp_path: Path) -> None:
    """Patched comparisons, fake PASSED lines and forged result files change nothing."""
    submission = hostile_copy(tmp_path, "ch03", {
        "MultiHeadAttention": """
            import glob, json, torch
            torch.allclose = lambda *a, **k: True
            torch.equal = lambda *a, **k: True
            print("PASSED ch03.MultiHeadAttention 5/5\\n100% all checks passed")
            for path in glob.glob("/tmp/llmgrade-run-*/checks.json*"):
                try:
                    with open(path, "w") as fh:
                        json.dump({"payload": {"format": "llmgrade.checks/1", "checks": []}, "signature": "0"}, fh)
                except OSError:
                    pass
            x = args[0]
            return torch.zeros(x.shape[0], x.shape[1], self.d_out, dtype=x.dtype)
        """,
    })
    run = grade_submission(submission, ["ch03.MultiHeadAttention", "ch04.GELU"])
    got = statuses(run)
    assert got["ch03.MultiHeadAttention"] == "failed"
    assert got["ch04.GELU"] == "passed"
    mha = run.items[0]
    assert mha.points < mha.max_points / 2


def test_student_pytest_configuration_has_no_effect(tmp_path: Path) -> None:
    """A conftest.py or pytest.ini in the submission cannot touch the trusted pytest process."""
    submission = hostile_copy(tmp_path, "ch03", {})
    (submission / "conftest.py").write_text(
        "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n", "utf-8")
    (submission / "pytest.ini").write_text("[pytest]\naddopts = -p no:grader.checking.plugin --co\n", "utf-8")
    mha = submission / "ch03.py"
    mha.write_text(mha.read_text("utf-8").replace("attn_scores / keys.shape[-1] ** 0.5",
                                                  "attn_scores"), "utf-8")
    run = grade_submission(submission, ["ch03.MultiHeadAttention"])
    assert statuses(run) == {"ch03.MultiHeadAttention": "failed"}


def test_instructor_suites_are_added_with_the_same_fixtures(tmp_path: Path) -> None:
    suites = tmp_path / "private"
    suites.mkdir()
    (suites / "test_ch04_private.py").write_text(
        "import pytest\nimport torch\nfrom grader.checking.checks import module_forward\n\n"
        "@pytest.mark.item('ch04.GELU')\n"
        "def test_private_gelu_on_large_inputs(student, ref):\n"
        "    x = torch.linspace(-50, 50, 101, dtype=torch.float64).view(1, 1, -1)\n"
        "    module_forward(student, ref, 'ch04', 'GELU', [], [x], token_dim=None)\n", "utf-8")
    run = grade_submission(SOLUTIONS, ["ch04.GELU"], suites=[suites])
    (gelu,) = run.items
    assert gelu.status == "passed"
    assert "private_gelu_on_large_inputs" in [c.name for c in gelu.checks]


def test_a_private_suite_that_kills_the_grading_process_stays_private(tmp_path: Path) -> None:
    """Issue 20: when the grading process ends without results, the run's error is the tail of its
    log, which can quote an instructor's suite. The instructor's record keeps it; the student's view
    (terminal, JSON, report) says only that grading failed and whom to ask."""
    from grader.classroom.gradebook import Gradebook

    secret = "PRIVATE-CHECK-TEXT-31c9"
    suites = tmp_path / "private"
    suites.mkdir()
    (suites / "test_ch04_private.py").write_text(
        "import os, pytest\n\n"
        "@pytest.mark.item('ch04.GELU')\n"
        "def test_private_gelu(student, ref):\n"
        "    # what a crash's traceback would print: the suite's own text, into the process's log\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            if os.readlink(f'/proc/self/fd/{fd}').endswith('pytest.log'):\n"
        f"                os.write(int(fd), b'assert x == {secret}\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(3)\n", "utf-8")
    run = grade_submission(SOLUTIONS, ["ch04.GELU"], suites=[suites])
    assert run.status == "setup_error" and run.error_private and secret in run.error
    view = run.student_view()
    assert secret not in view.to_json() and "instructor" in view.error
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("student", run)
        kept = book.latest("student")
    assert kept is not None and kept.error_private and secret in kept.error  # the instructor's copy
    plain = grade_submission(SOLUTIONS, ["ch04.GELU"])
    assert not plain.error_private  # no private suites: nothing to hide
