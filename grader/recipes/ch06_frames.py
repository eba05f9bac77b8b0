"""Chapter 6 data recipes in either form: the book passes a pandas DataFrame to
``create_balanced_dataset`` and ``random_split`` (``df["Label"]``, ``df.sample(..., random_state=123)``),
the exercise a list of dicts. The rows go in as plain data and come back as lists of dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.recipes import Impl, recipe

COLUMNS = ["Label", "Text"]


def _frame(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as a pandas DataFrame, or ``None`` where pandas is not installed."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas.DataFrame([dict(r) for r in rows], columns=COLUMNS)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")


def records(value: Any) -> Any:
    """A DataFrame (or a tuple/list of them) as lists of row dicts; ``None`` for anything else."""
    if _is_frame(value):
        return [{str(k): v for k, v in row.items()} for row in value.to_dict("records")]
    if isinstance(value, (tuple, list)) and value and all(_is_frame(v) for v in value):
        return [records(v) for v in value]
    return None


def _error(exc: Exception) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc)}


@recipe("ch06.rows_call")
def rows_call(impl: Impl, name: str, rows: list[dict[str, Any]], args: Sequence[Any] = (),
              kwargs: dict[str, Any] | None = None, form: str = "auto") -> dict[str, Any]:
    """Call ``ch06.<name>(rows, *args, **kwargs)`` with ``rows`` in ``form``.

    ``form="auto"`` tries the book's DataFrame first and keeps it when a DataFrame (or a tuple of
    them) comes back, otherwise calls with the list. Returns ``form``, ``value`` (rows as dicts) or
    ``error``/``message``, and ``rows_after`` (the input after the call, to see in-place shuffles).
    """
    fn = impl.attr("ch06", name)
    kwargs = kwargs or {}
    frame_error: dict[str, Any] | None = None
    if form in ("auto", "dataframe"):
        frame = _frame(rows)
        if frame is not None:
            try:
                value = fn(frame, *args, **kwargs)
            except NotImplementedError:
                raise
            except Exception as exc:  # noqa: BLE001 - maybe the exercise's list form: tried next
                frame_error = _error(exc)
            else:
                converted = records(value)
                if converted is not None or form == "dataframe":
                    out = {"form": "dataframe", "rows_after": records(frame)}
                    return {**out, "value": converted} if converted is not None else \
                        {**out, "value": None, "returned": type(value).__name__}
            if form == "dataframe" and frame_error is not None:
                return {"form": "dataframe", "rows_after": records(frame), **frame_error}
    own = [dict(r) for r in rows]
    try:
        value = fn(own, *args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exception type is what is graded
        result = {"form": "list", "rows_after": own, **_error(exc)}
        if frame_error is not None:
            result["frame_error"] = frame_error
        return result
    return {"form": "list", "value": value, "rows_after": own}
