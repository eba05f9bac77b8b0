"""Errors that the CLI reports as one translated sentence (exit code 2), never as a traceback."""

from __future__ import annotations

from typing import Any

from .messages import t


class SetupError(Exception):
    """Bad input or setup: a missing folder, a corrupt file, a malformed solution.

    Carries a message id and its parameters; ``str(error)`` is the sentence in the current language.
    """

    def __init__(self, message_id: str, /, **params: Any) -> None:
        super().__init__(message_id, params)
        self.message_id = message_id
        self.params = params

    def __str__(self) -> str:
        return t(self.message_id, **self.params)


def unknown_item(selector: str) -> SetupError:
    """The error for an id or chapter that is not in the catalog, with a "did you mean" when one is close."""
    from .catalog import suggest

    guess = suggest(selector)
    if guess is None:
        return SetupError("cli.unknown_item", selector=selector)
    return SetupError("feedback.unknown_item_did_you_mean", selector=selector, suggestion=guess)
