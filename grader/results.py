"""Grading results and their JSON form (schema ``llmgrade.results``, version 3; 1 and 2 still read).

This is the one machine-readable record of a grading run: ``llmgrade grade --json PATH`` writes it,
the gradebook stores it and the reports read it. The schema is documented in
``docs/results-schema.md``; bump ``SCHEMA_VERSION`` and document the change when it changes.

Item statuses:
- ``passed``: every check passed.
- ``failed``: at least one check failed; points are the share of checks that passed.
- ``not_started``: every check reached a stub's ``NotImplementedError``.
- ``error``: the item could not be graded because its module did not load (see ``load_errors``).
- ``answer_key``: the student's code used the answer key: 0 points (version 2 only). No longer
  given: the worker grading an item holds none of its reference (grader/sandbox/views.py); older
  records keep it and read as they were.

``grader_code`` (new in version 3): where the submission's own files name the grader's code
(``reference``, ``solutions``, ``grader``, ``llms_from_scratch``), for the instructor: a note, never a grade.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

SCHEMA = "llmgrade.results"
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # 1: without the ``answer_key`` status; 2: without ``grader_code``

Status = Literal["passed", "failed", "not_started", "error", "answer_key"]
CheckStatus = Literal["passed", "failed", "not_started", "error"]
LoadErrorKind = Literal["missing_file", "syntax_error", "import_error", "missing_name", "answer_key"]
RunStatus = Literal["complete", "interrupted", "setup_error"]

STATUSES: tuple[str, ...] = ("passed", "failed", "not_started", "error", "answer_key")


def installed_torch_version() -> str:
    """The installed torch's version, read from its metadata (without importing torch)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""


class SchemaError(ValueError):
    """A results document that is not valid ``llmgrade.results`` JSON."""


@dataclass
class CheckResult:
    """One hidden check (one test function) of an item."""

    name: str
    status: CheckStatus
    message: str = ""
    message_id: str = ""
    diagnosis: str | None = None
    # The parameters of ``message_id`` (``grader.messages.encode_params``), so that a report can say
    # the message in another language; None in documents written before they were kept.
    message_params: dict[str, Any] | None = None
    # The dependency item a failure is charged to instead (graded with your dependency vs ours).
    blamed_on: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    # A check of an instructor's ``--suites`` folder (unless marked visible): the student sees its
    # name and outcome only (:meth:`GradeRun.student_view`); optional, absent in older documents.
    hidden: bool = False


@dataclass
class ItemResult:
    id: str
    module: str
    title: str
    kind: str
    points: float
    max_points: float
    status: Status
    hidden: bool = False
    message: str = ""
    diagnosis: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0
    # False only in a progress picture (grader/classroom/progress.py): no run has graded the item
    # yet, which is not the same as a stub that was graded and not started.
    graded: bool = True


def _without_hidden_detail(item: ItemResult) -> ItemResult:
    from grader.messages import message_fields

    said = {check.message for check in item.checks if check.hidden and check.message}
    checks = [CheckResult(check.name, check.status, hidden=True, duration_s=check.duration_s,
                          **(message_fields("trees.hidden_check_failed") if check.status == "failed" else {}))
              if check.hidden else check for check in item.checks]
    if item.message in said:  # the item's sentence came from a hidden check: the first failure shown instead
        shown = next((c for c in checks if c.status == "failed"), None)
        return ItemResult(**{**item.__dict__, "checks": checks, "diagnosis": shown.diagnosis if shown else None,
                             "message": shown.message if shown else ""})
    return ItemResult(**{**item.__dict__, "checks": checks})


@dataclass
class LoadError:
    """A student module that could not be used: reported once, not once per item."""

    module: str
    kind: LoadErrorKind
    file: str
    message: str
    line: int | None = None
    source_line: str = ""
    names: list[str] = field(default_factory=list)
    cell: int | None = None  # the notebook cell of ``line`` when ``file`` is a notebook
    message_id: str = ""  # with its parameters: ``message`` in another language (None in older documents)
    message_params: dict[str, Any] | None = None


@dataclass
class NotebookNote:
    """How a chapter notebook of the submission was graded: used (converted to a module) or not
    (a ``.py`` of the same chapter won); ``left_out`` lists ``{cell, line, first_line, reason}``."""

    module: str
    file: str
    used: bool
    message: str
    left_out: list[dict[str, Any]] = field(default_factory=list)
    message_id: str = ""  # with its parameters: ``message`` in another language (None in older documents)
    message_params: dict[str, Any] | None = None


@dataclass
class GraderCodeNote:
    """A place where the submission's own file names the grader's code (for the instructor)."""

    module: str
    file: str
    line: int
    name: str
    source_line: str = ""
    message: str = ""
    message_id: str = ""
    message_params: dict[str, Any] | None = None


@dataclass
class RefusedEntry:
    """An entry of the submission that was not read (``grader/submission_tree.py``): ``file`` is its
    path in the submission, escaped; ``reason`` is ``outside``, ``loop``, ``special``, ``unreadable``
    or ``name``."""

    file: str
    reason: str
    message: str = ""
    message_id: str = ""
    message_params: dict[str, Any] | None = None


@dataclass
class GradeRun:
    tool_version: str
    torch_version: str
    python_version: str
    device: str
    submission: str
    submission_hash: str
    started_at: str
    duration_s: float
    items: list[ItemResult]
    load_errors: list[LoadError] = field(default_factory=list)
    status: RunStatus = "complete"
    error: str = ""
    graded_by: str = ""  # the machine (and Dask worker) that graded it, for class runs on a cluster
    # The language its messages were written in (``grader/locales/<lang>``); "en" for older records.
    lang: str = "en"
    # How the student's code was isolated: "bwrap+seccomp+cgroup" (the OS sandbox and its parts),
    # "none" (rlimits only) or "" (not recorded: runs from before the sandbox).
    isolation: str = ""
    notebooks: list[NotebookNote] = field(default_factory=list)
    grader_code: list[GraderCodeNote] = field(default_factory=list)
    # What of the submission was not read: links out of it, special files, unreadable files (optional).
    refused: list[RefusedEntry] = field(default_factory=list)
    # ``error`` is the grading process's own log, which may quote an instructor's private suites:
    # the instructor's record keeps it, the student's view says only that grading failed.
    error_private: bool = False
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    @property
    def score(self) -> float:
        return round(sum(item.points for item in self.items), 2)

    @property
    def max_score(self) -> float:
        return round(sum(item.max_points for item in self.items), 2)

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in STATUSES}
        for item in self.items:
            counts[item.status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = self.score
        data["max_score"] = self.max_score
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def write(self, path: Path) -> None:
        """Write atomically: a reader never sees a half-written file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    def notebook_notices(self) -> list[NotebookNote]:
        """The notebook notes worth saying where the run is shown: those of the chapters graded, and
        every notebook that a ``.py`` of its chapter kept from being graded (the student may be
        editing the file nobody reads). The run keeps all its notes (gradebook, JSON)."""
        graded = {item.module for item in self.items}
        return [note for note in self.notebooks if note.module in graded or not note.used]

    def student_view(self) -> GradeRun:
        """A copy for the student: hidden items show pass/fail only, and hidden checks (an instructor's
        ``--suites``) their name and outcome only; no message derived from their inputs, the
        student's outputs or exceptions remains. Every student-facing artefact is written from it
        (terminal, the student's JSON and report, Gradescope); the class gradebook keeps the detail."""
        items = []
        for item in self.items:
            if item.hidden:
                item = ItemResult(item.id, item.module, item.title, item.kind, item.points,
                                  item.max_points, item.status, hidden=True, graded=item.graded)
            elif any(check.hidden for check in item.checks):
                item = _without_hidden_detail(item)
            items.append(item)
        from grader.messages import t

        error = t("grade.error_private") if self.error_private and self.error else self.error
        return GradeRun(**{**self.__dict__, "items": items, "error": error})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeRun:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise SchemaError("not an llmgrade results document")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise SchemaError(f"results schema version {version!r} is not supported "
                              f"(this llmgrade reads versions {', '.join(map(str, READABLE_VERSIONS))})")
        try:
            fields = {k: v for k, v in data.items() if k not in ("score", "max_score")}
            fields["schema_version"] = SCHEMA_VERSION  # read as the current version (a superset)
            fields["items"] = [
                ItemResult(**{**it, "checks": [CheckResult(**c) for c in it.get("checks", [])]})
                for it in data["items"]
            ]
            fields["load_errors"] = [LoadError(**e) for e in data.get("load_errors", [])]
            fields["notebooks"] = [NotebookNote(**n) for n in data.get("notebooks", [])]
            fields["grader_code"] = [GraderCodeNote(**n) for n in data.get("grader_code", [])]
            fields["refused"] = [RefusedEntry(**n) for n in data.get("refused", [])]
            run = cls(**fields)
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"malformed results document: {exc}") from exc
        for item in run.items:
            if item.status not in STATUSES:
                raise SchemaError(f"item {item.id} has unknown status {item.status!r}")
        return run

    @classmethod
    def from_json(cls, text: str) -> GradeRun:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"not valid JSON: {exc}") from exc
        return cls.from_dict(cast(dict[str, Any], data))

    @classmethod
    def read(cls, path: Path) -> GradeRun:
        return cls.from_json(path.read_text(encoding="utf-8"))
