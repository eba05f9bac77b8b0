"""Exports of the gradebook: a CSV grade sheet and Gradescope ``results.json`` files.

``export(fmt, db, out)`` holds the CLI's defaults; ``export_csv`` and ``export_gradescope`` work on an
open ``Gradebook`` and use each student's latest run.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Literal

from grader import catalog, messages
from grader.errors import SetupError
from grader.feedback import failure_groups
from grader.classroom.gradebook import DEFAULT_DB, Gradebook
from grader.messages import t
from grader.retranslate import in_language
from grader.results import GradeRun, ItemResult

Format = Literal["csv", "gradescope"]
DEFAULT_OUT: dict[str, Path] = {"csv": Path("gradebook.csv"), "gradescope": Path("gradescope")}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Student-controlled text made safe for spreadsheets (no formula injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _points(value: float) -> str:
    return f"{value:g}"


def export_csv(gradebook: Gradebook, path: Path) -> int:
    """One row per student: id, one column per catalog item (points; empty if not graded), total,
    the run's status, the items that used the answer key (space-separated ids; empty if none) and,
    for a student who could not be graded (a refused submission, a crash, a time-out), why.

    Returns the number of students written.
    """
    runs = gradebook.latest_all()
    ids = [item.id for item in catalog.ITEMS]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *ids, "total", "max_score", "status", "answer_key", "not_graded"])
        for student, run in runs.items():
            points = {item.id: item.points for item in run.items}
            key = " ".join(item.id for item in run.items if item.status == "answer_key")
            writer.writerow([_cell(student),
                             *(_points(points[i]) if i in points else "" for i in ids),
                             _points(run.score), _points(run.max_score), run.status, key,
                             _cell(run.error) if run.status != "complete" else ""])
    tmp.replace(path)
    return len(runs)


def _test_output(item: ItemResult) -> str:
    if item.hidden:
        return t("export.hidden_output", status=t(f"report.status.{item.status}"))
    one = item.max_points == 1
    lines = [t("export.output.one" if one else "export.output", score=_points(item.points),
               max_score=_points(item.max_points))]
    if item.status == "answer_key" and not item.checks:  # the module's use of the key, said once per item
        lines.append(item.message)
    sentences = [group.sentence() for group in failure_groups(item)]
    if item.diagnosis:
        key = f"diagnosis.{item.diagnosis}"
        diagnosis = t(key) if messages.has(key) else item.diagnosis
        if not any(diagnosis in sentence for sentence in sentences):  # said once, not twice
            lines.append(diagnosis)
    lines.extend(sentences)
    return "\n".join(lines)


def gradescope_results(run: GradeRun) -> dict[str, Any]:
    """A run in Gradescope's autograder ``results.json`` format, its messages in the current language
    where the run kept what they need (``grader.retranslate``)."""
    run = in_language(run.student_view(), messages.current_lang())[0]  # what the student may see
    tests = [{
        "name": f"{item.id} {messages.item_title(item.id, item.title)}",
        "number": item.id,
        "score": item.points,
        "max_score": item.max_points,
        "status": "passed" if item.status == "passed" else "failed",
        "output": _test_output(item),
        "visibility": "after_published" if item.hidden else "visible",
    } for item in run.items]
    result: dict[str, Any] = {"score": run.score, "execution_time": round(run.duration_s, 1),
                              "tests": tests}
    if run.error:
        result["output"] = t("export.run_error", error=run.error)
    return result


def _folder_name(student: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", student).lstrip(".") or "student"
    base, n = name, 2
    while name.lower() in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name.lower())
    return name


def export_gradescope(gradebook: Gradebook, out_dir: Path) -> int:
    """Write ``out_dir/<student>/results.json`` for every student; returns how many were written."""
    runs = gradebook.latest_all()
    taken: set[str] = set()
    for student, run in runs.items():
        path = out_dir / _folder_name(student, taken) / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_results(run), indent=2, ensure_ascii=False),
                        encoding="utf-8")
    return len(runs)


def export(fmt: Format, db: Path | None = None, out: Path | None = None) -> str:
    """Export the gradebook ``db`` as ``fmt`` to ``out``; returns the sentence to print."""
    db_path = db if db is not None else DEFAULT_DB
    if not db_path.is_file():
        raise SetupError("export.empty", path=db_path)
    target = out if out is not None else DEFAULT_OUT[fmt]
    with Gradebook(db_path) as book:
        if not book.students():
            raise SetupError("export.empty", path=db_path)
        if fmt == "csv":
            return t("export.done.csv", count=export_csv(book, target), path=target)
        return t("export.done.gradescope", count=export_gradescope(book, target), path=target)
