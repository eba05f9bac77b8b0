"""End to end with the real engine: grade solutions/, the stubs and broken submissions as a class,
then render the reports and export from the gradebook they fill.

Grades only the items that have hidden suites so far (``ch03.MultiHeadAttention``) to stay quick.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from grader.classroom.grade_class import grade_class
from grader.classroom.export import export_csv
from grader.classroom.gradebook import Gradebook
from reports.render import write_class_reports

ROOT = Path(__file__).resolve().parents[2]
ITEM = "ch03.MultiHeadAttention"


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__")))


@pytest.mark.slow
def test_grade_class_with_the_engine(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _copy(ROOT / "solutions", subs / "model")
    _copy(ROOT / "exercises", subs / "stubs")
    broken = _copy(ROOT / "solutions", subs / "syntax")
    (broken / "ch03.py").write_text("def oops(:\n    <script>alert(1)</script>\n", "utf-8")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as archive:
        for path in sorted((ROOT / "solutions").glob("*.py")):
            archive.write(path, f"zipped/{path.name}")
    (subs / "badzip.zip").write_bytes(b"PK\x03\x04 truncated")
    db = tmp_path / "gb.sqlite"

    summary = grade_class(subs, db, jobs=2, items=[ITEM], time_limit_s=300, progress=None)
    assert sorted(summary.graded) == ["model", "stubs", "syntax", "zipped"]
    assert summary.broken == ["badzip"]

    with Gradebook(db) as book:
        runs = book.latest_all()
        status = {sid: {i.id: i.status for i in run.items} for sid, run in runs.items()}
        assert status["model"][ITEM] == "passed" and status["zipped"][ITEM] == "passed"
        assert status["stubs"][ITEM] == "not_started"
        assert status["syntax"][ITEM] == "error"
        assert [e.kind for e in runs["syntax"].load_errors] == ["syntax_error"]
        assert runs["model"].score == runs["model"].max_score > 0
        assert runs["badzip"].status == "setup_error"
        index = write_class_reports(book, tmp_path / "site")
        export_csv(book, tmp_path / "grades.csv")
    html = index.read_text("utf-8")
    assert 'data-students="5"' in html and ITEM in html
    page = next((tmp_path / "site" / "students").glob("syntax*.html")).read_text("utf-8")
    assert "<script>alert(1)" not in page and "syntax error" in page

    again = grade_class(subs, db, jobs=2, items=[ITEM], time_limit_s=300, progress=None)
    assert sorted(again.skipped) == ["badzip", "model", "stubs", "syntax", "zipped"]
