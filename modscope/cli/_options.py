"""What several commands' parsers share."""

from __future__ import annotations

import argparse
from typing import Any

from modscope.errors import OptionError

MODEL_HELP = "Hugging Face id, local directory, or config.json path"
TARGETS_HELP = "leaf names or paths; one value with regex characters is a regex (PEFT fullmatches it)"
_REGEX_CHARS = set("\\^$*+?()[]{}|")


def target_names(values: list[str] | None) -> list[str] | str | None:
    """One value with regex characters is a regex string (PEFT fullmatches it); otherwise a list."""
    if values and len(values) == 1 and any(c in _REGEX_CHARS for c in values[0]):
        return values[0]
    return values


def fields(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as config fields; a VALUE that is not JSON is a string (``bias=all``)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise OptionError(f"--set takes KEY=VALUE, not {pair!r} (e.g. --set feedforward_modules='[\"down_proj\"]')")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def rank(text: str) -> int:
    """An argparse type: a positive integer rank."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"r must be a positive integer, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"r must be a positive integer, not {value}")
    return value


def console(stderr: bool = False):  # -> rich.console.Console, imported only when a command prints
    from rich.console import Console

    return Console(stderr=stderr)
