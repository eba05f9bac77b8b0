"""The zh-CN reports in a real headless Chromium: no console errors, the ``lang`` attribute, and no
missing glyphs ("tofu") for any character on the pages.

The tofu check draws every distinct non-ASCII character of the rendered pages on a canvas with the
reports' own font stack, and compares each drawing with that of a code point no font has (U+0378,
unassigned): a character drawn exactly like it, or not drawn at all, has no glyph in any installed font.
Needs Chromium (``.ci/install-browser.sh``) and a CJK font (Debian's ``fonts-noto-cjk``, which
``.ci/run`` installs); skipped with the reason when either is absent, except in CI where that fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from grader.classroom.gradebook import Gradebook
from reports.render import write_class_reports

from .fake_runs import fake_run, with_load_error
from .test_browser import render_in_browser

NO_GLYPH = "\u0378"  # unassigned: every font lacks it, so Chromium draws its "missing glyph" box


def _need_cjk_font() -> None:
    fc_list = shutil.which("fc-list")
    fonts = subprocess.run([fc_list, ":lang=zh-cn", "family"], capture_output=True, text=True,
                           check=False).stdout if fc_list else ""
    if fonts.strip():
        return
    reason = "no CJK font is installed; apt-get install fonts-noto-cjk (as .ci/run does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="result"></pre>
<script>
const chars = %(chars)s, font = %(font)s, probe = %(probe)s;
const canvas = document.createElement("canvas"); canvas.width = 64; canvas.height = 64;
const ctx = canvas.getContext("2d", {willReadFrequently: true});
function drawing(ch) {
  ctx.clearRect(0, 0, 64, 64); ctx.font = "40px " + font; ctx.fillStyle = "#000"; ctx.textBaseline = "top";
  ctx.fillText(ch, 4, 4);
  const data = ctx.getImageData(0, 0, 64, 64).data; let ink = 0, sig = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i]) { ink++; sig = (sig * 31 + i * data[i]) %% 1000000007; } }
  return {ink: ink, sig: sig, width: ctx.measureText(ch).width};
}
const tofu = drawing(probe), missing = [];
for (const ch of chars) {
  const d = drawing(ch);
  if (d.ink === 0 || (d.sig === tofu.sig && d.width === tofu.width)) missing.push(ch);
}
document.getElementById("result").textContent = JSON.stringify({missing: missing, tofu: tofu, checked: chars.length});
</script></body></html>"""


def glyph_check(chars: list[str], font: str, folder: Path) -> dict[str, object]:
    page = folder / "harness.html"
    page.write_text(HARNESS % {"chars": json.dumps(chars), "font": json.dumps(font),
                               "probe": json.dumps(NO_GLYPH)}, encoding="utf-8")
    dom, console = render_in_browser(page, folder / "profile")
    assert console == []
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    result: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.mark.slow
def test_zh_cn_reports_render_with_every_glyph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_cjk_font()
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("li", fake_run(seed=0, started_at="2025-01-01T10:00:00+00:00", lang="zh-CN"))
        book.record("li", with_load_error(fake_run(seed=1, started_at="2025-01-02T10:00:00+00:00",
                                                   lang="zh-CN")))
        book.record("wang", fake_run(seed=2, lang="zh-CN"))
        index = write_class_reports(book, tmp_path / "site")
    pages = [index, *sorted((tmp_path / "site" / "students").glob("*.html"))]
    text = ""
    for page in pages:
        dom, console = render_in_browser(page, tmp_path / "profile")
        assert console == [], page
        assert '<html lang="zh-CN">' in dom
        text += re.sub(r"<[^>]+>", "", html.unescape(dom))
    assert "班级概览" in text and "进度报告：li" in text and "按章列出的评分项" in text
    assert "分数分布" in text and "第一次尝试" in text and "可能的错误：" in text  # chart labels too
    font = re.search(r"body \{ font-family: ([^;]+);", index.read_text("utf-8"))
    assert font and "Noto Sans CJK SC" in font.group(1)
    chars = sorted({ch for ch in text if ord(ch) > 0x7F and not ch.isspace()})
    assert len(chars) > 200  # the pages really are Chinese
    result = glyph_check([*chars, NO_GLYPH], font.group(1), tmp_path)
    assert result["missing"] == [NO_GLYPH], result  # the probe is caught; no report character is


@pytest.mark.slow
def test_glyph_check_catches_missing_glyphs(tmp_path: Path) -> None:
    """Characters of scripts no installed font covers (Tangut, Old Hungarian, Adlam) and unassigned
    code points are reported; Latin and Chinese (with a CJK font installed) are not."""
    _need_cjk_font()
    uncovered = ["\U00017000", "\U00010C80", "\U0001E900", "\u0379"]
    result = glyph_check(["A", "词", "元", *uncovered], "monospace", tmp_path)
    assert result["missing"] == uncovered, result
