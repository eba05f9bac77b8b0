"""Terminal columns with wide characters: measuring, padding, and the tables that use them."""

from __future__ import annotations

import re

import pytest

from grader.authoring.listing import format_catalog
from grader.runner.summary import format_table, wrap
from grader.textwidth import ljust, rjust, width, wrap_columns

from .fake_runs import fake_run

LONG_ZH = ("可能的错误：没有应用因果掩码，词元因此能关注到它之后的词元。因果掩码是否在softmax之前应用了？"
           "请检查torch.triu(..., diagonal=1)的用法，以及masked_fill_的参数。")
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_width_counts_wide_characters_twice() -> None:
    assert width("abc") == 3
    assert width("词元") == 4
    assert width("词元ID，") == 8
    assert width("e\u0301") == 1  # a combining accent takes no column
    assert width(ljust("通过", 12)) == 12 and width(ljust("passed", 12)) == 12
    assert rjust("分值", 7) == "   分值"
    assert ljust("very long text", 4) == "very long text"


@pytest.mark.parametrize("columns", [20, 37, 60])
def test_long_chinese_sentences_wrap_by_columns_and_keep_every_character(columns: int) -> None:
    lines = wrap(LONG_ZH, columns)
    assert len(lines) > 1
    assert "".join(lines).replace(" ", "") == LONG_ZH.replace(" ", "")
    # A line is at most ``columns`` wide, unless closing punctuation hangs past the end (2 columns):
    # Chinese typography never starts a line with "，" or "。".
    assert all(width(line) <= columns or (width(line) <= columns + 2 and line[-1] in "，。？）")
               for line in lines)
    assert not any(line[:1] in "，。？）" for line in lines)


def column_starts(lines: list[str]) -> set[int]:
    """The display column where each line's first Chinese character stands."""
    return {width(line[:CJK.search(line).start()]) for line in lines if CJK.search(line)}  # type: ignore[union-attr]


def test_table_status_column_aligns_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    run = fake_run(statuses={"ch03.CausalAttention": "passed", "ch03.MultiHeadAttention": "failed",
                             "ch03.SelfAttention_v1": "error"})
    text = format_table(run, width=100)
    rows = [line for line in text.splitlines() if line.startswith("  ch03.")]
    assert len(rows) >= 3
    assert len(column_starts(rows)) == 1, rows
    assert "ch03（编码注意力机制）" in text
    assert all(width(line) <= 100 for line in text.splitlines())


def test_catalog_listing_aligns_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_LANG", "zh-CN")
    lines = format_catalog(("ch03",)).splitlines()
    header, rows = lines[0], [line for line in lines if line.startswith("  ch03.") or line.startswith("  3.")]
    kinds = {width(row[:row.index(kind)]) for row in rows for kind in ("组件", "练习题") if kind in row}
    assert kinds == {width(header[:header.index("类型")])}
    points = {width(row[:row.index("分") + 1]) for row in rows}
    assert points == {width(header[:header.index("分值") + 2])}  # right edges of the points column


def test_translated_docstrings_wrap_like_the_english_ones() -> None:
    from pathlib import Path

    from grader.authoring.stubs import make_stub

    root = Path(__file__).resolve().parents[2]
    stub = make_stub((root / "solutions" / "ch03.py").read_text("utf-8"), "ch03", lang="zh-CN")
    docstring_lines = [line for line in stub.splitlines() if CJK.search(line)  # header comment too
                       and "raise NotImplementedError" not in line]
    assert max(width(line) for line in docstring_lines) <= 99 + 2
    assert "    - 先``.view(b, num_tokens, num_heads, head_dim)``再``.transpose(1, 2)``，就把头放到了" in stub
    assert wrap_columns("词元词元，", 8) == ["词元词元，"]  # the comma hangs instead of starting a line


def test_terminal_lines_never_pass_the_edge_and_punctuation_keeps_its_place() -> None:
    text = "输出和写入内容使用的语言：en或zh-CN（默认依次取LLMGRADE_LANG、系统区域设置，最后为英语）。"
    for columns in range(16, 60):
        lines = wrap_columns(text, columns, hang=False)
        assert "".join(lines) == text  # nothing lost, nothing added
        assert all(width(line) <= columns for line in lines), (columns, lines)
        assert not any(line[0] in "，。、）" for line in lines[1:]), (columns, lines)
        assert not any(line[-1] == "（" for line in lines), (columns, lines)
    # two closing marks in a row take the character before them down with both
    assert wrap_columns("词元词元）。", 8, hang=False) == ["词元词", "元）。"]
