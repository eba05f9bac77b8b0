"""Issue 20: the trusted side reads a hostile submission tree, through the real CLI (a subprocess).

Links out of the submission (to a private file, to ``reference/``), a student folder that is a link
to another's, names that are not UTF-8 (in a folder and in a zip), a submission over the size cap,
and the exits that must leave nothing behind (a bad notebook, a timeout, SIGTERM of ``grade-class``).
Every run gets a private ``TMPDIR`` that must be empty afterwards.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.results import GradeRun

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
SECRET = "INSTRUCTOR-ONLY-SECRET-4c1d"

# Appended to a copy of solutions/ch04.py: whatever the submission's folder holds under these names
# is raised to the student by GELU.forward (so a file that reached the worker shows in the output).
EXFILTRATE = r'''

import os as _rt_os
_RT_FOUND = []
for _rt_name in ("stolen.py", "stolen_dir/secret.py"):
    try:
        with open(_rt_os.path.join(_rt_os.path.dirname(__file__), _rt_name), encoding="utf-8") as _rt_file:
            _RT_FOUND.append(_rt_file.read())
    except OSError:
        pass
_rt_forward = GELU.forward


def _rt_leak(self, x):
    if _RT_FOUND:
        raise RuntimeError("LEAKED " + " | ".join(_RT_FOUND))
    return _rt_forward(self, x)


GELU.forward = _rt_leak
'''


@dataclass
class Scene:
    tmp: Path
    host_tmp: Path

    def run_cli(self, *args: str, env: dict[str, str] | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                              env=self.env(env), timeout=timeout, cwd=self.tmp, check=False)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ, TMPDIR=str(self.host_tmp), LLMGRADE_KEEP_WARM="0", **(extra or {}))
        env.pop("CI", None)
        return env

    def leftovers(self) -> list[str]:
        return sorted(os.fsdecode(name) for name in os.listdir(os.fsencode(self.host_tmp)))


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    host_tmp = tmp_path / "tmp"
    host_tmp.mkdir()
    return Scene(tmp_path, host_tmp)


def notebook(path: Path, code: str = "X = 1") -> Path:
    import nbformat

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(book, str(path))
    return path


def secret_file(scene: Scene) -> Path:
    outside = scene.tmp / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "private.txt"
    secret.write_text(f"{SECRET} = 'the instructor answer'\n", "utf-8")
    secret.chmod(0o600)
    return secret


def honest(target: Path, modules: tuple[str, ...] = ("ch03.py", "ch04.py")) -> Path:
    target.mkdir(parents=True)
    for module in modules:
        shutil.copy(SOLUTIONS / module, target / module)
    return target


def everything_written(*paths: Path) -> str:
    """The text of every file under ``paths`` (results, gradebook, reports, exports)."""
    found = []
    for top in paths:
        for path in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
            found.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(found)


def test_a_link_to_a_file_outside_is_never_read(scene: Scene) -> None:
    secret = secret_file(scene)
    work = honest(scene.tmp / "work")
    (work / "ch04.py").write_text((SOLUTIONS / "ch04.py").read_text("utf-8") + EXFILTRATE, "utf-8")
    (work / "stolen.py").symlink_to(secret)
    (work / "stolen_dir").symlink_to(secret.parent, target_is_directory=True)
    notebook(work / "ch07.ipynb")  # a notebook beside: the copy the worker gets was made by following links
    out = scene.tmp / "results.json"
    done = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--json", str(out))
    assert "Traceback" not in done.stderr, done.stderr
    run = GradeRun.read(out)
    assert run.items[0].status == "passed", run.items[0].message  # nothing leaked, nothing raised
    assert {(e.file, e.reason) for e in run.refused} == {("stolen.py", "outside"), ("stolen_dir", "outside")}
    assert "stolen.py" in done.stdout and "outside the submission" in done.stdout
    text = done.stdout + done.stderr + everything_written(out, work / ".llmgrade")
    assert SECRET not in text and "LEAKED" not in text
    assert scene.leftovers() == []


def test_chapter_files_linked_to_the_reference_score_nothing(scene: Scene) -> None:
    work = scene.tmp / "work"
    work.mkdir()
    for module in ("ch03", "ch04"):
        (work / f"{module}.py").symlink_to(ROOT / "reference" / f"{module}.py")
    notebook(work / "ch07.ipynb")
    out = scene.tmp / "results.json"
    done = scene.run_cli("grade", "ch03.MultiHeadAttention", "ch04.GELU", "ch04.LayerNorm", "--submission",
                         str(work), "--json", str(out), "--no-record")
    assert "Traceback" not in done.stderr, done.stderr
    run = GradeRun.read(out)
    assert run.score == 0 and all(i.status == "error" for i in run.items), [(i.id, i.status) for i in run.items]
    assert {e.file for e in run.refused} == {"ch03.py", "ch04.py"}
    assert scene.leftovers() == []


def _class_outputs(scene: Scene, gradebook: Path) -> str:
    report, csv_out, gradescope = scene.tmp / "report", scene.tmp / "grades.csv", scene.tmp / "gradescope"
    for args in (["report", "--db", str(gradebook), "--out", str(report)],
                 ["export", "--format", "csv", "--db", str(gradebook), "--out", str(csv_out)],
                 ["export", "--format", "gradescope", "--db", str(gradebook), "--out", str(gradescope)]):
        done = scene.run_cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    return everything_written(report, csv_out, gradescope)


def test_a_student_folder_that_links_to_another_is_refused(scene: Scene) -> None:
    classroom = scene.tmp / "class"
    honest(classroom / "alice")
    (classroom / "mallory").symlink_to(classroom / "alice", target_is_directory=True)
    gradebook = scene.tmp / "gradebook.sqlite"
    done = scene.run_cli("grade-class", str(classroom), "--jobs", "2", "--db", str(gradebook))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1  # not every student was graded
    from grader.classroom.gradebook import Gradebook

    with Gradebook(gradebook) as book:
        alice, mallory = book.latest("alice"), book.latest("mallory")
    assert alice is not None and mallory is not None
    assert alice.status == "complete" and alice.score > 0
    assert mallory.status == "setup_error" and mallory.score == 0
    assert "symbolic link" in mallory.error
    assert "mallory" in done.stdout and "symbolic link" in done.stdout
    written = _class_outputs(scene, gradebook)
    assert "symbolic link" in written  # the report and the exports say why
    rows = {row["student"]: row for row in csv.DictReader((scene.tmp / "grades.csv").open(encoding="utf-8"))}
    assert "symbolic link" in rows["mallory"]["not_graded"] and rows["alice"]["not_graded"] == ""
    assert scene.leftovers() == []


def _bad_utf8_zip(path: Path) -> Path:
    """A zip whose member names carry the UTF-8 flag but are not UTF-8 (as some tools write them)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ch03.py", (SOLUTIONS / "ch03.py").read_bytes())
        archive.writestr("caf\u00e9.py", b"X = 1\n")
    data = path.read_bytes().replace("caf\u00e9.py".encode("utf-8"), b"caf\xe9_.py")
    path.write_bytes(data)
    return path


def test_names_that_are_not_utf8_never_stop_the_class(scene: Scene) -> None:
    classroom = scene.tmp / "class"
    shutil.copytree(SOLUTIONS, classroom / "alice", ignore=shutil.ignore_patterns("__pycache__"))
    bob = honest(classroom / "bob")
    (bob / os.fsdecode(b"notes\xff.py")).write_bytes(b"X = 1\n")
    (bob / os.fsdecode(b"d\xe9j\xe0")).mkdir()
    (bob / os.fsdecode(b"d\xe9j\xe0") / "helper.py").write_bytes(b"Y = 2\n")
    honest(classroom / os.fsdecode(b"d\xe9nis"))  # the student's own folder name
    _bad_utf8_zip(classroom / "carol.zip")
    gradebook = scene.tmp / "gradebook.sqlite"
    done = scene.run_cli("grade-class", str(classroom), "--jobs", "2", "--db", str(gradebook))
    assert "Traceback" not in done.stderr, done.stderr
    from grader.classroom.gradebook import Gradebook

    with Gradebook(gradebook) as book:
        runs = {student: book.latest(student) for student in ("alice", "bob", "carol", "d\\xe9nis")}
    alice, bob_run, carol, denis = (runs[s] for s in ("alice", "bob", "carol", "d\\xe9nis"))
    assert alice is not None and alice.status == "complete" and (alice.score, alice.max_score) == (132, 132)
    assert bob_run is not None and bob_run.status == "complete" and bob_run.score > 0
    assert ("notes\\xff.py", "name") in {(e.file, e.reason) for e in bob_run.refused}
    assert denis is not None and denis.status == "complete" and denis.score > 0
    assert carol is not None and carol.status == "setup_error" and "UTF-8" in carol.error
    _class_outputs(scene, gradebook)
    assert scene.leftovers() == []


def test_an_oversize_submission_is_refused_in_one_sentence(scene: Scene) -> None:
    work = honest(scene.tmp / "work")
    with open(work / "ch02.py", "w", encoding="utf-8") as big:
        big.write("# padding\n" * 220_000)  # 2.1 MiB
    done = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--no-record",
                         "--max-submission-mb", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    said = done.stderr.strip()
    assert len(said.splitlines()) == 1 and "was refused" in said and "2 MiB" in said and "ch02.py" in said
    from_env = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--no-record",
                             env={"LLMGRADE_MAX_SUBMISSION_MB": "1"})
    assert from_env.returncode == 2 and "1 MiB" in from_env.stderr
    many = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--no-record",
                         "--max-submission-files", "2")
    assert many.returncode == 2 and "more than 2 files" in many.stderr
    assert scene.leftovers() == []


def test_a_bad_notebook_leaves_nothing_behind(scene: Scene) -> None:
    work = honest(scene.tmp / "work")
    (work / "ch02.ipynb").write_text("{ this is not a notebook", "utf-8")
    done = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--no-record")
    assert done.returncode == 2 and "ch02.ipynb" in done.stderr and "Traceback" not in done.stderr
    assert scene.leftovers() == []


def test_a_timeout_leaves_nothing_behind(scene: Scene) -> None:
    work = honest(scene.tmp / "work")
    source = (SOLUTIONS / "ch04.py").read_text("utf-8")
    (work / "ch04.py").write_text(source + "\n\ndef _rt_hang(self, x):\n    while True:\n        pass\n\n\n"
                                  "GELU.forward = _rt_hang\n", "utf-8")
    notebook(work / "ch07.ipynb")
    out = scene.tmp / "results.json"
    done = scene.run_cli("grade", "ch04.GELU", "--submission", str(work), "--no-record", "--json", str(out),
                         "--time-scale", "0.2")
    assert "Traceback" not in done.stderr, done.stderr
    assert GradeRun.read(out).items[0].status == "failed"
    assert scene.leftovers() == []


def test_sigterm_of_grade_class_leaves_nothing_behind(scene: Scene) -> None:
    classroom = scene.tmp / "class"
    slow = honest(classroom / "slow")
    (slow / "ch02.py").write_text("import time\ntime.sleep(3600)\n", "utf-8")  # its import hangs
    notebook(slow / "ch07.ipynb")
    honest(classroom / "other")
    gradebook = scene.tmp / "gradebook.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade-class", str(classroom), "--jobs", "2",
                             "--db", str(gradebook)], env=scene.env(), cwd=scene.tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while not any(name.startswith("llmgrade-run-") for name in scene.leftovers()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(2)  # the grading processes are under way
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    deadline = time.monotonic() + 30  # what the interrupted grading processes leave, they remove
    while scene.leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert scene.leftovers() == []
    with sqlite3.connect(gradebook) as con:  # still a readable gradebook
        con.execute("SELECT count(*) FROM runs").fetchone()


def test_private_suite_checks_show_the_student_only_name_and_outcome(scene: Scene) -> None:
    suites = scene.tmp / "private-suites"
    suites.mkdir()
    (suites / "test_private.py").write_text(
        "import pytest\nimport torch\n\n\n@pytest.mark.item('ch04.LayerNorm')\n"
        "def test_private_layernorm(student, ref):\n"
        "    x = torch.full((2, 16), 7321.5, dtype=torch.float64)\n"
        "    student.run('module.forward', what='LayerNorm', module='ch04', name='LayerNorm', args=[16],\n"
        "                inputs=[x], seed=0)\n"
        f"    assert False, 'expected {SECRET}'\n", "utf-8")
    work = honest(scene.tmp / "work")
    source = (SOLUTIONS / "ch04.py").read_text("utf-8")
    (work / "ch04.py").write_text(source + "\n\ndef _rt_raise(self, x):\n    raise ValueError(f'echo {x!r}')\n\n\n"
                                  "LayerNorm.forward = _rt_raise\n", "utf-8")
    out = scene.tmp / "results.json"
    done = scene.run_cli("grade", "ch04.LayerNorm", "--submission", str(work), "--json", str(out),
                         "--suites", str(suites))
    assert "Traceback" not in done.stderr, done.stderr
    run = GradeRun.read(out)
    private = [c for i in run.items for c in i.checks if "private" in c.name]
    assert private and all(c.status == "failed" for c in private)
    text = done.stdout + done.stderr + everything_written(out, work / ".llmgrade")
    for leak in (SECRET, "7321.5"):
        assert leak not in text, text[max(0, text.find(leak) - 300):text.find(leak) + 100]
    assert scene.leftovers() == []
    assert json.loads(out.read_text("utf-8"))["items"][0]["checks"]


def test_a_line_that_names_the_grader_is_quoted_without_its_control_characters() -> None:
    """The instructor's note quotes the student's line (``import reference``): an escape sequence in
    it (clear the screen, a fake line of output) is shown escaped, never sent to a terminal."""
    from grader.runner.run import grader_code_notes

    (note,) = grader_code_notes([{"module": "ch03", "file": "/x/ch\x1b[2J03.py", "line": 3, "name": "reference",
                                  "source_line": "import reference  # \x1b[2J\rall 132 points"}], {"ch03"})
    for text in (note.file, note.source_line, note.message):
        assert "\x1b" not in text and "\r" not in text and text.isprintable(), text
    assert "import reference" in note.source_line
