"""Which installed libraries the fork server imports once for a run's workers (grader/checking/preload.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from grader.checking.preload import libraries_to_preload
from grader.runner.run import grade_submission
from grader.sandbox.child import PRELOADABLE

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def test_the_books_plotting_and_data_imports_are_preloaded(tmp_path: Path) -> None:
    folder = write(tmp_path / "s", {
        "ch05.py": "import torch\nimport matplotlib.pyplot as plt\nfrom matplotlib.ticker import MaxNLocator\n",
        "ch06.py": "def load():\n    import pandas as pd\n    return pd\n",
    })
    assert libraries_to_preload(folder) == ["matplotlib.pyplot", "pandas"]
    assert set(libraries_to_preload(folder)) <= PRELOADABLE


def test_nothing_to_preload_for_the_model_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """And only a file that names matplotlib or pandas is parsed (this runs before the fork server
    starts, in every grade): ch06.py's docstring says "no pandas"."""
    import grader.checking.preload as preload

    parsed: list[str] = []
    monkeypatch.setattr(preload, "_imported", lambda source, name: parsed.append(name) or set())
    assert libraries_to_preload(Path(__file__).resolve().parents[2] / "solutions") == []
    assert parsed == ["ch06.py"]


def test_a_students_own_module_of_that_name_is_never_replaced(tmp_path: Path) -> None:
    """The student's ``pandas.py`` (or ``matplotlib/``) still shadows the library in the worker."""
    folder = write(tmp_path / "s", {"ch06.py": "import pandas\nimport matplotlib\n", "pandas.py": "X = 1\n"})
    (folder / "matplotlib").mkdir()
    assert libraries_to_preload(folder) == []


def test_relative_and_unknown_imports_and_bad_files_are_ignored(tmp_path: Path) -> None:
    folder = write(tmp_path / "s", {
        "ch02.py": "from .matplotlib import x\nimport tqdm, numpy\nimport os.path\n",
        "ch03.py": "import matplotlib.pyplot as plt\ndef broken(:\n",  # a syntax error: not read
        "notes.txt": "import pandas\n",  # not Python
        "ch04.py": "(" * 10_000 + ")" * 10_000,  # too deep for the parser: not read, no crash
    })
    os.symlink(tmp_path / "elsewhere.py", folder / "ch05.py")  # a link is not followed
    (tmp_path / "elsewhere.py").write_text("import pandas\n", "utf-8")
    assert libraries_to_preload(folder) == []
    assert libraries_to_preload(tmp_path / "missing") == []


def test_parsing_is_capped_per_file_and_in_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.checking.preload as preload

    big = "import pandas\n" + "x = 1\n" * 50
    folder = write(tmp_path / "s", {"ch06.py": big, "ch07.py": "import matplotlib\n"})
    monkeypatch.setattr(preload, "MAX_FILE_BYTES", len(big) - 1)
    assert libraries_to_preload(folder) == ["matplotlib.pyplot"]  # ch06.py is over the per-file cap
    monkeypatch.setattr(preload, "MAX_FILE_BYTES", 10**6)
    monkeypatch.setattr(preload, "MAX_TOTAL_BYTES", len(big))
    assert libraries_to_preload(folder) == ["pandas"]  # ch06.py used the whole budget


@pytest.mark.slow
def test_a_students_own_pandas_is_what_their_chapter_imports_in_a_real_grade(tmp_path: Path) -> None:
    """Graded for real: the student's ``pandas.py`` (which refuses to load) is what ``ch06.py``'s
    ``import pandas`` finds, as without the preload. Had the fork server imported the installed
    pandas, ch06 would load and grade."""
    sub = tmp_path / "submission"
    shutil.copytree(SOLUTIONS, sub, ignore=shutil.ignore_patterns("__pycache__"))
    (sub / "pandas.py").write_text("raise ImportError('the student own pandas.py ran')\n", "utf-8")
    ch06 = sub / "ch06.py"
    future = "from __future__ import annotations\n"
    ch06.write_text(ch06.read_text("utf-8").replace(future, future + "import pandas  # noqa: F401\n", 1), "utf-8")

    run = grade_submission(sub, ["ch06.SpamDataset", "ch02.SimpleTokenizerV1"])
    status = {item.id: item.status for item in run.items}
    assert status == {"ch06.SpamDataset": "error", "ch02.SimpleTokenizerV1": "passed"}
    (error,) = run.load_errors
    assert error.module == "ch06" and "the student own pandas.py ran" in error.message
