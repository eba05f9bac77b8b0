"""The message catalog: every literal message id used in code exists, and placeholders are valid."""

from __future__ import annotations

import re
import string
from pathlib import Path

from grader.messages import _load, has, t

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = [
    re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""GradeFailure\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""SetupError\(\s*["']([a-z0-9_.]+)["']"""),
    re.compile(r"""diagnosis\s*=\s*["']([a-z0-9_]+)["']"""),
]


def used_ids() -> set[str]:
    found: set[str] = set()
    files = [*ROOT.joinpath("grader").rglob("*.py"), *ROOT.joinpath("reports").rglob("*.py"),
             *ROOT.joinpath("reports").rglob("*.j2")]
    for path in files:
        text = path.read_text("utf-8")
        for pattern in PATTERNS:
            for match in pattern.findall(text):
                found.add(f"diagnosis.{match}" if pattern is PATTERNS[3] else match)
    return found


def test_every_literal_message_id_exists() -> None:
    # A key ending in "." or "_" is the literal prefix of a computed one (``"status." + status``).
    literal = {key for key in used_ids() if not key.endswith((".", "_")) and "." in key}
    missing = sorted(key for key in literal if not has(key))
    assert missing == []


def test_every_message_is_a_valid_template() -> None:
    for key, template in _load("en").items():
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", n.split(".")[0].split("[")[0]) for n in names), key


def test_translation_falls_back_to_english(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    assert t("status.passed") == "passed"
