"""The class overview lists the submissions whose files name the grader's own code (a note for the
instructor), and older runs recorded as using the answer key; no other."""

from __future__ import annotations

from pathlib import Path

from grader.classroom.gradebook import Gradebook
from grader.results import GraderCodeNote, LoadError
from reports.render import answer_key_users, write_class_reports
from tests.grader.fake_runs import fake_run


def test_the_class_overview_lists_answer_key_users(tmp_path: Path) -> None:
    honest = fake_run(seed=0)
    naming = fake_run(seed=3)
    naming.grader_code.append(GraderCodeNote(module="ch04", file="ch04.py", line=4, name="reference.ch04"))
    static = fake_run(seed=1)
    static.load_errors.append(LoadError(module="ch04", kind="answer_key", file="/x/ch04.py", line=3,
                                        message="ch04.py line 3 imports reference.ch04"))
    dynamic = fake_run(seed=2)
    caught = next(item for item in dynamic.items if item.checks)  # a failed item has one failed check
    caught.checks[0].message_id = "check.uses_answer_key"
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ann", honest)
        book.record("bob", static)
        book.record("cid", dynamic)
        book.record("dan", naming)
        runs = book.latest_all()
        pages = {sid: f"students/{sid}.html" for sid in runs}
        found = {sid: where for sid, _, where in answer_key_users(runs, pages)}
        index = write_class_reports(book, tmp_path / "report")
    assert found == {"bob": ["ch04.py:3"], "cid": [caught.id], "dan": ["ch04.py:4 (reference.ch04)"]}
    html = index.read_text("utf-8")
    assert "Submissions that name the grader&#39;s own code" in html and 'data-student="dan"' in html
    assert 'data-student="ann"' not in html.split("id=\"answer-key\"")[1].split("</table>")[0]
