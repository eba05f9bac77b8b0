"""The answer-key tripwire does not mistake a library's own look-ups for the student's use of the key.

``inspect.getmodule`` reads ``__class__`` and ``__file__`` of every loaded module, reference modules
included; torch calls it while the student's code is on the stack when it registers lazily imported
operators (the first model built on the meta device, the first ``torch.optim`` step). Graded alone,
in a fresh worker, the model answers of those items must pass (tests/redteam/test_key_watch.py:
any other read of a reference module is still refused).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.runner.run import grade_submission

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_items_graded_alone_are_not_taken_for_the_answer_key() -> None:
    # GPTModel builds the book-size model on the meta device; 5.4 runs the student's AdamW loop.
    for item in ("ch04.GPTModel", "5.4"):
        (graded,) = grade_submission(SOLUTIONS, [item]).items
        summary = [(c.name, c.status, c.message[:200]) for c in graded.checks if c.status != "passed"]
        assert (graded.status, graded.points) == ("passed", graded.max_points), (item, summary)



HONEST = '''

# What honest students write around their answers: error handling that prints tracebacks, logging,
# plots, data frames, progress bars, memory checks. None of it is a use of the answer key.
import copy as _copy
import dataclasses as _dataclasses
import enum as _enum
import gc as _gc
import inspect as _inspect
import logging as _logging
import platform as _platform
import traceback as _traceback
import warnings as _warnings
from collections import namedtuple as _namedtuple

import matplotlib.pyplot as _plt
import pandas as _pd
import psutil as _psutil
from tqdm import tqdm as _tqdm

_Point = _namedtuple("_Point", "x y")


@_dataclasses.dataclass
class _Config:
    vocab_size: int = 50257


class _Split(_enum.Enum):
    TRAIN = "train"


def _honest_extras():
    try:
        raise ValueError("a mistake I catch and print")
    except ValueError:
        _traceback.print_exc()
        _logging.getLogger("student").exception("while testing")
        text = _traceback.format_exc()
    _warnings.warn("just a warning")
    _gc.collect()
    fig, ax = _plt.subplots()
    ax.plot([0, 1], [1, 0])
    _plt.close(fig)
    frame = _pd.DataFrame({"Label": ["spam", "ham", "ham"]})
    counts = frame["Label"].value_counts()
    for _ in _tqdm(range(3), disable=True):
        pass
    rss = _psutil.Process().memory_info().rss
    return (text, str(_inspect.signature(_honest_extras)), _Point(1, 2), _Config(), _Split.TRAIN,
            int(counts["ham"]), rss > 0, _platform.system(), _copy.deepcopy([1, 2]))


_honest_extras()


def create_dataloader_v1(*args, **kwargs):
    _honest_extras()  # also while a check runs
    return _create_dataloader_v1(*args, **kwargs)
'''


def test_honest_code_around_the_answers_is_not_taken_for_the_answer_key(tmp_path: Path) -> None:
    """Printing a caught exception's traceback, logging, plotting, pandas, tqdm and psutil, at import
    and inside a graded call, cost nothing."""
    work = tmp_path / "work"
    shutil.copytree(SOLUTIONS, work, ignore=shutil.ignore_patterns("__pycache__"))
    source = (work / "ch02.py").read_text("utf-8")
    assert "def create_dataloader_v1(" in source
    source = source.replace("def create_dataloader_v1(", "def _create_dataloader_v1(")
    (work / "ch02.py").write_text(source + HONEST, "utf-8")
    run = grade_submission(work, ["ch02"])
    summary = [(i.id, i.status, [c.message[:200] for c in i.checks if c.status != "passed"]) for i in run.items]
    assert run.load_errors == [], run.load_errors
    assert all(i.status == "passed" and i.points == i.max_points for i in run.items), summary
