"""The reports in a real headless Chromium: they render, log no console errors, show the numbers.

Needs Debian's ``chromium`` (``.ci/install-browser.sh``). Skipped with a reason when it is absent,
except in CI (``CI=true``), where its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from grader.classroom.gradebook import Gradebook
from reports.charts import percent
from reports.render import write_class_reports

from .fake_runs import HOSTILE, fake_run, with_load_error

CONSOLE = re.compile(r"CONSOLE|Uncaught|Refused to", re.IGNORECASE)


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    reason = "chromium is not installed; run .ci/install-browser.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def render_in_browser(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """The DOM after Chromium loaded ``page`` (``extra``: more Chromium flags, such as
    ``--window-size=W,H``), and the console lines it logged."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", *extra,
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]
    return proc.stdout, console


@pytest.mark.slow
def test_reports_render_in_chromium(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("alice", fake_run(seed=0, started_at="2025-01-01T10:00:00+00:00"))
        alice = with_load_error(fake_run(seed=1, started_at="2025-01-02T10:00:00+00:00",
                                         statuses={"ch03.CausalAttention": "failed"}))
        book.record("alice", alice)
        book.record("bob", fake_run(seed=2))
        index = write_class_reports(book, tmp_path / "site")
    student_page = next((tmp_path / "site" / "students").glob("alice*.html"))

    dom, console = render_in_browser(student_page, tmp_path / "profile")
    assert console == []
    assert f"{alice.score:g} of {alice.max_score:g} points" in dom
    assert f"{alice.counts()['passed']} passed, {alice.counts()['failed']} failed" in dom
    assert dom.count('class="attempt"') == 2 and "<polyline" in dom
    assert "<script>" not in dom and "&lt;script&gt;alert" in dom  # shown as text, not run
    assert HOSTILE not in dom

    dom, console = render_in_browser(index, tmp_path / "profile")
    assert console == []
    bob = fake_run(seed=2)
    mean = round((percent(alice.score, alice.max_score) + percent(bob.score, bob.max_score)) / 2, 1)
    assert f"2 students, average score {mean}%" in dom
    assert 'data-students="2"' in dom and "ch03.CausalAttention" in dom
    assert dom.count('class="bar"') == 10


@pytest.mark.slow
def test_console_errors_are_caught(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<p>x</p><script>console.error('bad'); missing();</script>", encoding="utf-8")
    _dom, console = render_in_browser(page, tmp_path / "profile")
    assert any("Uncaught ReferenceError" in line for line in console)
