"""Checks for what the book keeps outside the item it grades.

The book defines ``GPT_CONFIG_124M`` and ``model_configs`` in notebook cells, not next to the class
or function that uses them; the author's package modules do not define them. An item grades the
thing it names, so such a constant gets its own check, marked ``extension`` by the suites: shown,
never counted (see ``Item.helpers`` in the catalog).
"""

from __future__ import annotations

from typing import Any

from grader.checking.compare import expect_equal
from grader.checking.failures import GradeFailure


def expect_constant(student: Any, ref: Any, module: str, name: str, item: str) -> None:
    """The student's ``module.name`` exists and equals the reference's."""
    got = student.run("module.constant", module=module, name=name, what=name)
    if not got.get("defined"):
        raise GradeFailure("book.constant_missing", file=f"{module}.py", name=name, item=item)
    expected = ref.run("module.constant", module=module, name=name)
    expect_equal(got.get("value"), expected["value"], name)


# ---- chapter 6: the book's pandas forms of create_balanced_dataset and random_split ----------
# What the printed listings compute (BOOK_FACTS): the expected values for a submission that takes
# a DataFrame as the book does. ``rows`` are plain dicts with "Label" and "Text".


def book_balanced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ham sampled with ``DataFrame.sample(num_spam, random_state=123)``, then every spam row."""
    import pandas

    df = pandas.DataFrame(rows, columns=["Label", "Text"])
    spam = df[df["Label"] == "spam"]
    ham = df[df["Label"] == "ham"].sample(spam.shape[0], random_state=123)
    return [dict(r) for r in pandas.concat([ham, spam]).to_dict("records")]


def book_split(rows: list[dict[str, Any]], train_frac: float,
               validation_frac: float) -> list[list[dict[str, Any]]]:
    """``df.sample(frac=1, random_state=123)``, then cut like the book."""
    import pandas

    df = pandas.DataFrame(rows, columns=["Label", "Text"]).sample(frac=1, random_state=123)
    shuffled = [dict(r) for r in df.to_dict("records")]
    train_end = int(len(shuffled) * train_frac)
    validation_end = train_end + int(len(shuffled) * validation_frac)
    return [shuffled[:train_end], shuffled[train_end:validation_end], shuffled[validation_end:]]
