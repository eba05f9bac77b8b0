"""HTML reports: content, escaping of student text, hidden items, self-containment, class overview."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.classroom.gradebook import Gradebook
from grader.errors import SetupError
from reports.charts import histogram, line_chart
from reports.render import (build_class_reports, class_overview, page_name, render_student_report,
                            write_class_reports, write_student_report)

from .fake_runs import HIDDEN_ID, HOSTILE, SECRET, fake_run, with_load_error

HISTORY = [("2025-01-01T10:00:00+00:00", 10.0, 132.0), ("2025-01-02T10:00:00+00:00", 66.0, 132.0),
           ("2025-01-03T10:00:00+00:00", 99.0, 132.0)]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def assert_self_contained(html: str) -> None:
    doc = parse(html)
    assert not [t for t, _ in doc.tags if t in ("script", "img", "link", "iframe", "object")]
    for _tag, attrs in doc.tags:
        for name, value in attrs.items():
            assert not (name.startswith("on")), name
            if name in ("src", "href") and value:
                assert not re.match(r"^[a-z]+:", value), value  # relative links only
    assert "@import" not in html and "url(" not in html


def test_student_report_content(tmp_path: Path) -> None:
    run = fake_run(seed=1)
    path = write_student_report(run, HISTORY, tmp_path / "out" / "report.html", student="alice")
    html = path.read_text("utf-8")
    assert f"{run.score:g} of {run.max_score:g} points" in html
    counts = run.counts()
    assert f"{counts['passed']} passed, {counts['failed']} failed" in html
    doc = parse(html)
    cards = {a.get("id"): a.get("data-status") for tag, a in doc.tags if (a.get("class") or "").startswith("card")}
    assert cards == {f"item-{i.id}": i.status for i in run.items}
    failed = next(i for i in run.items if i.status == "failed" and not i.hidden)
    assert f"{failed.id}: values differ" in html or HOSTILE not in failed.message
    assert "Likely mistake: the causal mask is not applied" in html and "llmgrade check" in html
    # the history chart: one circle per attempt and a line through them
    assert html.count('class="attempt"') == 3 and "<polyline" in html
    assert_self_contained(html)


def test_student_report_escapes_hostile_text(tmp_path: Path) -> None:
    run = with_load_error(fake_run(seed=0, statuses={"ch03.CausalAttention": "failed"}),
                          file="<b>evil</b>.py")
    html = render_student_report(run, HISTORY[:1], student="<i>mallory</i>")
    assert "<script>" not in html and "<b>evil" not in html and "<i>mallory" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;evil&lt;/b&gt;.py" in html and "&lt;i&gt;mallory&lt;/i&gt;" in html
    assert "first recorded attempt" in html and "<polyline" not in html
    assert_self_contained(html)


def test_hidden_items_show_pass_fail_only() -> None:
    run = fake_run(seed=0, statuses={HIDDEN_ID: "failed"})
    assert any(i.id == HIDDEN_ID and SECRET in i.message for i in run.items)
    html = render_student_report(run, HISTORY)
    assert SECRET not in html
    assert f'id="item-{HIDDEN_ID}" data-status="failed"' in html
    assert f'id="detail-{HIDDEN_ID}"' not in html
    assert "hidden item: pass or fail only" in html


def test_run_status_banner_for_broken_runs() -> None:
    run = fake_run(seed=0, status="setup_error", error=f"bad zip {HOSTILE}")
    html = render_student_report(run, HISTORY)
    assert 'id="run-status"' in html and "could not be graded" in html
    assert "bad zip &lt;script&gt;" in html


def test_charts_geometry() -> None:
    chart = line_chart(HISTORY, width=400, height=200)
    assert [p.value for p in chart.points] == [7.6, 50.0, 75.0]
    assert chart.points[0].x == chart.left and chart.points[-1].x == chart.right
    assert chart.points[0].y > chart.points[1].y > chart.points[2].y  # higher score, higher up
    assert line_chart([]).points == []
    bars = histogram([0.0, 5.0, 55.0, 100.0, 100.0], bins=10).bars
    assert [b.count for b in bars] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bars[0].label == "0-10%" and bars[-1].label == "90-100%"
    assert bars[1].height == 0 and bars[0].height == bars[-1].height > bars[5].height


def test_page_names_are_safe_and_unique() -> None:
    taken: set[str] = set()
    names = [page_name(s, taken) for s in ("alice", "Alice", "../etc/passwd", "a b", "index")]
    assert names[0] == "alice.html" and names[1].startswith("Alice-")
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert len({n.lower() for n in names}) == 5


@pytest.fixture
def class_book(tmp_path: Path) -> Iterator[Gradebook]:
    book = Gradebook(tmp_path / "gb.sqlite")
    for k, student in enumerate(["alice", "bob", "<script>eve</script>"]):
        book.record(student, fake_run(seed=k, started_at="2025-01-01T10:00:00+00:00"))
        book.record(student, fake_run(seed=k + 1, started_at="2025-01-02T10:00:00+00:00",
                                      statuses={"ch03.CausalAttention": "failed"}))
    book.record("zoe", fake_run(seed=0, status="setup_error", error="bad zip",
                                statuses={i.id: "error" for i in fake_run().items}))
    yield book
    book.close()


def test_class_overview_numbers(class_book: Gradebook) -> None:
    runs = class_book.latest_all()
    view = class_overview(runs, {s: f"students/{s}.html" for s in runs})
    students = view["students"]
    assert isinstance(students, list) and len(students) == 4
    most_failed = view["most_failed"]
    assert isinstance(most_failed, list)
    causal = next(s for s in most_failed if s.id == "ch03.CausalAttention")
    assert causal.counts["failed"] == 3 and causal.counts["error"] == 1
    assert most_failed[0].not_passed >= most_failed[-1].not_passed
    diagnoses = view["diagnoses"]
    assert isinstance(diagnoses, list)
    assert {d.code for d in diagnoses} == {"mask_not_applied", "wrong_shape"}
    texts = {d.code: d.text for d in diagnoses}
    assert texts["wrong_shape"] == "wrong_shape"  # not in the catalog: shown as its code
    assert texts["mask_not_applied"].startswith("Likely mistake: the causal mask")
    assert all(d.students == 3 for d in diagnoses)


def test_class_reports_written(class_book: Gradebook, tmp_path: Path) -> None:
    index = write_class_reports(class_book, tmp_path / "site")
    html = index.read_text("utf-8")
    assert 'data-students="4"' in html
    pages = sorted((tmp_path / "site" / "students").glob("*.html"))
    assert len(pages) == 4
    for page in pages:
        assert f'href="students/{page.name}"' in html
        text = page.read_text("utf-8")
        assert 'href="../index.html"' in text and "<script>" not in text
        assert_self_contained(text)
    assert "<script>" not in html and "&lt;script&gt;eve&lt;/script&gt;" in html
    assert "ch03.CausalAttention" in html and "mask_not_applied" in html
    assert html.count('class="cell ') == 4 * len(fake_run().items)
    assert_self_contained(html)


def test_build_class_reports_from_db(class_book: Gradebook, tmp_path: Path) -> None:
    message = build_class_reports(class_book.path, tmp_path / "site")
    assert "4 student pages" in message and (tmp_path / "site" / "index.html").is_file()
    with pytest.raises(SetupError, match="no graded submissions"):
        build_class_reports(tmp_path / "missing.sqlite", tmp_path / "x")
    Gradebook(tmp_path / "empty.sqlite").close()
    with pytest.raises(SetupError, match="grade-class"):
        build_class_reports(tmp_path / "empty.sqlite", tmp_path / "x")


def test_diagnosis_already_in_the_message_is_shown_once() -> None:
    from grader.messages import t

    run = fake_run(seed=0, statuses={"ch03.MultiHeadAttention": "failed"})
    item = next(i for i in run.items if i.id == "ch03.MultiHeadAttention")
    sentence = t("diagnosis.mask_not_applied")
    item.message = item.checks[0].message = f"values differ. {sentence}"
    html = render_student_report(run, HISTORY)
    detail = html.split('id="detail-ch03.MultiHeadAttention"')[1].split("</div>")[0]
    assert detail.count("the causal mask is not applied") == 1


def test_one_entry_point_renders_a_recorded_run_or_a_gradebook(class_book: Gradebook, tmp_path: Path) -> None:
    """``reports.write_report``: the student's page from what ``grader`` recorded, or the class site."""
    from grader.classroom.history import record
    from reports import write_report

    workspace = tmp_path / "alice"
    for seed, started in ((1, "2025-01-01T10:00:00+00:00"), (2, "2025-01-02T10:00:00+00:00")):
        recorded = record(fake_run(seed=seed, started_at=started, submission=str(workspace)))
    assert recorded.student == "alice" and len(recorded.runs) == 2
    assert recorded.runs[-1].started_at == recorded.run.started_at
    assert (workspace / ".llmgrade" / "gradebook.sqlite").is_file()
    sentence = write_report(recorded)
    page = workspace / ".llmgrade" / "report.html"
    assert str(page) in sentence and page.is_file()
    assert "Progress report: alice" in page.read_text("utf-8")
    elsewhere = tmp_path / "elsewhere.html"
    assert str(elsewhere) in write_report(recorded, elsewhere) and elsewhere.is_file()

    assert "4 student pages" in write_report(class_book.path, tmp_path / "site")
    assert (tmp_path / "site" / "index.html").is_file()
    with pytest.raises(SetupError, match="no graded submissions"):
        write_report(tmp_path / "missing.sqlite", tmp_path / "x")
