"""The trusted side's two answer-key walls on their own: the static scan of the files, and the
reading of what the worker's tripwire reported (untrusted lines)."""

from __future__ import annotations

import os
from pathlib import Path

from grader.checking.answer_key import scan
from grader.sandbox import key_uses
from grader.sandbox.key_watch import FIELD

ROOT = Path(__file__).resolve().parents[2]


def test_the_scan_flags_ways_into_other_code_and_not_the_book(tmp_path: Path) -> None:
    (tmp_path / "ch03.py").write_text("import torch\n\ndef f(model):\n    g = type(model).forward.__globals__\n")
    (tmp_path / "ch04.py").write_text("import sys\nx = getattr(sys, '_getframe')(1)\n")
    (tmp_path / "ch05.py").write_text("import gc\n\ndef f():\n    return gc.get_objects()\n")
    found = scan(tmp_path)
    assert {m: (e["use"], e["line"], e["message"]) for m, e in found.items()} == {
        "ch03": ("reach", 4, "__globals__"), "ch04": ("reach", 2, "_getframe"), "ch05": ("reach", 4, "get_objects")}
    assert scan(ROOT / "solutions") == {} and scan(ROOT / "exercises") == {}


def test_reported_uses_are_believed_only_inside_the_submission(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "ch04.py").write_text("a = 1\nimport reference.ch04\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("line one\nthe instructor's secret\n")
    lines = [
        FIELD.join(["import", "reference.ch04", "/llmgrade/pkg/submission/ch04.py", "2"]),  # seen in the sandbox
        FIELD.join(["open", "reference/ch05.py", str(secret), "2"]),  # a forged file outside it
        FIELD.join(["delete", "everything", str(work / "ch04.py"), "1"]),  # an unknown kind
        "not a use at all",
        FIELD.join(["reach", "x" * 5000, str(work / "ch04.py"), "99999999999"]),  # oversized fields
    ]
    uses = key_uses.parse(("\n".join(lines) + "\n").encode(), work.resolve(), "/llmgrade/pkg")
    assert [(u.kind, u.file, u.line) for u in uses] == [
        ("import", str((work / "ch04.py").resolve()), 2), ("open", "", 2), ("reach", str((work / "ch04.py").resolve()), None)]
    assert len(uses[2].name) <= 300
    errors = [u.error(work.resolve()) for u in uses]
    assert errors[0]["source_line"] == "import reference.ch04"
    assert errors[1]["source_line"] == "" and errors[1]["file"] is None  # never read outside the submission
    found = key_uses.load_errors(uses, work.resolve(), ["ch04", "ch05"])
    assert found["ch04"]["line"] == 2 and "*" in found  # a use no module file made costs every module


def test_draining_an_empty_pipe_does_not_wait() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    try:
        assert key_uses.drain(read) == b""
        os.write(write, b"abc")
        assert key_uses.drain(read) == b"abc"
    finally:
        os.close(read)
        os.close(write)
