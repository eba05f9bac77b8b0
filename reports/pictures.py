"""Geometry of the report's pictures (inline SVG, no scripts) from a failed check's ``details``.

``grader.checking.pictures`` puts small lists of numbers there; this module turns them into cells,
colours and polylines that ``templates/pictures.html.j2`` draws. Everything is numbers: nothing from
the student's code reaches the page as markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from grader.results import ItemResult

CELL = 14
MIN_SIDE = 168.0  # px: the side a small heatmap grows to
MAX_CELL = 30.0
LABEL_MARGIN = 22.0
ZERO = 1e-12  # a weight this small is a masked (zero) weight


@dataclass
class Cell:
    row: int
    col: int
    x: float
    y: float
    fill: str
    value: float
    mark: str = ""  # "mask" (zero on one side only), "value" (differs), or ""


@dataclass
class Heatmap:
    rows: int
    cols: int
    cells: list[Cell]
    width: float
    height: float
    cell: float = CELL
    margin: float = 0.0  # room above and left of the cells for the row and column numbers
    step: int = 1  # every step-th row and column is numbered

    @property
    def row_labels(self) -> list[tuple[int, float]]:
        """(number, y of its middle) of the numbered rows; the columns use the same positions."""
        return [(i, i * self.cell + self.cell / 2) for i in range(0, max(self.rows, self.cols), self.step)]

    def marked(self, kind: str) -> set[tuple[int, int]]:
        return {(c.row, c.col) for c in self.cells if c.mark == kind}


@dataclass
class Curve:
    points: str
    label: str
    colour: str


@dataclass
class LossChart:
    width: int
    height: int
    curves: list[Curve]
    top: float
    bottom: float
    low: float
    high: float
    steps: int


@dataclass
class Pictures:
    attention: tuple[Heatmap, Heatmap] | None = None
    diff: Heatmap | None = None
    diff_max: float = 0.0
    diff_shape: tuple[int, int] = (0, 0)
    losses: LossChart | None = None
    kinds: list[str] = field(default_factory=list)


def _blend(share: float, rgb: tuple[int, int, int]) -> str:
    share = 0.0 if math.isnan(share) else min(1.0, max(0.0, share))
    r, g, b = (round(255 + (c - 255) * share) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _matrix(value: Any) -> list[list[float]] | None:
    if not isinstance(value, list) or not value or not all(isinstance(r, list) and r for r in value):
        return None
    width = len(value[0])
    if any(len(r) != width for r in value):
        return None
    try:
        return [[float(v) for v in row] for row in value]
    except (TypeError, ValueError):
        return None


def _heatmap(matrix: list[list[float]], top: float, rgb: tuple[int, int, int],
             marks: dict[tuple[int, int], str] | None = None) -> Heatmap:
    """Cells of at least ``CELL`` px, larger for a small matrix (a 6-token attention map is some
    170 px, not 84), numbered along the top and left (every fifth when the cells are small)."""
    rows, cols = len(matrix), len(matrix[0])
    cell = round(min(MAX_CELL, max(CELL, MIN_SIDE / max(rows, cols))), 1)
    cells = [Cell(i, j, j * cell, i * cell, _blend(v / top if top > 0 else 0.0, rgb), v,
                  (marks or {}).get((i, j), ""))
             for i, row in enumerate(matrix) for j, v in enumerate(row)]
    step = 1 if cell >= 12 and max(rows, cols) <= 24 else 5
    return Heatmap(rows, cols, cells, cols * cell, rows * cell, cell, LABEL_MARGIN, step)


def attention_heatmaps(data: Any, tolerance: float = 1e-6) -> tuple[Heatmap, Heatmap] | None:
    """The student's and the reference's attention weights; on the student's map a cell is marked
    ``mask`` where exactly one side is zero (a mask in the wrong place) and ``value`` where both are
    non-zero but differ."""
    if not isinstance(data, dict):
        return None
    student, reference = _matrix(data.get("student")), _matrix(data.get("reference"))
    if student is None or reference is None or len(student) != len(reference) \
            or len(student[0]) != len(reference[0]):
        return None
    marks: dict[tuple[int, int], str] = {}
    for i, (srow, rrow) in enumerate(zip(student, reference)):
        for j, (s, r) in enumerate(zip(srow, rrow)):
            if (abs(s) <= ZERO) != (abs(r) <= ZERO):
                marks[(i, j)] = "mask"
            elif abs(s - r) > tolerance + tolerance * abs(r):
                marks[(i, j)] = "value"
    blue = (9, 105, 218)
    return _heatmap(student, 1.0, blue, marks), _heatmap(reference, 1.0, blue)


def loss_chart(data: Any, width: int = 420, height: int = 180) -> LossChart | None:
    if not isinstance(data, dict):
        return None
    series = []
    for key in ("student", "reference"):
        values = data.get(key)
        if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
            return None
        series.append([float(v) for v in values])
    finite = [v for s in series for v in s if math.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    left, right, top, bottom = 44.0, width - 10.0, 10.0, height - 24.0
    steps = max(len(s) for s in series)
    curves = []
    for values, label, colour in ((series[1], "reference", "#59636e"), (series[0], "student", "#cf222e")):
        points = []
        for i, v in enumerate(values):
            if not math.isfinite(v):
                continue
            x = left + (right - left) * (i / (steps - 1) if steps > 1 else 0.5)
            y = bottom - (bottom - top) * (v - low) / (high - low)
            points.append(f"{x:.1f},{y:.1f}")
        curves.append(Curve(" ".join(points), label, colour))
    return LossChart(width, height, curves, top, bottom, low, high, steps)


def pictures_for(item: ItemResult) -> Pictures:
    """The first picture of each kind among the item's failed checks."""
    found = Pictures()
    for check in item.checks:
        if check.status != "failed":
            continue
        details = check.details
        if found.attention is None and "attention" in details:
            found.attention = attention_heatmaps(details["attention"])
        if found.diff is None and isinstance(details.get("diff_map"), dict):
            data = details["diff_map"]
            matrix = _matrix(data.get("cells"))
            top = max((v for row in matrix or [] for v in row if math.isfinite(v)), default=0.0)
            if matrix is not None:
                found.diff = _heatmap(matrix, top, (207, 34, 46))
                found.diff_max = float(data.get("max") or top)
                found.diff_shape = (int(data.get("tokens") or len(matrix)), int(data.get("features") or len(matrix[0])))
        if found.losses is None and "loss_curve" in details:
            found.losses = loss_chart(details["loss_curve"])
    found.kinds = [k for k, v in (("attention", found.attention), ("diff", found.diff), ("losses", found.losses))
                   if v is not None]
    return found
