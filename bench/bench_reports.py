"""Benchmark of the class tools: rendering the reports, and grading a class with --jobs 1 and 2.

    python bench/bench_reports.py --students 50            # report rendering only (fake runs)
    python bench/bench_reports.py --students 4 --grade     # also grade N copies of solutions/

Rendering uses fake runs over the whole catalog; ``--grade`` runs the real engine
(``grader.runner.run.grade_submission``) on N copies of the model solutions.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import catalog  # noqa: E402
from grader.classroom.gradebook import Gradebook  # noqa: E402
from grader.results import GradeRun, ItemResult, Status  # noqa: E402
from reports.render import write_class_reports  # noqa: E402


def fake_class_run(seed: int) -> GradeRun:
    cycle: tuple[Status, ...] = ("passed", "failed", "not_started", "passed", "passed")
    items = []
    for i, item in enumerate(catalog.ITEMS):
        status = cycle[(i * 7 + seed) % len(cycle)]
        points = float(item.points) if status == "passed" else 0.0
        items.append(ItemResult(item.id, item.module, item.title, item.kind, points,
                                float(item.points), status,
                                message="values differ" if status == "failed" else ""))
    return GradeRun("bench", "", "", "cpu", "bench", f"h{seed}", f"2025-01-01T00:00:{seed % 60:02d}",
                    1.0, items)


def time_reports(students: int, attempts: int = 3) -> dict[str, float]:
    """Seconds to fill a gradebook with ``students`` x ``attempts`` runs and render the reports."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        with Gradebook(Path(tmp) / "gb.sqlite") as book:
            for s in range(students):
                for a in range(attempts):
                    book.record(f"student{s:04d}", fake_class_run(s + a))
            recorded = time.perf_counter()
            write_class_reports(book, Path(tmp) / "site")
        rendered = time.perf_counter()
    return {"record_s": recorded - began, "render_s": rendered - recorded}


def time_class_grading(copies: int, jobs_list: tuple[int, ...] = (1, 2)) -> dict[int, float]:
    """Wall seconds to grade ``copies`` copies of solutions/ with each --jobs value."""
    from grader.classroom.grade_class import grade_class

    timings: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        for k in range(copies):
            target = subs / f"copy{k:03d}"
            shutil.copytree(ROOT / "solutions", target,
                            ignore=shutil.ignore_patterns("__pycache__"))
        for jobs in jobs_list:
            began = time.perf_counter()
            summary = grade_class(subs, Path(tmp) / f"jobs{jobs}.sqlite", jobs=jobs, force=True,
                                  progress=None)
            timings[jobs] = time.perf_counter() - began
            if summary.broken:
                print(f"warning: not graded with --jobs {jobs}: {summary.broken}", file=sys.stderr)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--grade", action="store_true", help="also time real class grading")
    parser.add_argument("--copies", type=int, default=4, help="solution copies for --grade")
    args = parser.parse_args()
    result = time_reports(args.students)
    print(f"reports: {args.students} students x 3 attempts: record {result['record_s']:.2f} s, "
          f"render {result['render_s']:.2f} s")
    if args.grade:
        timings = time_class_grading(args.copies)
        for jobs, seconds in timings.items():
            print(f"grade-class: {args.copies} copies of solutions/, --jobs {jobs}: {seconds:.1f} s")
        if 1 in timings and 2 in timings:
            print(f"speed-up with --jobs 2: {timings[1] / timings[2]:.2f}x")


if __name__ == "__main__":
    main()
