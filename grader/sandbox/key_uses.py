"""The trusted end of the answer-key tripwire: read what the worker's audit hook reported
(:mod:`grader.sandbox.key_watch`) and turn it into load errors and failed calls.

Every line comes from the untrusted worker: it is parsed defensively, capped, and its file is only
believed (and its source line only read) when it lies in the submission. A student can only hurt
themselves by writing here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.messages import Phrase, phrase
from grader.sandbox.key_watch import FIELD

GRADER_ROOT = Path(__file__).resolve().parents[2]

KINDS = ("import", "open", "reach", "frames", "disguise", "spawn", "tamper")
MAX_BYTES = 256 * 1024
MAX_USES = 100


@dataclass(frozen=True)
class KeyUse:
    kind: str  # one of KINDS
    name: str  # the module, file or function reached for
    file: str  # the student's file that did it, on the host ("" when not in the submission)
    line: int | None

    def error(self, submission: Path) -> dict[str, Any]:
        """The worker-error / load-error fields of this use."""
        return {"kind": "answer_key", "type": self.kind, "use": self.kind, "message": self.name,
                "file": self.file or None, "line": self.line,
                "source_line": source_line(self.file, self.line, submission)}


def how(kind: str, name: str) -> Phrase:
    """What the student's code did, as the middle of a sentence ("imports reference.ch04")."""
    if kind == "open":  # a path: show it from the grader's folder or the installed package
        for base in (str(GRADER_ROOT) + os.sep, "site-packages" + os.sep):
            if base in name:
                name = name.split(base, 1)[1]
                break
    return phrase(f"answer_key.how.{kind if kind in KINDS else 'import'}", name=name)


def drain(fd: int) -> bytes:
    """Whatever the hook wrote since the last call (without waiting)."""
    data = b""
    while len(data) < MAX_BYTES:
        try:
            chunk = os.read(fd, MAX_BYTES - len(data))
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def parse(data: bytes, submission: Path, inside_package: str) -> list[KeyUse]:
    """Reported uses; files seen inside the sandbox are mapped back to the submission."""
    uses: list[KeyUse] = []
    for raw in data.decode("utf-8", "replace").splitlines()[:MAX_USES]:
        fields = raw.split(FIELD)
        if len(fields) != 4 or fields[0] not in KINDS:
            continue
        kind, name, file, line = fields
        uses.append(KeyUse(kind, name[:300], host_file(file, submission, inside_package),
                           int(line) if line.isdigit() and len(line) < 9 else None))
    return uses


def host_file(file: str, submission: Path, inside_package: str) -> str:
    """``file`` on the host when it is one of the submission's files, else ""."""
    prefix = inside_package.rstrip("/") + "/submission/"
    if inside_package and file.startswith(prefix):
        file = str(submission / file[len(prefix):])
    try:
        path = Path(file).resolve()
    except (OSError, ValueError, RuntimeError):
        return ""
    return str(path) if path.is_relative_to(submission) and path.is_file() else ""


def source_line(file: str, line: int | None, submission: Path) -> str:
    if not file or not line or not Path(file).resolve().is_relative_to(submission):
        return ""
    try:
        return Path(file).read_text("utf-8", "replace").splitlines()[line - 1].strip()[:300]
    except (OSError, IndexError):
        return ""


def load_errors(uses: list[KeyUse], submission: Path, modules: list[str]) -> dict[str, dict[str, Any]]:
    """``{module: load error}``: a use while the modules were imported costs the module whose file
    made it; one that no module file made (code compiled under another name) costs every module."""
    found: dict[str, dict[str, Any]] = {}
    for use in uses:
        module = Path(use.file).stem if use.file else ""
        target = module if module in modules else "*"
        found.setdefault(target, use.error(submission))
    return found
