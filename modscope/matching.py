"""PEFT's name-matching rules, in one place, for predicting what a config selects without an injection."""

from __future__ import annotations

import re
from collections.abc import Iterable


def matches(targets: str | Iterable[str] | None, key: str) -> bool:
    """``target_modules`` / ``target_parameters`` semantics: a string is a regex fullmatched against the
    whole name; a list entry matches the name itself or any ``.suffix`` of it."""
    if not targets:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    return any(key == t or key.endswith(f".{t}") for t in targets)


def pattern_key(patterns: Iterable[str], name: str) -> str | None:
    """PEFT's ``get_pattern_key`` for ``rank_pattern`` / ``alpha_pattern``: the first key that matches the
    end of ``name`` at a dot boundary."""
    return next((key for key in patterns if re.match(rf"(.*\.)?({key})$", name)), None)
