"""Self-contained HTML progress reports (Jinja2, autoescaped, inline CSS, no scripts, no network).

- ``write_student_report(run, history, path)``: one student's page.
- ``write_class_reports(gradebook, out_dir)``: ``index.html`` (class overview) + ``students/<id>.html``.

Student-controlled text (messages, file names, student ids) is only ever inserted through Jinja's
autoescaping. Every sentence comes from the message catalog (``grader/locales/*/reports.json``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader import __version__, catalog, messages
from grader.errors import SetupError
from grader.classroom.gradebook import DEFAULT_DB, Gradebook, History
from grader.classroom import progress
from grader.classroom.progress import Changes
from grader.feedback import failure_groups, item_location
from grader.messages import t
from grader.results import STATUSES, GradeRun, ItemResult
from grader.retranslate import in_language

from .charts import histogram, line_chart, percent
from .pictures import Pictures, pictures_for

STUDENTS_DIR = "students"
DEFAULT_OUT = Path("llmgrade-report")


def _t_with_numbers(key: str, /, **params: Any) -> str:
    """:func:`t` with scores written as the terminal writes them: ``132``, ``3.7`` (not ``132.0``)."""
    return t(key, **{name: f"{value:g}" if isinstance(value, float) else value for name, value in params.items()})


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["t"] = _t_with_numbers
    env.filters["t"] = _t_with_numbers
    env.filters["pts"] = lambda value: f"{float(value):g}"
    env.globals["STATUSES"] = STATUSES
    env.globals["tool_version"] = __version__
    return env


_ENV = _environment()


def diagnosis_text(diagnosis: str) -> str:
    """The catalog's sentence for a diagnosis id, or the id itself when the catalog lacks it."""
    key = f"diagnosis.{diagnosis}"
    return t(key) if messages.has(key) else diagnosis


@dataclass
class ItemView:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    hidden: bool
    messages: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)
    blamed_on: list[str] = field(default_factory=list)
    hint: str = ""
    location: str = ""
    pictures: Pictures | None = None


@dataclass
class ChapterView:
    module: str
    title: str
    items: list[ItemView]

    def _with(self, *statuses: str) -> list[ItemView]:
        return [i for i in self.items if i.status in statuses]

    @property
    def started(self) -> list[ItemView]:
        return [i for i in self.items if i.status not in ("not_started", "not_graded")]

    @property
    def waiting(self) -> list[ItemView]:
        return self._with("not_started")

    @property
    def waiting_points(self) -> float:
        return _max_points(self.waiting)

    @property
    def ungraded(self) -> list[ItemView]:
        """Items no run has graded yet (a first ``llmgrade check`` grades one item)."""
        return self._with("not_graded")

    @property
    def ungraded_points(self) -> float:
        return _max_points(self.ungraded)

    @property
    def points(self) -> float:
        return round(sum(i.points for i in self.items), 2)

    @property
    def max_points(self) -> float:
        return _max_points(self.items)


def _max_points(items: list[ItemView]) -> float:
    return round(sum(i.max_points for i in items), 2)


def _hint(item: ItemResult) -> str:
    if item.hidden or item.status == "passed":
        return ""
    return t(f"report.hint.{item.status}", id=item.id, module=item.module)


def _item_view(item: ItemResult) -> ItemView:
    title = messages.item_title(item.id, item.title)
    if not item.graded:
        return ItemView(item.id, title, "not_graded", item.points, item.max_points, item.hidden,
                        hint=t("report.hint.not_graded", id=item.id, module=item.module))
    view = ItemView(item.id, title, item.status, item.points, item.max_points, item.hidden,
                    hint=_hint(item))
    if item.hidden or item.status == "passed":
        return view
    view.location = item_location(item)
    view.pictures = pictures_for(item)
    view.messages = [group.sentence() for group in failure_groups(item)]
    codes = [item.diagnosis] + [c.diagnosis for c in item.checks]
    texts = [diagnosis_text(d) for i, d in enumerate(codes) if d and d not in codes[:i]]
    # A check's message usually ends with its diagnosis already: show each sentence once.
    view.diagnoses = [d for d in texts if not any(d in m for m in view.messages)]
    view.blamed_on = sorted({c.blamed_on for c in item.checks if c.blamed_on})
    return view


def chapters(run: GradeRun) -> list[ChapterView]:
    """The run's items grouped by chapter, in the book's order."""
    views = []
    for module in catalog.MODULES:
        items = [_item_view(i) for i in run.items if i.module == module]
        if items:
            title = messages.translated(f"chapter.{module}", catalog.CHAPTER_TITLES.get(module, module))
            views.append(ChapterView(module, title, items))
    return views


def render_student_report(run: GradeRun, history: History, student: str | None = None,
                          back_link: str | None = None, changes: Changes | None = None) -> str:
    """The student's report as HTML text (hidden items show pass/fail only), its messages in the
    page's language where the run kept what they need (``grader.retranslate``)."""
    run = in_language(run, messages.current_lang())[0]
    view = run.student_view()
    name = student if student is not None else Path(run.submission).name
    parts = chapters(view)
    fix_next = [i for ch in parts for i in ch.items
                if (i.status == "failed" or i.status == "answer_key" and i.messages) and not i.hidden]
    return _ENV.get_template("student.html.j2").render(
        student=name, run=view, counts=view.counts(), chapters=parts, fix_next=fix_next,
        percent=percent(view.score, view.max_score), chart=line_chart(history),
        history=history, back_link=back_link, changes=changes, lang=messages.current_lang(),
        graded_in=graded_in_note(run))


def graded_in_note(run: GradeRun) -> str:
    """A sentence when the run's messages are in another language than the page, else ""."""
    if run.lang == messages.current_lang():
        return ""
    key = f"language.{run.lang}"
    return t("report.graded_in", language=t(key) if messages.has(key) else run.lang)


def write_student_report(run: GradeRun, history: History, path: Path,
                         student: str | None = None, back_link: str | None = None,
                         changes: Changes | None = None) -> Path:
    """Write the student's HTML report to ``path`` (atomically) and return ``path``."""
    html = render_student_report(run, history, student, back_link, changes)
    _write(path, html)
    return path


def write_progress_report(runs: list[GradeRun], path: Path, student: str | None = None,
                          back_link: str | None = None) -> Path:
    """The report of every run so far (oldest first): the latest result of each item, the history
    as shares of the whole catalog, and what the last run changed (``grader.classroom.progress``)."""
    lang = messages.current_lang()
    said = [in_language(run, lang)[0] for run in runs]
    # A run whose messages could not all be said in the page's language gives the page its note.
    picture = replace(progress.combined(said), lang=next((r.lang for r in said if r.lang != lang), lang))
    return write_student_report(picture, progress.progress_history(runs), path, student,
                                back_link, progress.changes(runs))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def page_name(student: str, taken: set[str]) -> str:
    """A safe, unique file name for a student's page (``taken`` holds lower-cased names used)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", student)[:60] or "student"
    if slug != student or slug.lower() in taken:
        slug = f"{slug}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
    taken.add(slug.lower())
    return f"{slug}.html"


@dataclass
class StudentRow:
    id: str
    page: str
    score: float
    max_score: float
    percent: float
    status: str
    counts: dict[str, int]
    error: str


@dataclass
class ItemStats:
    id: str
    title: str
    counts: dict[str, int]

    @property
    def not_passed(self) -> int:
        return self.counts["failed"] + self.counts["error"] + self.counts["answer_key"]


@dataclass
class DiagnosisStats:
    code: str
    text: str
    students: int
    items: list[str]


def answer_key_users(runs: dict[str, GradeRun], pages: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    """``(student, page, [where])`` for every submission whose files name the grader's own code
    (``grader/checking/grader_code.py``: a note, never a grade), and every older run recorded as
    using the answer key (results schema 2)."""
    found = []
    for sid, run in runs.items():
        where = [f"{note.file}:{note.line} ({note.name})" for note in run.grader_code]
        where += [f"{Path(e.file).name}:{e.line}" for e in run.load_errors if e.kind == "answer_key"]
        where += [item.id for item in run.items if item.checks and (item.status == "answer_key" or any(
            c.message_id == "check.uses_answer_key" for c in item.checks))]
        if where:
            found.append((sid, pages[sid], where))
    return found


def class_overview(runs: dict[str, GradeRun], pages: dict[str, str]) -> dict[str, object]:
    """Everything the class overview page shows, computed from each student's latest run."""
    students = [StudentRow(sid, pages[sid], r.score, r.max_score, percent(r.score, r.max_score),
                           r.status, r.counts(), r.error) for sid, r in runs.items()]
    item_ids = [i.id for i in catalog.ITEMS
                if any(i.id == it.id for r in runs.values() for it in r.items)]
    cells: dict[str, dict[str, str]] = {iid: {} for iid in item_ids}
    stats: dict[str, ItemStats] = {
        iid: ItemStats(iid, messages.item_title(iid, catalog.BY_ID[iid].title),
                       {s: 0 for s in STATUSES}) for iid in item_ids}
    diag_students: Counter[str] = Counter()
    diag_items: dict[str, set[str]] = {}
    for sid, run in runs.items():
        seen: set[str] = set()
        for item in run.items:
            if item.id not in cells:
                continue
            cells[item.id][sid] = item.status
            stats[item.id].counts[item.status] += 1
            for code in {item.diagnosis, *(c.diagnosis for c in item.checks)}:
                if code:
                    diag_items.setdefault(code, set()).add(item.id)
                    if code not in seen:
                        seen.add(code)
                        diag_students[code] += 1
    # Real failures first: a failed check says something about the item; an ``error`` (its module
    # did not load) says something about one student's file, and spreads over a whole chapter.
    most_failed = sorted((s for s in stats.values() if s.not_passed),
                         key=lambda s: (-s.counts["failed"], -s.counts["answer_key"], -s.counts["error"],
                                        item_ids.index(s.id)))[:10]
    diagnoses = [DiagnosisStats(code, diagnosis_text(code), n, sorted(diag_items[code]))
                 for code, n in sorted(diag_students.items(), key=lambda kv: (-kv[1], kv[0]))][:10]
    scores = [s.percent for s in students]
    return {
        "answer_key": answer_key_users(runs, pages),
        "students": students,
        "items": [stats[i] for i in item_ids],
        "cells": cells,
        "most_failed": most_failed,
        "diagnoses": diagnoses,
        "chart": histogram(scores),
        "mean": round(sum(scores) / len(scores), 1) if scores else 0.0,
    }


def write_class_reports(gradebook: Gradebook, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (class overview) and one page per student; returns the index."""
    runs = gradebook.latest_all()
    taken: set[str] = {"index"}
    pages = {sid: f"{STUDENTS_DIR}/{page_name(sid, taken)}" for sid in runs}
    for sid in runs:
        write_progress_report(gradebook.runs(sid), out_dir / pages[sid], student=sid,
                              back_link="../index.html")
    index = out_dir / "index.html"
    html = _ENV.get_template("class.html.j2").render(**class_overview(runs, pages),
                                                       lang=messages.current_lang())
    _write(index, html)
    return index


def build_class_reports(db: Path | None = None, out_dir: Path | None = None) -> str:
    """``llmgrade report``: render the class reports from the gradebook ``db``; returns the sentence."""
    db_path = db if db is not None else DEFAULT_DB
    target = out_dir if out_dir is not None else DEFAULT_OUT
    if not db_path.is_file():
        raise SetupError("report.empty", path=db_path)
    with Gradebook(db_path) as book:
        count = len(book.students())
        if not count:
            raise SetupError("report.empty", path=db_path)
        index = write_class_reports(book, target)
    return t("report.written.class.one" if count == 1 else "report.written.class", path=index, count=count)
