"""The ``llmgrade`` command line: thin click commands, each calling one function that holds the defaults.

Exit codes: 0 ok, 1 something failed (a check that found differences, a failed item), 2 a usage or
setup error. A ``SetupError`` raised by any command is printed as its one-line message on stderr and
exits 2, so commands need no ``try`` of their own. To add a command, append an ``@main.command`` with
``@lang_option``, and put its help in ``grader/locales/<lang>/cli_help.json`` (``help.<command>``,
``help.<command>.<option>``; see ``grader/cli_i18n.py``): docstrings here are for developers.

This is the composition root: the only module of ``grader`` that imports ``reports`` (a pure
consumer of results and the gradebook; ``tests/grader/test_layout.py`` holds the rule). ``grade``
grades, records, then hands the recorded run to ``reports.write_report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from grader import __version__
from grader.errors import SetupError, unknown_item
from grader.authoring.listing import format_catalog
from grader.cli_i18n import LocalizedGroup, lang_option
from grader.messages import t
from grader.authoring.stubs import build_stubs
from grader.authoring.workspace import example_item, init_workspace, module_files

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2


class _Main(LocalizedGroup):
    """The ``llmgrade`` group: turns a ``SetupError`` from any command into stderr + exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SetupError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(EXIT_SETUP)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(t("cli.version", version=__version__))
        ctx.exit(EXIT_OK)


@click.group(cls=_Main)
@lang_option
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version)
def main() -> None:
    """Exercises and a grader for "Build a Large Language Model (From Scratch)".

    \b
    Example:
      llmgrade init my_llm && cd my_llm
      llmgrade check ch03.MultiHeadAttention
      llmgrade grade ch03 ch04
    """


@main.command("list")
@lang_option
@click.argument("selectors", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
def list_command(selectors: tuple[str, ...], as_json: bool) -> None:
    """List the gradable items (all, or the given ids and chapters), grouped by chapter.

    \b
    Example:
      llmgrade list ch03 4.1
    """
    try:
        click.echo(format_catalog(selectors, as_json=as_json))
    except KeyError as exc:
        raise unknown_item(exc.args[0]) from exc


@main.command("build-stubs")
@lang_option
@click.option("--check", is_flag=True)
@click.option("--solutions", "solutions_dir", type=click.Path(path_type=Path))
@click.option("--exercises", "exercises_dir", type=click.Path(path_type=Path))
def build_stubs_command(check: bool, solutions_dir: Path | None, exercises_dir: Path | None) -> None:
    """Generate exercises/ from solutions/ (each solution block becomes NotImplementedError).

    \b
    Example:
      llmgrade build-stubs --check
    """
    paths = build_stubs(solutions_dir, exercises_dir, check=check)
    if check and paths:
        for path in paths:
            click.echo(t("stubs.check_differs", path=str(path)), err=True)
        raise click.exceptions.Exit(EXIT_FAILED)
    if check:
        click.echo(t("stubs.check_ok"))
    else:
        click.echo(t("stubs.written", count=len(paths), path=str(paths[0].parent)))


@main.command("init")
@lang_option
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True)
@click.option("--notebooks", is_flag=True)
def init_command(target: Path, force: bool, notebooks: bool) -> None:
    """Create a student workspace in TARGET: the exercise modules (or chapter notebooks), a README and a marker.

    \b
    Example:
      llmgrade init my_llm
      llmgrade init --notebooks my_llm
    """
    if notebooks:
        from grader.notebooks.workspace import init_notebook_workspace

        path = init_notebook_workspace(target, force=force)
        click.echo(t("notebooks.workspace_created", path=str(path), count=len(module_files()),
                     example=example_item()))
        return
    path = init_workspace(target, force=force)
    click.echo(t("workspace.created", path=str(path), count=len(module_files()),
                 example=example_item()))


# ---- class grading, reports and exports (issue 5) ------------------------------------------------
_DB_OPTION = click.option("--db", type=click.Path(path_type=Path), default=None)


def _limit_options(fn: Any) -> Any:
    """``--max-submission-mb`` and ``--max-submission-files`` (grader/submission_tree.py)."""
    fn = click.option("--max-submission-files", type=click.IntRange(min=1), default=None)(fn)
    return click.option("--max-submission-mb", type=click.FloatRange(min=0, min_open=True), default=None)(fn)


def _limits(max_mb: float | None, max_files: int | None) -> Any:
    from grader.submission_tree import Limits

    return Limits.from_env(max_mb=max_mb, max_files=max_files)


@main.command("grade-class")
@lang_option
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--jobs", type=click.IntRange(min=1), default=None)
@click.option("--force", is_flag=True)
@click.option("--cluster", default=None, metavar="ADDRESS")
@click.option("--allow-unisolated", is_flag=True)
@_DB_OPTION
@_limit_options
@click.option("--suites", "suites", type=click.Path(path_type=Path), multiple=True)
@click.option("--device", default=None)
@click.option("--time-scale", type=float, default=1.0)
def grade_class_command(submissions: Path, jobs: int | None, force: bool, cluster: str | None,
                        allow_unisolated: bool, db: Path | None, max_submission_mb: float | None,
                        max_submission_files: int | None, suites: tuple[Path, ...],
                        device: str | None, time_scale: float) -> None:
    """Grade every student folder or .zip in SUBMISSIONS and record the runs in the gradebook.

    \b
    Example:
      llmgrade grade-class submissions/ --jobs 2
      llmgrade grade-class submissions/ --cluster local:4
      llmgrade grade-class submissions/ --suites my-private-suites/
    """
    from grader.classroom.grade_class import grade_class_cli
    from grader.runner.options import GradeOptions

    options = GradeOptions(device, tuple(str(path.resolve()) for path in suites), time_scale)
    message, ok = grade_class_cli(submissions, db=db, jobs=jobs, force=force, cluster=cluster,
                                  allow_unisolated=allow_unisolated, options=options,
                                  limits=_limits(max_submission_mb, max_submission_files))
    click.echo(message)
    if not ok:
        raise click.exceptions.Exit(EXIT_FAILED)


@main.command("report")
@lang_option
@_DB_OPTION
@click.option("--out", type=click.Path(path_type=Path), default=None)
def report_command(db: Path | None, out: Path | None) -> None:
    """Render the class overview and one HTML page per student from the gradebook.

    \b
    Example:
      llmgrade report --out class-report/
    """
    from reports import write_report

    click.echo(write_report(db, out))


@main.command("export")
@lang_option
@click.option("--format", "fmt", type=click.Choice(["csv", "gradescope"]), required=True)
@_DB_OPTION
@click.option("--out", type=click.Path(path_type=Path), default=None)
def export_command(fmt: str, db: Path | None, out: Path | None) -> None:
    """Export each student's latest run as a CSV grade sheet or Gradescope results.

    \b
    Example:
      llmgrade export --format gradescope --out gradescope/
    """
    from grader.classroom.export import export

    click.echo(export("csv" if fmt == "csv" else "gradescope", db, out))


def _submission_option(fn: Any) -> Any:
    return click.option("--submission", type=click.Path(path_type=Path), default=None)(fn)


def _device_option(fn: Any) -> Any:
    return click.option("--device", default=None)(fn)


@main.command("grade")
@lang_option
@click.argument("items", nargs=-1)
@_submission_option
@_device_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--suites", "suites", type=click.Path(path_type=Path), multiple=True)
@click.option("--time-scale", type=float, default=1.0)
@click.option("--db", type=click.Path(path_type=Path), default=None)
@click.option("--report", type=click.Path(path_type=Path), default=None)
@click.option("--no-record", is_flag=True)
@_limit_options
def grade_command(items: tuple[str, ...], submission: Path | None, device: str | None,
                  json_path: Path | None, suites: tuple[Path, ...], time_scale: float,
                  db: Path | None, report: Path | None, no_record: bool, max_submission_mb: float | None,
                  max_submission_files: int | None) -> None:
    """Grade ITEMS (ids or chapters such as ch03; all when none are given).

    \b
    Example:
      llmgrade grade ch03 4.1
    """
    from grader.runner.commands import echo_wrapped, exit_code, grade_and_print

    run = grade_and_print(submission, items, device=device, json_path=json_path, suites=suites,
                          time_scale=time_scale, db=db, report=report, record=not no_record,
                          limits=_limits(max_submission_mb, max_submission_files))
    if not no_record:  # grader records; then the reports render what it recorded
        from grader.classroom.history import record
        from reports import write_report

        echo_wrapped(write_report(record(run.student_view(), db, report)))  # the student's own gradebook
    raise click.exceptions.Exit(exit_code(run))


@main.command("check")
@lang_option
@click.argument("item")
@_submission_option
@_device_option
@click.option("--time-scale", type=float, default=1.0)
@click.option("--keep-warm/--no-keep-warm", "keep_warm", default=None)
def check_command(item: str, submission: Path | None, device: str | None, time_scale: float,
                  keep_warm: bool | None) -> None:
    """Grade one ITEM and show every check with its full diagnostics.

    \b
    Example:
      llmgrade check ch03.MultiHeadAttention
    """
    from grader.runner.commands import check_one

    raise click.exceptions.Exit(check_one(submission, item, device=device, time_scale=time_scale,
                                          keep_warm=keep_warm))


@main.command("watch")
@lang_option
@click.argument("items", nargs=-1)
@_submission_option
@_device_option
@click.option("--time-scale", type=float, default=1.0)
def watch_command(items: tuple[str, ...], submission: Path | None, device: str | None,
                  time_scale: float) -> None:
    """Check ITEMS now and again on every save of your files, until Ctrl+C.

    \b
    Example:
      llmgrade watch ch03.MultiHeadAttention
    """
    from grader.runner.commands import watch_items

    watch_items(submission, items, device=device, time_scale=time_scale)


if __name__ == "__main__":  # python -m grader.cli
    main()
