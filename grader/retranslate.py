"""A recorded run's messages said again in another language (a report in the other language).

A check, a load error and a notebook note keep their message id and parameters (``message_id``, ``message_params``:
``grader.messages.encode_params``), so their sentences, the diagnoses they end with and the item
messages made of them can be rendered in any language from the same gradebook. Messages recorded
without them (older runs) keep their stored text; :func:`in_language` says whether any did.
"""

from __future__ import annotations

from dataclasses import replace

from grader.catalog import BY_ID
from grader.messages import has, render_stored, t_in, translated
from grader.results import CheckResult, GradeRun, ItemResult


def in_language(run: GradeRun, lang: str) -> tuple[GradeRun, bool]:
    """``run`` with its messages in ``lang``, and whether every message could be rendered there
    (False: some keep the language they were graded in)."""
    if run.lang == lang:
        return run, True
    complete = True
    errors = []
    said: dict[str, str] = {}  # stored text -> the same message in ``lang``
    for error in run.load_errors:
        text = None if error.message_params is None else render_stored(lang, error.message_id, error.message_params)
        complete = complete and text is not None
        if text is not None:
            said[error.message] = text
        errors.append(replace(error, message=text or error.message))
    notes = []
    for note in run.notebooks:
        text = None if note.message_params is None else render_stored(lang, note.message_id, note.message_params)
        complete = complete and text is not None
        notes.append(replace(note, message=text or note.message))
    code_notes = []
    for code in run.grader_code:
        text = None if code.message_params is None else render_stored(lang, code.message_id, code.message_params)
        complete = complete and text is not None
        code_notes.append(replace(code, message=text or code.message))
    items = []
    for item in run.items:
        checks = []
        for check in item.checks:
            text = _check_message(check, item, lang) if check.message else ""
            complete = complete and text is not None
            if text:
                said[check.message] = text
            checks.append(replace(check, message=text if text is not None else check.message))
        message = said.get(item.message)
        if message is None and item.message:
            message = _item_message(item, checks, run.lang, lang)
        complete = complete and (message is not None or not item.message)
        items.append(replace(item, checks=checks, message=message or item.message))
    return replace(run, items=items, load_errors=errors, notebooks=notes, grader_code=code_notes,
                   lang=lang if complete else run.lang), complete


def _check_message(check: CheckResult, item: ItemResult, lang: str) -> str | None:
    """The check's message in ``lang`` as scoring wrote it (a diagnosis after it, a dependency's or an
    extension's sentence around it), or None when it was recorded without its parameters."""
    forced = [dep for dep in check.details.get("forced_swaps") or [] if dep in BY_ID]
    if forced and check.status == "passed":
        culprit = BY_ID[forced[0]]
        return t_in(lang, "check.passed_with_reference_after_break", item=item.id, dependency=culprit.id,
                    title=translated(f"item.{culprit.id}", culprit.title, lang))
    if not check.message_id or check.message_params is None:
        return None
    text = render_stored(lang, check.message_id, check.message_params)
    if text is None:
        return None
    if check.diagnosis and check.status == "failed" and has(f"diagnosis.{check.diagnosis}"):
        text = t_in(lang, "check.with_diagnosis", message=text, diagnosis=t_in(lang, f"diagnosis.{check.diagnosis}"))
    if check.details.get("extension") and check.status == "failed":
        text = t_in(lang, "check.extension_not_counted", message=text)
    elif check.blamed_on in BY_ID:
        culprit = BY_ID[check.blamed_on]
        said = "check.ran_with_reference_after_break" if forced else "check.used_failing_dependency"
        text = t_in(lang, said, item=item.id, dependency=culprit.id,
                    title=translated(f"item.{culprit.id}", culprit.title, lang), message=text)
    return text


def _item_message(item: ItemResult, checks: list[CheckResult], graded_in: str, lang: str) -> str | None:
    """The item's one-line reason in ``lang`` where scoring wrote one of its own (not a check's)."""
    counted = [c for c in checks if c.blamed_on is None and not c.details.get("extension")]
    if item.status == "passed":
        return t_in(lang, "item.passed", passed=sum(c.status == "passed" for c in counted), total=len(counted))
    if item.message == t_in(graded_in, "item.no_checks", item=item.id):
        return t_in(lang, "item.no_checks", item=item.id)
    return None
