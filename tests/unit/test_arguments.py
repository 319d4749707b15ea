"""Help that teaches: every command has a summary and a description, every option and
argument has help, and an option with a default says what it is."""

from __future__ import annotations

import argparse

from stream_app.arguments import parser
from stream_app.cli import COMMANDS


def commands() -> tuple[argparse._SubParsersAction, dict[str, str | None]]:  # type: ignore[type-arg]
    top = parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return sub, {c.dest: c.help for c in sub._choices_actions}


def test_every_command_has_help_a_description_and_something_to_run() -> None:
    sub, summaries = commands()
    assert set(sub.choices) == set(COMMANDS)
    for name, command in sub.choices.items():
        assert summaries.get(name), f"{name}: no summary in stream-app --help"
        assert command.description, f"{name}: no description in its --help"


def test_every_option_has_help_naming_its_default() -> None:
    sub, _ = commands()
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"stream-app {name} {action.option_strings or action.dest}"
            assert action.help, f"{where}: no help"
            if action.default not in (None, False):
                assert "default" in action.help, f"{where}: its default is not in its help"
