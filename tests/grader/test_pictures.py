"""Pictures in the report: the worker returns the data (plain tensors), the trusted side draws it.

A real grading run of the "causal mask missing" variant: its attention heatmap marks exactly the
cells the reference masks (the upper triangle); the output's |difference| map and the loss curve are
drawn from the check's details as inline SVG, with no scripts.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from grader.checking.pictures import diff_map, loss_curve
from grader.results import CheckResult, ItemResult
from grader.runner.run import grade_submission
from reports.pictures import attention_heatmaps, loss_chart, pictures_for
from reports.render import render_student_report
from tests.grader.variants.ch03 import VARIANTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mask_missing(tmp_path_factory: pytest.TempPathFactory) -> ItemResult:
    variant = next(v for v in VARIANTS if v.id == "causal-mask-missing")
    work = tmp_path_factory.mktemp("pic") / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    source = (work / "ch03.py").read_text("utf-8")
    assert variant.find in source
    (work / "ch03.py").write_text(source.replace(variant.find, variant.replace, 1), "utf-8")
    run = grade_submission(work, [variant.item])
    return next(item for item in run.items if item.id == variant.item)


def test_the_heatmap_of_a_missing_mask_marks_exactly_the_masked_cells(mask_missing: ItemResult) -> None:
    assert mask_missing.status == "failed"
    pictures = pictures_for(mask_missing)
    assert pictures.attention is not None, [c.details.keys() for c in mask_missing.checks]
    yours, reference = pictures.attention
    n = yours.rows
    assert n >= 3 and yours.cols == n
    upper = {(i, j) for i in range(n) for j in range(n) if j > i}
    assert yours.marked("mask") == upper
    assert reference.marked("mask") == set() and reference.marked("value") == set()
    # the rows other than the last see more tokens, so their visible weights differ too
    assert yours.marked("value") and all(j <= i for i, j in yours.marked("value"))


def test_the_report_draws_the_pictures_as_inline_svg(mask_missing: ItemResult) -> None:
    from tests.grader.fake_runs import fake_run

    run = fake_run(seed=0, statuses={mask_missing.id: "failed"})
    run.items = [mask_missing if item.id == mask_missing.id else item for item in run.items]
    html = render_student_report(run, [])
    detail = html.split(f'id="detail-{mask_missing.id}"')[1].split('<section')[0]
    assert detail.count('class="heatmap"') == 3  # yours, the reference's, |difference|
    n = pictures_for(mask_missing).attention[0].rows  # type: ignore[index]
    assert detail.count('class="cell mask-diff"') == n * (n - 1) // 2
    assert "<script" not in html.lower()


def test_diff_map_is_per_token_and_feature_and_pooled() -> None:
    import torch

    expected = torch.zeros(2, 40, 100, dtype=torch.float64)
    got = expected.clone()
    got[1, 7, 3] = 0.5  # one token, one feature, second sequence
    data = diff_map(got, expected, token_dim=1)
    assert data is not None and (data["tokens"], data["features"]) == (40, 100)
    cells = data["cells"]
    assert len(cells) == 24 and len(cells[0]) == 32
    hot = [(i, j) for i, row in enumerate(cells) for j, v in enumerate(row) if v > 0]
    assert len(hot) == 1 and cells[hot[0][0]][hot[0][1]] == 0.5 and data["max"] == 0.5
    assert diff_map(got, expected, token_dim=None) is None
    assert diff_map(got[0, 0], expected[0, 0], token_dim=0) is None  # one dimension: no map


def test_loss_curve_from_a_training_check() -> None:
    data = loss_curve([3.0, 2.5, 2.0], [3.0, 2.0, 1.5])
    assert data == {"student": [3.0, 2.5, 2.0], "reference": [3.0, 2.0, 1.5]}
    assert loss_curve(["x"], [1.0]) is None and loss_curve([], [1.0]) is None
    chart = loss_chart(data)
    assert chart is not None and [c.label for c in chart.curves] == ["reference", "student"]
    item = ItemResult("ch05.train_model_simple", "ch05", "t", "component", 0.0, 4.0, "failed",
                      checks=[CheckResult("losses", "failed", message="m", details={"loss_curve": data})])
    html = render_student_report(_run_with(item), [])
    assert 'class="curve student"' in html and 'class="curve reference"' in html


def test_bad_picture_data_is_ignored() -> None:
    assert attention_heatmaps({"student": [[1.0]], "reference": [[1.0, 2.0]]}) is None
    assert attention_heatmaps({"student": "<script>", "reference": []}) is None
    assert loss_chart({"student": [float("nan")], "reference": [float("nan")]}) is None


def _run_with(item: ItemResult):  # type: ignore[no-untyped-def]
    from tests.grader.fake_runs import fake_run

    run = fake_run(seed=0)
    run.items = [item if i.id == item.id else i for i in run.items]
    return run


@pytest.mark.slow
def test_a_training_mistake_brings_back_both_loss_curves(tmp_path: Path) -> None:
    from tests.grader.variants.ch05 import VARIANTS as CH05

    variant = next(v for v in CH05 if v.id == "train-no-zero-grad")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    source = (work / "ch05.py").read_text("utf-8")
    (work / "ch05.py").write_text(source.replace(variant.find, variant.replace, 1), "utf-8")
    run = grade_submission(work, [variant.item])
    item = run.items[0]
    assert item.status == "failed"
    curves = [c.details["loss_curve"] for c in item.checks if "loss_curve" in c.details]
    assert curves, [c.name for c in item.checks]
    assert len(curves[0]["student"]) == len(curves[0]["reference"]) >= 2
    assert curves[0]["student"] != curves[0]["reference"]
    assert pictures_for(item).losses is not None


def test_a_small_attention_map_is_large_enough_to_read_and_numbers_its_tokens(mask_missing: ItemResult) -> None:
    """Issue 22, finding 11: the attention maps were 72 px wide, with no token positions."""
    from tests.grader.fake_runs import fake_run

    yours, _ = pictures_for(mask_missing).attention  # type: ignore[misc]
    assert yours.rows <= 8 and yours.width + yours.margin >= 160 and yours.cell <= 30  # was 5 x 14 px
    run = fake_run(seed=0, statuses={mask_missing.id: "failed"})
    run.items = [mask_missing if item.id == mask_missing.id else item for item in run.items]
    html = render_student_report(run, [])
    svg = html.split(f'id="detail-{mask_missing.id}"')[1].split('class="heatmap"')[1].split("</svg>")[0]
    numbers = re.findall(r'<g class="numbers".*?</g>', svg, re.S)[0]
    shown = [int(n) for n in re.findall(r">(\d+)</text>", numbers)]
    assert sorted(shown) == sorted(list(range(yours.rows)) + list(range(yours.cols)))  # rows and columns
