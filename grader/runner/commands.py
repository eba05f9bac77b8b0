"""What ``llmgrade grade`` and ``llmgrade check`` do, with their defaults, for the CLI to call.

Grading and printing only: recording the run and writing the report are the CLI's next steps.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from grader.authoring.workspace import find_submission
from grader.catalog import BY_ID, Item, items_for
from grader.classroom.history import report_path
from grader.errors import unknown_item
from grader.messages import t
from grader.results import GradeRun
from grader.runner.run import Progress, grade_submission, terminate_as_interrupt
from grader.runner.scoring import item_uses
from grader.runner.summary import format_details, format_table, terminal_width, wrap
from grader.sandbox.policy import probe
from grader.submission_tree import Limits

EXIT_OK, EXIT_FAILED = 0, 1


@contextmanager
def _progress_bar() -> Iterator[Progress | None]:
    """A click progress bar on stderr when it is a terminal (yields its update function); else, for
    logs and CI, a line on stderr at every tenth of the checks done."""
    if not sys.stderr.isatty():
        yield _progress_lines() if _is_file(sys.stderr) else None
        return
    with click.progressbar(length=1, label=t("grade.progress"), file=sys.stderr) as bar:
        shown = 0

        def update(done: int, total: int, _line: str) -> None:
            nonlocal shown
            if total and bar.length != total:
                bar.length = total
            if done > shown:
                bar.update(done - shown)
                shown = done

        yield update


def _is_file(stream: Any) -> bool:
    """A stream on a real descriptor (a pipe, a log file), not an in-memory one (a test's runner)."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return False
    return True


def _progress_lines(steps: int = 10) -> Progress:
    """An update function that says how far grading is, ``steps`` times in all."""
    said = 0

    def update(done: int, total: int, _line: str) -> None:
        nonlocal said
        if total and done * steps // total > said:
            said = done * steps // total
            click.echo(t("grade.progress_line", done=done, total=total), err=True)

    return update


def grade_and_print(submission: Path | None, items: Sequence[str] = (), *, device: str | None = None,
                    json_path: Path | None = None, suites: Sequence[Path] = (), time_scale: float = 1.0,
                    db: Path | None = None, report: Path | None = None, record: bool = True,
                    limits: Limits | None = None) -> GradeRun:
    """Grade with a progress bar, print the table (naming where the report will be when ``record``)
    and where the JSON went; returns the run for the CLI to record and report."""
    with _progress_bar() as update, terminate_as_interrupt():
        run = grade_submission(submission, items, device=device, json_path=json_path, suites=suites,
                               progress=update, time_scale=time_scale, limits=limits)
    warn_if_not_isolated(run)
    target = report_path(run, db, report) if record else None
    click.echo(format_table(run.student_view(), colour=sys.stdout.isatty(), report=target))
    _echo_notebook_notes(run)
    if json_path is not None:
        echo_wrapped(t("grade.json_written", path=str(json_path)))
    return run


def echo_wrapped(sentence: str) -> None:
    """Print one sentence wrapped to the terminal."""
    click.echo("\n".join(wrap(sentence, terminal_width())))


def check_one(submission: Path | None, item: str, *, device: str | None = None,
              time_scale: float = 1.0, keep_warm: bool | None = None) -> int:
    """``llmgrade check``: one item with every check's diagnostics; served by the workspace's keeper
    when one holds a standby for it (grader/runner/keep_warm.py), else graded cold (and a keeper is
    left for the next check when ``keep_warm`` or the terminal says so)."""
    run = check_run_kept_warm(submission, item, device=device, time_scale=time_scale, option=keep_warm)
    warn_if_not_isolated(run)
    click.echo(format_details(run.student_view(), colour=sys.stdout.isatty()))
    _echo_notebook_notes(run)
    return exit_code(run)


def warn_if_not_isolated(run: GradeRun) -> None:
    """Say once, on stderr, that the code ran without the OS sandbox."""
    if run.isolation == "none":
        click.echo(t("sandbox.not_isolated", reason=probe().reason), err=True)


def _echo_notebook_notes(run: GradeRun) -> None:
    """Which notebooks were graded, what was left out of them, and which lost to a .py file; then
    what of the submission was not read (links out of it, special files)."""
    for note in run.notebook_notices():
        echo_wrapped(note.message)
    if run.refused:
        echo_wrapped(t("trees.heading", count=len(run.refused)))
        for entry in run.refused:
            echo_wrapped("  " + entry.message)


def check_run(submission: Path | None, selector: str, *, device: str | None = None,
              time_scale: float = 1.0) -> GradeRun:
    """What ``grade`` gives for the selected items, grading only what that needs (:func:`check_items`)."""
    folder = find_submission(submission).resolve()
    return check_items(_grader(folder, device, time_scale), [item.id for item in selected(selector)])[0]


def check_run_kept_warm(submission: Path | None, selector: str, *, device: str | None = None,
                        time_scale: float = 1.0, option: bool | None = None) -> GradeRun:
    """:func:`check_run`, from the workspace's keeper when it has a standby for exactly this check."""
    from grader.runner import keep_warm

    folder = find_submission(submission).resolve()
    wanted = [item.id for item in selected(selector)]
    minutes = keep_warm.minutes(option, os.environ, sys.stdin.isatty() and sys.stdout.isatty())
    place = keep_warm.Place.of(folder) if minutes is not None or option is False else None
    cold = _grader(folder, device, time_scale)
    if place is None or minutes is None:
        if place is not None:  # --no-keep-warm: stop the one an earlier check left
            keep_warm.stop(place)
        return check_items(cold, wanted)[0]
    request = keep_warm.request_for(folder, wanted, device, time_scale)
    served = keep_warm.ask(place, request)
    if served is not None:
        return served
    run, graded = check_items(cold, wanted)
    if minutes:
        keep_warm.start_keeper(place, request, graded, minutes)
    return run


def _grader(folder: Path, device: str | None, time_scale: float) -> Callable[[list[str]], GradeRun]:
    """A cold grade of ``folder`` for :func:`check_items`."""
    return lambda ids: grade_submission(folder, ids, device=device, time_scale=time_scale)


def selected(selector: str) -> list[Item]:
    try:
        return items_for([selector])
    except KeyError as exc:
        raise unknown_item(exc.args[0]) from exc


def check_items(grade: Callable[[list[str]], GradeRun], wanted: Sequence[str],
                first: Sequence[str] = ()) -> tuple[GradeRun, list[str]]:
    """What ``grade`` gives for the ``wanted`` items, and the items graded to get it.

    ``grade(first)`` (default: just ``wanted``; ``first`` always holds them). A passing item is
    passing whatever its dependencies do. A failing one may have failed only because of a
    dependency (``grade`` then charges the dependency, grader/runner/scoring.py), so unless ``first``
    already held them, it is graded again together with every item it used: its declared
    dependencies and the items its checks swapped for the reference's (which the checks that failed
    may have run). Items graded beyond those it used change nothing for it: only a dependency whose
    student version its checks ran can be charged."""
    graded = list(first) or list(wanted)
    run = grade(graded)
    used: list[str] = []
    for result in run.items:
        if result.status != "failed" or result.id not in wanted:
            continue
        raw = [{"student_swaps": [c.details.get("swapped", [])]} for c in result.checks]
        used += [dep for dep in item_uses(BY_ID[result.id], raw) if dep not in graded and dep not in used]
    if used:
        graded = [*graded, *used]
        run = grade(graded)
    return replace(run, items=[result for result in run.items if result.id in wanted]), graded


def exit_code(run: GradeRun) -> int:
    ok = run.status == "complete" and all(item.status == "passed" for item in run.items)
    return EXIT_OK if ok else EXIT_FAILED


def for_watch(run: GradeRun) -> GradeRun:
    """``run`` with its load errors' next step said for ``watch``: "save again", not "grade again"
    (the ``<id>.watch`` sentence of the catalog, where it has one)."""
    from grader.messages import current_lang, has, render_stored

    said: dict[str, str] = {}
    errors = []
    for error in run.load_errors:
        key = f"{error.message_id}.watch"
        text = render_stored(current_lang(), key, error.message_params) \
            if error.message_params is not None and has(key) else None
        if text is not None:
            said[error.message] = text
        errors.append(replace(error, message=text or error.message))
    items = [replace(item, message=said.get(item.message, item.message)) for item in run.items]
    return replace(run, load_errors=errors, items=items)


def watch_items(submission: Path | None, items: Sequence[str], *, device: str | None = None,
                time_scale: float = 1.0, checks: int | None = None) -> int:
    """``llmgrade watch``: print every check's result (Fix next first) until Ctrl+C."""
    from grader.runner.watch import watch

    def show(run: GradeRun) -> None:
        view = for_watch(run.student_view())
        click.echo(t("feedback.watch.header", time=time.strftime("%H:%M:%S"), seconds=f"{run.duration_s:.1f}"))
        one = len(view.items) == 1
        click.echo(format_details(view, colour=sys.stdout.isatty()) if one
                   else format_table(view, colour=sys.stdout.isatty()))

    def waiting() -> None:
        echo_wrapped(t("feedback.watch.waiting", items=", ".join(items) or t("feedback.watch.everything")))

    try:
        return watch(submission, items, show, device=device, time_scale=time_scale, checks=checks,
                     on_wait=waiting)
    except KeyboardInterrupt:
        return 0
