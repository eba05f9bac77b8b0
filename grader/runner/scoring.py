"""Turn the plugin's check outcomes into item results and points.

- An item's points are its share of passed checks times its points in the catalog.
- A failed *integration* check (the item graded with the student's own dependencies) is charged to
  the dependency instead when that dependency did not pass: one mistake costs points once, and
  the feedback names the root cause.
- An *extension* check (beyond the book, ``@pytest.mark.extension``) is reported with its status,
  marked ``details["extension"]``, but never counted: it cannot cost or earn points.
- Items whose module failed to load, or whose names are missing, get status ``error`` and point
  at the one load problem, reported once per module.
- Items whose module uses the answer key (the static scan or the tripwire at load), or one of
  whose checks caught it at run time, get status ``answer_key`` and 0 points: never charged to
  another item, never shown as merely not started.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from grader.catalog import BY_ID, Item
from grader.messages import item_title, message_fields, t
from grader.notebooks.locations import notebook_location
from grader.results import CheckResult, ItemResult, LoadError, Status
from grader.sandbox.policy import GRADER_PACKAGES

_LOAD_KINDS = ("missing_file", "syntax_error", "import_error")
# "No module named 'reference'", "cannot import name 'GELU' from 'reference.ch04'"
_GRADER_IMPORT = re.compile(r"""(?:module named|from) ['"](?P<name>(?:%s)(?:\.[\w.]+)?)['"]""" % "|".join(GRADER_PACKAGES))


def load_errors_from(report: dict[str, Any], notebooks: dict[str, str] | None = None,
                     folder: Path | None = None) -> list[LoadError]:
    """Load problems as results. A module generated from a notebook (found in ``folder``, the graded
    folder: the worker's own link to it is gone once the worker is) has its locations given as
    notebook cell and line; ``notebooks`` maps such a module to the notebook's file name."""
    errors: list[LoadError] = []
    for module, info in sorted(report.get("modules", {}).items()):
        kind = info.get("kind", "import_error")
        if kind not in _LOAD_KINDS:
            kind = "import_error"
        file = str(info.get("file", ""))
        line = info.get("line")
        source_line = str(info.get("source_line", ""))
        cell = notebook_location(file, line, folder) if kind != "missing_file" else None
        grader_code = _GRADER_IMPORT.search(str(info.get("message", ""))) if kind == "import_error" else None
        if cell is not None:
            said = message_fields(f"load.{kind}_notebook", module=module, where=str(cell), source_line=source_line,
                                  error=info.get("message", ""))
            errors.append(LoadError(module=module, kind=kind, file=cell.source, line=cell.line,
                                    source_line=source_line, cell=cell.cell, **said))
            continue
        key = "load.import_timeout" if info.get("timeout_s") else f"load.{kind}"
        if grader_code is not None:  # the grader's own code: what to do is write it
            key = "load.imports_grader_code"
        said = message_fields(key, module=module, file=Path(file).name or module,
                              line=line if line is not None else "?", source_line=source_line,
                              error=info.get("message", ""), seconds=f"{float(info.get('timeout_s') or 0):.0f}",
                              name=grader_code.group("name") if grader_code else "")
        errors.append(LoadError(module=module, kind=kind, file=file, line=line, source_line=source_line, **said))
    for item_id, names in sorted(report.get("missing", {}).items()):
        item = BY_ID.get(item_id)
        module = item.module if item else item_id
        notebook = (notebooks or {}).get(module)
        file = notebook or f"{module}.py"
        errors.append(LoadError(
            module=module, kind="missing_name", file=file, names=list(names),
            **message_fields("load.missing_name_notebook" if notebook else "load.missing_name", module=module,
                    file=file, names=", ".join(names), item=item_id)))
    return errors


def _transitive_deps(item: Item) -> list[str]:
    seen: list[str] = []
    stack = list(item.depends)
    while stack:
        dep = stack.pop(0)
        if dep in seen or dep not in BY_ID:
            continue
        seen.append(dep)
        stack.extend(BY_ID[dep].depends)
    return seen


def _roots(item: Item, raw: list[dict[str, Any]]) -> list[str]:
    """The items this item's checks call as code: those one of its checks swaps for the reference's
    (a check that swaps an item in some calls runs the student's version in the others). A declared
    dependency no check swaps is one the item builds on, not one it calls (4.3 and GPTModel)."""
    roots: list[str] = []
    for check in raw:
        for swap in check.get("student_swaps") or []:
            roots.extend(dep for dep in swap if dep in BY_ID and dep != item.id and dep not in roots)
    return roots


def _reached(roots: list[str], swap: list[str] | set[str], exclude: str) -> list[str]:
    """The student's items a call runs: the roots it did not swap, and theirs in turn. A swapped
    item is the reference's, which uses only the reference's own dependencies."""
    reached: list[str] = []
    stack = [dep for dep in roots if dep not in swap]
    while stack:
        dep = stack.pop(0)
        if dep in reached or dep == exclude:
            continue
        reached.append(dep)
        stack.extend(d for d in BY_ID[dep].depends if d in BY_ID and d not in swap)
    return reached


def item_uses(item: Item, raw: list[dict[str, Any]]) -> list[str]:
    """Every other item this item depends on or whose student code one of its checks may run."""
    found = _transitive_deps(item)
    return found + [dep for dep in _reached(_roots(item, raw), set(), item.id) if dep not in found]


def _culprit(item: Item, check: dict[str, Any], roots: list[str], failed_deps: list[str]) -> str | None:
    """The failed dependency to charge a failed ``check`` to: one whose student version it ran.

    Integration checks run the student's own dependencies by design; any other check ran the
    student's version of a dependency in a call that neither swapped it for the reference's nor
    reached it only through a swapped item."""
    if not failed_deps:
        return None
    swaps = check.get("student_swaps")
    if check.get("integration") or not isinstance(swaps, list):
        return failed_deps[0] if check.get("integration") else None
    ran = {dep for swap in swaps for dep in _reached(roots, set(swap), item.id)}
    return next((dep for dep in failed_deps if dep in ran), None)


def item_results(items: list[Item], checks: list[dict[str, Any]],
                 load_errors: list[LoadError]) -> list[ItemResult]:
    by_item: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_item.setdefault(str(check.get("item")), []).append(check)
    uses = {item.id: item_uses(item, by_item.get(item.id, [])) for item in items}

    results: dict[str, ItemResult] = {}
    # Dependencies first, so that a dependent item can see whether they passed.
    for item in _dependency_order(items, uses):
        results[item.id] = _one_item(item, by_item.get(item.id, []), load_errors, results, uses[item.id])
    return [results[item.id] for item in items]


def _dependency_order(items: list[Item], uses: dict[str, list[str]]) -> list[Item]:
    ordered: list[Item] = []
    visiting: set[str] = set()

    def visit(item: Item) -> None:
        if item in ordered or item.id in visiting:
            return
        visiting.add(item.id)
        for dep in uses.get(item.id, []):
            if dep in uses:
                visit(BY_ID[dep])
        ordered.append(item)

    for item in items:
        visit(item)
    return ordered


def _one_item(item: Item, raw: list[dict[str, Any]], load_errors: list[LoadError],
              done: dict[str, ItemResult], uses: list[str]) -> ItemResult:
    title = item_title(item.id, item.title)
    def result(points: float, status: Status, message: str, diagnosis: str | None = None,
               checks: list[CheckResult] | None = None, duration_s: float = 0.0) -> ItemResult:
        return ItemResult(id=item.id, module=item.module, title=title, kind=item.kind, points=points,
                          max_points=float(item.points), status=status, hidden=item.hidden,
                          message=message, diagnosis=diagnosis, checks=checks or [],
                          duration_s=duration_s)

    # "*": the worker could not load the submission at all (every item is affected, reported once)
    problem = next((e for e in load_errors if e.module in (item.module, "*") and e.kind != "missing_name"), None) \
        or next((e for e in load_errors if e.kind == "missing_name" and e.module == item.module
                 and set(e.names) & set(item.symbols)), None)
    if problem is not None:
        return result(0.0, "error", problem.message)
    if not raw:
        return result(0.0, "error", t("item.no_checks", item=item.id))

    failed_deps = [dep for dep in uses if dep in done and done[dep].status != "passed"]
    roots = _roots(item, raw)
    checks: list[CheckResult] = []
    for c in raw:
        if c["status"] == "skipped":
            continue
        check = CheckResult(name=c["name"], status=c["status"], message=c.get("message", ""),
                            message_id=c.get("message_id", ""), diagnosis=c.get("diagnosis"),
                            message_params=c.get("message_params"),
                            details=c.get("details", {}), duration_s=float(c.get("duration_s", 0.0)),
                            hidden=bool(c.get("hidden")))
        swapped = sorted({dep for swap in c.get("student_swaps") or [] for dep in swap})
        if swapped:  # the items this check ran with the reference's code instead of the student's
            check.details = {**check.details, "swapped": swapped}
        forced = [dep for dep in c.get("forced_swaps") or [] if dep in BY_ID]
        culprit = _culprit(item, c, roots, failed_deps) if check.status not in ("passed", "not_started") else None
        if forced:  # run with the reference's version of a dependency whose code hung, crashed or exited
            check.details = {**check.details, "forced_swaps": forced}
            if check.status == "passed":  # the item's own code is right: counted, with a word on why it ran so
                check.message = t("check.passed_with_reference_after_break", item=item.id, dependency=forced[0],
                                  title=item_title(forced[0], BY_ID[forced[0]].title))
            else:  # it may have failed for the swap itself: charged to what broke, as a failing dependency is
                culprit = forced[0]
        if c.get("extension"):
            check.details = {**check.details, "extension": True}
            if check.status == "failed":
                check.message = t("check.extension_not_counted", message=check.message)
        elif culprit is not None:
            check.blamed_on = culprit
            said = "check.ran_with_reference_after_break" if forced else "check.used_failing_dependency"
            check.message = t(said, item=item.id, dependency=culprit, title=item_title(culprit, BY_ID[culprit].title),
                              message=check.message)
        checks.append(check)

    counted = [c for c in checks if c.blamed_on is None and not c.details.get("extension")]
    passed = sum(1 for c in counted if c.status == "passed")
    status: Status
    if counted and passed == len(counted):
        status = "passed"
    elif counted and all(c.status == "not_started" for c in counted):
        status = "not_started"
    else:
        status = "failed"
    points = round(item.points * passed / len(counted), 2) if counted else 0.0
    first = next((c for c in counted if c.status == "failed"), None) \
        or next((c for c in counted if c.status != "passed"), None)
    message = first.message if first is not None else ""
    diagnosis = first.diagnosis if first is not None else None
    if status == "passed":
        message = t("item.passed", passed=passed, total=len(counted))
    return result(points, status, message, diagnosis, checks, round(sum(c.duration_s for c in checks), 3))
