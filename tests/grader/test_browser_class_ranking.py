"""Issue 22, finding 4: the class report's "Items most often failed" ranks real failures first, in a
real headless Chromium, from the gradebook through ``llmgrade report``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.classroom.gradebook import Gradebook
from grader.cli import main

from .fake_runs import fake_run, with_load_error
from .test_browser import render_in_browser


@pytest.mark.slow
def test_one_students_syntax_error_does_not_push_real_failures_off_the_list(tmp_path: Path) -> None:
    passing = {item.id: "passed" for item in catalog.ITEMS}
    broken = {**passing, **{item.id: "error" for item in catalog.ITEMS if item.module == "ch03"}}
    failed = {**passing, "ch04.GELU": "failed", "ch05.softmax_with_temperature": "failed"}
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ann", with_load_error(fake_run(statuses=broken), file="ch03.py"))
        book.record("bob", fake_run(statuses=failed))
        book.record("cy", fake_run(statuses={**failed, "ch04.GELU": "passed"}))
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "gb.sqlite"),
                                       "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    dom, console = render_in_browser(tmp_path / "site" / "index.html", tmp_path / "profile")
    assert console == []
    table = dom.split('id="most-failed"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'data-item="([^"]+)"', table)
    assert rows[:2] == ["ch05.softmax_with_temperature", "ch04.GELU"], rows
    assert set(rows[2:]) <= {item.id for item in catalog.ITEMS if item.module == "ch03"}


@pytest.mark.slow
def test_the_chinese_class_report_keeps_its_headings_on_one_line(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 11: in the Chinese class report the 学生 heading broke one character per line."""
    monkeypatch.setenv("LLMGRADE_LANG", "en")  # --lang below sets it for this process: put back after
    with Gradebook(tmp_path / "gb.sqlite") as book:
        for student in ("ann", "bob"):
            book.record(student, fake_run(statuses={item.id: "passed" for item in catalog.ITEMS}))
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "gb.sqlite"),
                                       "--out", str(tmp_path / "site"), "--lang", "zh-CN"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "site" / "index.html"
    measured = tmp_path / "site" / "measured.html"  # the page, plus a script that measures its headings
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text("utf-8"))  # lets it run
    measured.write_text(html.replace("</body>", (
        "<script>const lines = th => { const r = document.createRange(); r.selectNodeContents(th);"
        " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; };"
        "document.body.dataset.tall = [...document.querySelectorAll('th')]"
        ".filter(th => !th.classList.contains('student') && lines(th) > 1)"
        ".map(th => th.textContent.trim()).join('|');</script></body>")), "utf-8")
    dom, console = render_in_browser(measured, tmp_path / "profile", "--window-size=420,800")  # a phone
    assert console == [] and "学生" in dom
    tall = re.search(r'data-tall="([^"]*)"', dom)
    assert tall is not None and tall.group(1) == "", tall
