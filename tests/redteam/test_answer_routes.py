"""Issue 19's routes to the answer key, each through the real CLI from the untouched stubs.

Each submission is ``exercises/`` plus a few lines appended to the chapter files a route needs
(tests/redteam/route_attacks.py); those lines only try to reach the grader's own reference and put
it in place of the stubs, so every point such a submission scores came from the answer key. The
guarantee under test: the process that runs the student's code for an item never holds that item's
reference, so every route finds nothing and the submission scores 0 with no item passed.

On the design with the reference inside the worker, guarded by an in-process tripwire
(grader/sandbox/key_watch.py), these routes score above 0: these tests fail there by intent, and
each failure says what the route scored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.results import GradeRun, ItemResult
from tests.redteam.route_attacks import write_submission

pytestmark = pytest.mark.slow  # each grades one to three chapters through the CLI (10-25 s)

CLI_TIMEOUT_S = 600


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(cwd))
    env.pop("CI", None)  # the grader's own CI switches, not the student's run
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          env=env, timeout=CLI_TIMEOUT_S, cwd=cwd, check=False)


def _gained(items: list[ItemResult]) -> list[str]:
    return [f"{i.id} {i.status} {i.points:g}/{i.max_points:g}" for i in items
            if i.points > 0 or i.status == "passed"]


def _assert_nothing_gained(route: str, run: GradeRun, chapters: tuple[str, ...], how: str) -> None:
    assert run.isolation.startswith("bwrap"), run.isolation  # the OS walls were up
    assert run.status == "complete", (run.status, run.error)
    items = [i for i in run.items if i.module in chapters]
    assert items, [i.id for i in run.items]
    score = sum(i.points for i in items)
    gained = _gained(items)
    assert score == 0 and not gained, (
        f"route {route!r} reached the answer key: {score:g}/{sum(i.max_points for i in items):g} points on "
        f"{', '.join(chapters)} from the stubs ({how}); items that gained: {gained}")


def _grade_route(tmp_path: Path, route: str, chapters: tuple[str, ...]) -> None:
    """``llmgrade grade CHAPTERS`` on the stubs with ``route`` appended to each of ``chapters``."""
    submission = write_submission(tmp_path / "student", route, chapters)
    out = tmp_path / "results.json"
    done = _cli(tmp_path, "grade", *chapters, "--submission", str(submission), "--json", str(out), "--no-record")
    assert done.returncode in (0, 1) and out.is_file(), done.stdout + done.stderr
    how = f"python -m grader.cli grade {' '.join(chapters)} --submission DIR --json OUT --no-record"
    _assert_nothing_gained(route, GradeRun.read(out), chapters, how)


def test_reference_imported_on_a_thread_pool_thread(tmp_path: Path) -> None:
    """Route 1: ``ThreadPoolExecutor().submit(importlib.import_module, "reference.ch03")`` and
    ``vars`` of the module on the same thread: no frame of the student's on that stack."""
    _grade_route(tmp_path, "thread", ("ch02", "ch03", "ch04"))


def test_spawn_child_reads_the_reference_source(tmp_path: Path) -> None:
    """Route 2: a multiprocessing "spawn" child (a fresh interpreter) reads reference/<chapter>.py,
    found from a module's readable ``__file__``; the student's module execs the source it returns."""
    _grade_route(tmp_path, "spawn", ("ch02", "ch03", "ch04"))


def test_recipes_impl_patched_through_sys_modules(tmp_path: Path) -> None:
    """Route 3: ``sys.modules["grader.recipes"].Impl.module = ReferenceSource.module``: every recipe
    asks the grader's own reference source for the student's module."""
    _grade_route(tmp_path, "impl", ("ch03", "ch04"))


def test_tripwire_closure_blinded_in_grade_class(tmp_path: Path) -> None:
    """Route 4, through ``llmgrade grade-class``: the guarded module's type
    (``type(sys.modules["reference"])``) leads to its ``__getattribute__``'s closure and from there
    to every cell the tripwire shares (what it refuses, whose code it watches); they are rewritten
    so it sees and refuses nothing, then the reference is imported outright.

    ``grade-class`` grades every item: the submission holds only the two chapters the route needs
    (the others are reported missing without their checks being run), which keeps the run short."""
    chapters = ("ch03", "ch04")
    classroom = tmp_path / "class"
    write_submission(classroom / "mallory", "closure", chapters, only=True)
    gradebook = tmp_path / "gradebook.sqlite"
    done = _cli(tmp_path, "grade-class", str(classroom), "--jobs", "1", "--db", str(gradebook))
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stdout + done.stderr
    from grader.classroom.gradebook import Gradebook

    with Gradebook(gradebook) as book:
        run = book.latest("mallory")
    assert run is not None, done.stdout + done.stderr
    how = "python -m grader.cli grade-class CLASS --jobs 1 --db DB"
    _assert_nothing_gained("closure", run, chapters, how)
    assert run.score == 0 and not _gained(run.items), (run.score, _gained(run.items))


def test_ctypes_empties_the_audit_hook_list(tmp_path: Path) -> None:
    """Route 5: ctypes finds the interpreter's audit-hook list in PyInterpreterState and clears it;
    the reference modules that were guarded get their plain class back and are imported and read."""
    _grade_route(tmp_path, "ctypes", ("ch03", "ch04"))


def test_sigprof_handler_walks_the_interrupted_frames(tmp_path: Path) -> None:
    """Route 6: a SIGPROF handler (a CPU-time timer) walks the interrupted frames and takes the
    ``f_globals`` of any frame running the reference's code."""
    _grade_route(tmp_path, "signal", ("ch02", "ch03", "ch04"))


def test_module_getattribute_on_guarded_modules(tmp_path: Path) -> None:
    """Route 7: ``types.ModuleType.__getattribute__(module, "__dict__")`` on the reference modules
    the grader itself has loaded (tried at import and whenever a stub is first called)."""
    _grade_route(tmp_path, "module_getattribute", ("ch03", "ch04"))


def test_globals_of_reference_objects_handed_to_student_code(tmp_path: Path) -> None:
    """Route 8: each stub, when called, looks at what it was handed and at its module's names (a
    reference model passed to ``generate_text_simple``, attention modules passed to exercise 3.1, a
    dependency swapped in for the reference's) and takes the ``__globals__`` of their functions."""
    _grade_route(tmp_path, "globals", ("ch03", "ch04"))
