"""Geometry of the reports' inline SVG charts (the templates draw them; no script, no network).

Both charts plot percentages (0-100) so runs graded on different item sets stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: float


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    bottom: int
    points: list[Point]
    y_ticks: list[Tick]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def right(self) -> int:
        return self.width - 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Histogram:
    width: int
    height: int
    left: int
    top: int
    bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]


def percent(score: float, max_score: float) -> float:
    return round(100.0 * score / max_score, 1) if max_score > 0 else 0.0


def _y_ticks(top: int, bottom: int, maximum: float, steps: int, fmt: str) -> list[Tick]:
    span = bottom - top
    return [Tick(bottom - span * i / steps, fmt.format(maximum * i / steps))
            for i in range(steps + 1)]


def line_chart(history: list[tuple[str, float, float]], width: int = 640,
               height: int = 220) -> LineChart:
    """Score (as a percentage) of each attempt, oldest left; ``history`` rows are (time, score, max)."""
    left, top, bottom, right = 44, 12, height - 28, width - 10
    n = len(history)
    points = []
    for i, (when, score, max_score) in enumerate(history):
        value = percent(score, max_score)
        x = left + (right - left) * (i / (n - 1) if n > 1 else 0.5)
        y = bottom - (bottom - top) * value / 100.0
        points.append(Point(x, y, f"{when}: {score:g} / {max_score:g}", value))
    return LineChart(width, height, left, top, bottom, points,
                     _y_ticks(top, bottom, 100.0, 4, "{:.0f}%"))


def histogram(percentages: list[float], bins: int = 10, width: int = 640,
              height: int = 220) -> Histogram:
    """How many students scored 0-10%, 10-20%, ... (100% falls in the last bin)."""
    left, top, bottom, right = 44, 12, height - 28, width - 10
    counts = [0] * bins
    for value in percentages:
        counts[min(bins - 1, max(0, int(value * bins // 100)))] += 1
    tallest = max(counts, default=0) or 1
    step = -(-tallest // 5)  # a whole number of students per grid line, at most 5 lines
    tallest = step * -(-tallest // step)
    steps = tallest // step
    slot = (right - left) / bins
    bars = []
    for i, count in enumerate(counts):
        h = (bottom - top) * count / tallest
        low, high = 100 * i // bins, 100 * (i + 1) // bins
        bars.append(Bar(left + i * slot + 2, bottom - h, slot - 4, h, count, f"{low}-{high}%"))
    return Histogram(width, height, left, top, bottom, bars,
                     _y_ticks(top, bottom, float(tallest), steps, "{:.0f}"))
