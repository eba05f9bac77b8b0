"""The CLI's help and language option in the message catalog's languages.

Click reads help texts when the commands are defined, before the command line says which language to
use. So commands and options here take their help from the catalog when it is shown: a command's
from ``help.<command>``, an option's from ``help.<command>.<option>`` or the shared
``help.option.<option>`` (``help.main`` and ``help.main.<option>`` for the group itself), and the headings from ``help.usage``, ``help.options``
and ``help.commands``. Click's own sentences (parser errors, ``Error:``, ``Try ... for help.``) come
from ``click.*`` in the catalog (:func:`localize_click`). ``--lang`` is read before anything else (``LocalizedGroup.main``), wherever it
stands on the command line, so ``llmgrade grade --help --lang zh-CN`` is Chinese too. Without
``--lang`` and ``LLMGRADE_LANG``, a command run in a workspace (or on ``--submission`` in one) speaks
the language the workspace was made in (``llmgrade init --lang zh-CN``), before the system locale.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from grader.messages import DEFAULT_LANG, _load, available_langs, has, normalize_lang, set_lang, t, template
from grader.textwidth import char_width, wrap_columns


def _help_key(ctx: click.Context) -> str:
    return "help." + (ctx.command.name if ctx.parent is not None and ctx.command.name else "main")


def option_help(command_key: str, name: str, default: str | None) -> str | None:
    """``help.<command>.<option>``, else the shared ``help.option.<option>``, else ``default``."""
    for key in (f"{command_key}.{name}", f"help.option.{name}"):
        if has(key):
            return t(key)
    return default


class _Localized(click.Command):
    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The catalog's help, then the docstring's example command lines (they need no translation)."""
        examples = (self.callback.__doc__ or "").partition("Example:")[2] if self.callback else ""
        lines = [line.strip() for line in examples.splitlines() if line.strip()]
        self.help = _prewrapped(t(_help_key(ctx)), formatter.width - formatter.current_indent - 2)
        if lines:
            self.help += "\n\n\b\n" + t("help.example") + "\n" + "\n".join("  " + line for line in lines)
        super().format_help_text(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        """The first sentence of the help (click's own cut counts characters, not display width)."""
        return re.split(r"(?<=[。])|(?<=\.)\s", t(f"help.{self.name}"), maxsplit=1)[0].strip()

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        prefix = t("help.usage")
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)),
                              prefix=prefix if not prefix.isascii() else prefix + " ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.get_params(ctx):
            if isinstance(param, click.Option) and param.name:
                param.help = option_help(_help_key(ctx), param.name, param.help)
        required = f"[{t('help.required')}]"
        rows = [(rv[0], rv[1].replace("[required]", required)) for param in self.get_params(ctx)
                if not isinstance(param, click.Argument) and (rv := param.get_help_record(ctx))]
        if rows:
            _section(formatter, t("help.options"), rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Click's "Missing argument 'ITEM'." and "No such option ... Did you mean ...?" as sentences of
        the catalog (click joins their parts itself, with English spacing)."""
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if not exc.possibilities:
                raise
            shown = ", ".join(repr(p) for p in sorted(exc.possibilities))
            suggestion = _click_ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)",
                                         len(exc.possibilities)).format(possibility=shown, possibilities=shown)
            raise click.UsageError(t("click.with_suggestion", message=exc.message, suggestion=suggestion),
                                   ctx=ctx) from None
        except click.MissingParameter as exc:
            if exc.param is None:
                raise
            kind = exc.param.param_type_name if exc.param.param_type_name in ("argument", "option") else "parameter"
            raise click.UsageError(t(f"click.missing_{kind}", name=exc.param.get_error_hint(ctx)), ctx=ctx) from None

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = t("help.help_option")
        return option


class LocalizedCommand(_Localized):
    """A command whose help, usage line and headings are in the current language."""


class LocalizedGroup(_Localized, click.Group):
    """The ``llmgrade`` group: its commands are localized, and ``--lang`` is applied first."""

    command_class = LocalizedCommand

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(formatter.width - 6 - len(name)))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            _section(formatter, t("help.commands"), rows)

    def main(self, args: Sequence[str] | None = None, *extra: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        wanted = lang_from_argv(argv)
        if wanted is not None and normalize_lang(wanted) is not None:
            set_lang(wanted)  # a bad value is reported by the option's own check, in English
        elif wanted is None:  # the workspace's own language, unless LLMGRADE_LANG says otherwise
            from grader.authoring.workspace import use_workspace_lang

            submission = option_from_argv(argv, "--submission")
            use_workspace_lang(Path(submission) if submission else Path.cwd())
        localize_click()
        return super().main(argv, *extra, **kwargs)


def _prewrapped(text: str, columns: int) -> str:
    """Text with Chinese in it wrapped by display columns and marked (``\\b``) so that click, which
    breaks lines only at spaces, keeps the lines; other text is left to click."""
    if not any(char_width(c) == 2 for c in text):
        return text
    return "\b\n" + "\n".join(wrap_columns(text, columns, hang=False))


def _section(formatter: click.HelpFormatter, heading: str, rows: list[tuple[str, str]]) -> None:
    """Click's ``formatter.section`` with the heading's colon from the catalog ("Options:", "选项："),
    and the second column wrapped by display columns when it holds Chinese."""
    formatter.write_paragraph()
    formatter.write(f"{'':>{formatter.current_indent}}{heading}\n")
    with formatter.indentation():
        if not any(char_width(c) == 2 for _, text in rows for c in text):
            formatter.write_dl(rows)
            return
        first = min(max(len(name) for name, _ in rows), 30)
        indent = " " * (formatter.current_indent + first + 2)
        columns = max(20, formatter.width - len(indent))
        for name, text in rows:
            lines = wrap_columns(text, columns, hang=False) if text else [""]
            if len(name) > first:
                formatter.write(f"{'':>{formatter.current_indent}}{name}\n")
                head = indent
            else:
                head = f"{'':>{formatter.current_indent}}{name:<{first}}  "
            formatter.write(f"{head}{lines[0]}".rstrip() + "\n")
            for line in lines[1:]:
                formatter.write(f"{indent}{line}\n")


def lang_from_argv(argv: Sequence[str]) -> str | None:
    """The value of the last ``--lang X`` / ``--lang=X`` before a ``--``, or None."""
    return option_from_argv(argv, "--lang")


def option_from_argv(argv: Sequence[str], option: str) -> str | None:
    """The value of the last ``OPTION X`` / ``OPTION=X`` before a ``--``, or None."""
    found: str | None = None
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == option and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith(option + "="):
            found = arg.split("=", 1)[1]
    return found


def _apply_lang(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None or ctx.resilient_parsing:
        return value
    try:
        return set_lang(value)
    except ValueError:
        raise click.BadParameter(t("cli.bad_lang", lang=value, langs=", ".join(available_langs()))) from None


def lang_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--lang``: the language of everything this command prints and writes (not a parameter)."""
    return click.option("--lang", default=None, expose_value=False, is_eager=True,
                         callback=_apply_lang, metavar="LANG")(fn)


@functools.cache
def _click_ids() -> dict[str, str]:
    """Click's English sentences (its gettext message ids) -> our catalog ids."""
    english = _load(DEFAULT_LANG)
    return {"Usage:": "help.usage", **{text: key for key, text in english.items() if key.startswith("click.")}}


def _click_gettext(message: str) -> str:
    key = _click_ids().get(message)
    return template(key) if key is not None else message


def _click_ngettext(singular: str, plural: str, count: int) -> str:
    return _click_gettext(singular if count == 1 else plural)


def localize_click() -> None:
    """Point click's translation look-ups (``gettext``/``ngettext``, bound in each of its modules at
    import) at the message catalog, so its parser errors are in the current language. Sentences the
    catalog lacks stay click's English."""
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.parser
    import click.types

    for module in (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.types):
        if hasattr(module, "_"):
            setattr(module, "_", _click_gettext)
        if hasattr(module, "ngettext"):
            setattr(module, "ngettext", _click_ngettext)
