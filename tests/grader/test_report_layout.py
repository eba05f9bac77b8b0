"""The reports at 1280 px in a real headless Chromium: no horizontal overflow, no console errors.

The report itself runs no scripts (its CSP forbids them), so the overflow is measured on a copy of
the same HTML and CSS with the CSP removed and a small measuring script appended; the screenshots
and the console check use the unmodified page. Folded sections (``<details>``) are opened before
measuring, so cards that are normally folded away are measured too.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re
import subprocess
from pathlib import Path

import pytest

from grader import catalog
from grader.classroom.gradebook import Gradebook
from grader.results import CheckResult
from reports.render import write_class_reports

from .fake_runs import fake_run
from .test_browser import _chromium, render_in_browser

WIDTH = 1280
MEASURE = """<script>
document.querySelectorAll('details').forEach(d => { d.open = true; });
const de = document.documentElement;
const boxes = [...document.querySelectorAll('.card, .detail, .msg, .fix-head, p, h1, h2, h3, table:not(.heat table)')];
const inner = boxes.filter(e => !e.closest('.heat') && e.scrollWidth > e.clientWidth + 1)
                   .map(e => (e.id || e.className || e.tagName));
document.body.setAttribute('data-overflow', JSON.stringify(
  {page: de.scrollWidth - de.clientWidth, width: de.clientWidth, inner: inner.slice(0, 20)}));
</script>"""


def _long_run(student: str, seed: int):  # type: ignore[no-untyped-def]
    """A run whose failed items carry long unbroken words, long ids and several merged checks."""
    run = fake_run(seed=seed, started_at=f"2025-01-0{seed + 1}T10:00:00+00:00", submission=student)
    for item in run.items:
        if item.status == "failed" and not item.hidden:
            word = "attn_scores.masked_fill_(self.mask.bool()[:num_tokens,:num_tokens],-torch.inf)" * 3
            item.checks = [CheckResult(f"check_with_a_rather_long_name_{n}", "failed",
                                       message=f"{item.id}: {word} differs", details={"file": "ch03.py", "line": 57})
                           for n in range(4)]
    return run


def _measure(page: Path, profile: Path) -> dict[str, object]:
    text = page.read_text("utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = page.with_name("measure-" + page.name)
    probe.write_text(text.replace("</body>", MEASURE + "</body>"), "utf-8")
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={profile}", f"--window-size={WIDTH},900", "--dump-dom", probe.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'data-overflow="([^"]*)"', proc.stdout)
    assert found, "the measuring script did not run"
    return dict(json.loads(html_lib.unescape(found.group(1))))


def _screenshot(page: Path, out: Path, profile: Path) -> None:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", f"--window-size={WIDTH},2400", f"--screenshot={out}",
           page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and out.stat().st_size > 10_000, proc.stderr[-2000:]


@pytest.mark.slow
def test_student_and_class_reports_fit_1280_px(tmp_path: Path) -> None:
    long_name = "a-student-with-a-very-long-name-" + "x" * 60
    with Gradebook(tmp_path / "gb.sqlite") as book:
        for seed, student in enumerate(["alice", long_name, "bob"]):
            book.record(student, _long_run(student, seed))
        partial = _long_run("alice", 3)
        book.record("alice", dataclasses.replace(partial, items=[i for i in partial.items if i.module == "ch03"]))
        index = write_class_reports(book, tmp_path / "site")
    pages = sorted((tmp_path / "site" / "students").glob("*.html"))
    assert len(pages) == 3
    for page in [index, *pages]:
        measured = _measure(page, tmp_path / "profile")
        assert 1200 <= int(str(measured["width"])) <= WIDTH, measured  # the window really is 1280 px wide
        assert measured["page"] == 0, (page.name, measured)
        assert measured["inner"] == [], (page.name, measured)
        _dom, console = render_in_browser(page, tmp_path / "profile")
        assert console == [], (page.name, console)
        _screenshot(page, tmp_path / f"{page.stem}.png", tmp_path / "profile")
    alice = next(p for p in pages if p.name.startswith("alice"))
    assert all(f'id="item-{i.id}"' in alice.read_text("utf-8") for i in catalog.ITEMS)


@pytest.mark.slow
def test_the_measurement_sees_overflow(tmp_path: Path) -> None:
    page = tmp_path / "wide.html"
    page.write_text('<html><body><div class="card" id="c" style="width:300px;overflow:hidden">'
                    + "x" * 400 + '</div><div style="width:3000px">wide</div></body></html>', "utf-8")
    measured = _measure(page, tmp_path / "profile")
    assert int(str(measured["page"])) > 1000 and measured["inner"] == ["c"]
