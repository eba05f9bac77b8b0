"""The ``llmgrade`` command line: thin click commands, each calling one function that holds the defaults.

Exit codes: 0 ok, 1 something failed (a check that found differences, a failed item), 2 a usage or
setup error. A ``SetupError`` raised by any command is printed as its one-line message on stderr and
exits 2, so commands need no ``try`` of their own. To add a command, append an ``@main.command``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from grader import __version__
from grader.errors import SetupError, unknown_item
from grader.authoring.listing import format_catalog
from grader.messages import t
from grader.authoring.stubs import build_stubs
from grader.authoring.workspace import example_item, init_workspace, module_files

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2


class _Main(click.Group):
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
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the llmgrade version and exit.")
def main() -> None:
    """Exercises and a grader for "Build a Large Language Model (From Scratch)".

    \b
    Example:
      llmgrade init my-llm && cd my-llm
      llmgrade check ch03.MultiHeadAttention
      llmgrade grade ch03 ch04
    """


@main.command("list")
@click.argument("selectors", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
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
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if exercises/ differs from what would be generated.")
@click.option("--solutions", "solutions_dir", type=click.Path(path_type=Path),
              help="Folder of the solution modules (default: the installed solutions package).")
@click.option("--exercises", "exercises_dir", type=click.Path(path_type=Path),
              help="Folder to write the stubs to (default: the installed exercises package).")
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
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace exercise files already in TARGET.")
def init_command(target: Path, force: bool) -> None:
    """Create a student workspace in TARGET: the exercise modules, a README and a marker.

    \b
    Example:
      llmgrade init my-llm
    """
    path = init_workspace(target, force=force)
    click.echo(t("workspace.created", path=str(path), count=len(module_files()),
                 example=example_item()))


# ---- class grading, reports and exports (issue 5) ------------------------------------------------
_DB_OPTION = click.option("--db", type=click.Path(path_type=Path), default=None,
                          help="The gradebook file (default: .llmgrade/gradebook.sqlite here).")


@main.command("grade-class")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Submissions graded at once (default: the number of CPU cores).")
@click.option("--force", is_flag=True, help="Grade again submissions that did not change.")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Grade on a Dask cluster: a scheduler address (tcp://host:8786) or local:N "
                   "(N worker processes here). Needs pip install llmgrade[cluster].")
@_DB_OPTION
def grade_class_command(submissions: Path, jobs: int | None, force: bool, cluster: str | None,
                        db: Path | None) -> None:
    """Grade every student folder or .zip in SUBMISSIONS and record the runs in the gradebook.

    \b
    Examples:
      llmgrade grade-class submissions/ --jobs 2
      llmgrade grade-class submissions/ --cluster local:4
    """
    from grader.classroom.grade_class import grade_class_cli

    message, ok = grade_class_cli(submissions, db=db, jobs=jobs, force=force, cluster=cluster)
    click.echo(message)
    if not ok:
        raise click.exceptions.Exit(EXIT_FAILED)


@main.command("report")
@_DB_OPTION
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the HTML pages (default: llmgrade-report).")
def report_command(db: Path | None, out: Path | None) -> None:
    """Render the class overview and one HTML page per student from the gradebook.

    \b
    Example:
      llmgrade report --out class-report/
    """
    from reports.render import build_class_reports

    click.echo(build_class_reports(db, out))


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "gradescope"]), required=True,
              help="csv: one row per student; gradescope: one results.json per student.")
@_DB_OPTION
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="The CSV file or the Gradescope folder (default: gradebook.csv or gradescope/).")
def export_command(fmt: str, db: Path | None, out: Path | None) -> None:
    """Export each student's latest run as a CSV grade sheet or Gradescope results.

    \b
    Example:
      llmgrade export --format gradescope --out gradescope/
    """
    from grader.classroom.export import export

    click.echo(export("csv" if fmt == "csv" else "gradescope", db, out))


def _submission_option(fn: Any) -> Any:
    return click.option("--submission", type=click.Path(path_type=Path), default=None,
                        help="The student's folder (default: this workspace, or ./exercises).")(fn)


def _device_option(fn: Any) -> Any:
    return click.option("--device", default=None,
                        help="Device to grade on (default: CUDA, then MPS, then CPU).")(fn)


@main.command("grade")
@click.argument("items", nargs=-1)
@_submission_option
@_device_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the full machine-readable result to this file.")
@click.option("--suites", "suites", type=click.Path(path_type=Path), multiple=True,
              help="An extra folder of hidden suites (instructors); may be repeated.")
@click.option("--time-scale", type=float, default=1.0, help="Multiply every time limit (slow machines).")
@click.option("--db", type=click.Path(path_type=Path), default=None,
              help="Gradebook to record the run in (default: .llmgrade/gradebook.sqlite in the workspace).")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML progress report (default: next to the gradebook).")
@click.option("--no-record", is_flag=True, help="Record nothing and write no report.")
def grade_command(items: tuple[str, ...], submission: Path | None, device: str | None,
                  json_path: Path | None, suites: tuple[Path, ...], time_scale: float,
                  db: Path | None, report: Path | None, no_record: bool) -> None:
    """Grade ITEMS (ids or chapters such as ch03; all when none are given).

    \b
    Example:
      llmgrade grade ch03 4.1
    """
    from grader.runner.commands import grade_and_report

    code = grade_and_report(submission, items, device=device, json_path=json_path, suites=suites,
                            time_scale=time_scale, db=db, report=report, record=not no_record)
    raise click.exceptions.Exit(code)


@main.command("check")
@click.argument("item")
@_submission_option
@_device_option
@click.option("--time-scale", type=float, default=1.0, help="Multiply every time limit (slow machines).")
def check_command(item: str, submission: Path | None, device: str | None, time_scale: float) -> None:
    """Grade one ITEM and show every check with its full diagnostics.

    \b
    Example:
      llmgrade check ch03.MultiHeadAttention
    """
    from grader.runner.commands import check_one

    raise click.exceptions.Exit(check_one(submission, item, device=device, time_scale=time_scale))


if __name__ == "__main__":  # python -m grader.cli
    main()
