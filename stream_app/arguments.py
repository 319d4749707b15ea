"""The argument types and the parser of the ``stream-app`` command: a bad option is one
line naming the command and its ``--help``, never argparse's whole usage or a traceback."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def level(text: str) -> str:
    if text.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LEVELS)}")
    return text.upper()


def positive(text: str) -> int:
    value: int = number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive count")
    return value


def fraction(text: str) -> float:
    value: float = number(float, text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share from 0 to 1")
    return value


def at_least_zero(kind: type[Any]) -> Any:
    def parse(text: str) -> Any:
        value = number(kind, text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value
    parse.__name__ = kind.__name__
    return parse


def number(kind: type[Any], text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


class OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line naming the command and ``--help`` (argparse prints the
    whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
