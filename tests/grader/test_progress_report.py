"""A partial run updates its items and never shrinks the picture: the report's headline, chart and
cards use the latest result of every item across runs, and say what the last run changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from grader import catalog
from grader.classroom.gradebook import Gradebook
from grader.classroom.history import SELF, record
from grader.classroom.progress import changes, combined, progress_history
from grader.results import GradeRun
from reports import write_report
from reports.charts import percent

from .fake_runs import fake_run

ALL_PASS = {item.id: "passed" for item in catalog.ITEMS}


def record_and_report(run: GradeRun, db: Path, report: Path) -> Path:
    """What ``llmgrade grade`` does after grading: record, then render what was recorded."""
    recorded = record(run, db, report)
    write_report(recorded)
    return recorded.report


def _partial(run: GradeRun, module: str) -> GradeRun:
    return dataclasses.replace(run, items=[i for i in run.items if i.module == module])


def test_a_partial_run_after_a_full_run_keeps_the_full_picture(tmp_path: Path) -> None:
    full = fake_run(seed=0, started_at="2025-01-01T10:00:00+00:00", submission=str(tmp_path),
                    statuses={**ALL_PASS, "ch04.GELU": "failed", "ch03.CausalAttention": "failed"})
    # The second run grades ch03 only: CausalAttention now passes, MultiHeadAttention now fails.
    later = fake_run(seed=0, started_at="2025-01-02T10:00:00+00:00", submission=str(tmp_path),
                     statuses={**ALL_PASS, "ch03.MultiHeadAttention": "failed"})
    partial = _partial(later, "ch03")
    db = tmp_path / "gb.sqlite"
    record_and_report(full, db, tmp_path / "first.html")
    path = record_and_report(partial, db, tmp_path / "report.html")
    with Gradebook(db) as book:
        runs = book.runs(SELF)
    picture = combined(runs)

    assert [i.id for i in picture.items] == [i.id for i in catalog.ITEMS]
    status = {i.id: i.status for i in picture.items}
    assert status["ch04.GELU"] == "failed"  # from the full run: not in the partial one
    assert status["ch03.CausalAttention"] == "passed" and status["ch03.MultiHeadAttention"] == "failed"
    expected = sum(i.points for i in full.items if i.module != "ch03") + sum(i.points for i in partial.items)
    assert picture.score == round(expected, 2) and picture.max_score == catalog.max_score()

    history = progress_history(runs)
    assert [m for _, _, m in history] == [catalog.max_score()] * 2  # every point out of the whole catalog
    assert [s for _, s, _ in history] == [full.score, picture.score]

    what = changes(runs)
    assert what.newly_passing == ["ch03.CausalAttention"] and what.newly_failing == ["ch03.MultiHeadAttention"]

    html = path.read_text("utf-8")
    assert f"{picture.score:g} of {picture.max_score:g} points ({percent(picture.score, picture.max_score):g}%)" in html
    assert 'id="item-ch05.GPTDatasetV1"' not in html  # (no such item: sanity of the id format below)
    assert all(f'id="item-{i.id}"' in html for i in catalog.ITEMS)  # every chapter, not just ch03
    fix_next = html.split('id="fix-next"')[1].split("</section>")[0]
    assert 'id="detail-ch04.GELU"' in fix_next and 'id="detail-ch03.MultiHeadAttention"' in fix_next
    assert 'id="detail-ch03.CausalAttention"' not in html
    changed = html.split('id="changes"')[1].split("</section>")[0]
    assert "1 newly passing" in changed and "ch03.CausalAttention" in changed
    assert "1 newly failing" in changed and "ch03.MultiHeadAttention" in changed
    assert html.count('class="attempt"') == 2


def test_fix_next_comes_first_and_not_started_items_fold_per_chapter(tmp_path: Path) -> None:
    run = fake_run(seed=0, statuses={**{i.id: "not_started" for i in catalog.ITEMS if i.module == "ch05"},
                                     "ch03.CausalAttention": "failed"})
    path = record_and_report(run, tmp_path / "gb.sqlite", tmp_path / "report.html")
    html = path.read_text("utf-8")
    assert html.index('id="fix-next"') < html.index('id="chapter-ch02"')
    ch05 = [i for i in catalog.ITEMS if i.module == "ch05"]
    section = html.split('id="chapter-ch05"')[1].split("</section>")[0]
    summary = f"ch05: {len(ch05)} not started ({sum(i.points for i in ch05):g} points)"
    assert f'<details class="waiting"><summary>{summary}</summary>' in section
    assert section.index("<details") < section.index('id="item-')  # every ch05 card is folded away
    assert "first recorded run" in html


def test_a_first_partial_run_says_not_graded_yet_for_the_rest(tmp_path: Path) -> None:
    """Issue 22, finding 11: after a first ``llmgrade check`` of one item, the report called every
    other item "not started", which says the student has not begun them; nothing is known."""
    first = fake_run(seed=0, started_at="2025-01-01T10:00:00+00:00", submission=str(tmp_path),
                     statuses={**ALL_PASS, "ch03.CausalAttention": "passed"})
    one = dataclasses.replace(first, items=[i for i in first.items if i.id == "ch03.CausalAttention"])
    picture = combined([one])
    assert [i.graded for i in picture.items].count(True) == 1
    assert picture.max_score == sum(item.points for item in catalog.ITEMS)  # still out of the whole book
    html = record_and_report(one, tmp_path / "gb.sqlite", tmp_path / "report.html").read_text("utf-8")
    assert "not graded yet" in html and "ch03: 7 not graded yet" in html
    card = '<div class="foot"><span class="status not_started">'
    assert card not in html  # no stub was graded: no card says "not started"
    stub = dataclasses.replace(one, items=[dataclasses.replace(one.items[0], status="not_started", points=0.0)])
    html = record_and_report(stub, tmp_path / "gb2.sqlite", tmp_path / "report2.html").read_text("utf-8")
    assert card in html  # a graded stub still does
