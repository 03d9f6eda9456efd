"""Keyword arguments -> Python source a user pastes as it is.

Exec'd, the code gives back exactly the values it was made from. Every line stays within ``WIDTH``
columns, so nothing is cut in a narrow terminal: a long string becomes adjacent literals inside
parentheses (Python joins them), broken after a ``|`` where a regex has one; a long list or dict
puts one item on a line. Regexes are raw strings, so ``\\.`` reads as it does in the docs.
"""

from __future__ import annotations

import re
from typing import Any

WIDTH = 60
_INDENT = "    "


def config_code(kwargs: dict[str, Any], cls: str = "LoraConfig", module: str = "peft") -> str:
    """``from peft import LoraConfig`` and ``config = LoraConfig(...)`` with ``kwargs``, one per line."""
    return f"from {module} import {cls}\n\n" + call_code(f"config = {cls}", kwargs)


def call_code(call: str, kwargs: dict[str, Any], positional: tuple[str, ...] = ()) -> str:
    """``call(`` with the ``positional`` names, then ``kwargs``, one per line, and ``)``."""
    lines = [f"{call}(", *(f"{_INDENT}{name}," for name in positional)]
    for key, value in kwargs.items():
        if key == "target_modules" and isinstance(value, str) and value != "all-linear":
            lines.append(f"{_INDENT}# one regex: PEFT fullmatches it against module paths")
        lines += _assignment(key, value)
    lines.append(")")
    return "\n".join(lines) + "\n"


def _assignment(key: str, value: Any) -> list[str]:
    head = f"{_INDENT}{key}="
    body = literal(value, len(head), _INDENT)
    return [head + body[0], *body[1:-1], body[-1] + ","] if len(body) > 1 else [head + body[0] + ","]


def literal(value: Any, used: int = 0, indent: str = "") -> list[str]:
    """The lines of a Python literal for ``value``; the first line starts ``used`` columns in, the
    following ones at ``indent``. Items of a long list or dict go one to a line."""
    if isinstance(value, str):
        return _string(value, used, indent)
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    if isinstance(value, (list, tuple)):
        return _container([_one_line(item) for item in value], "[]", used, indent)
    if isinstance(value, dict):
        return _container([f"{_one_line(k)}: {_one_line(v)}" for k, v in value.items()], "{}", used, indent)
    if value is None or isinstance(value, (bool, int, float)):
        return [repr(value)]
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _one_line(value: Any) -> str:
    return _quote(value) if isinstance(value, str) else "".join(literal(value, 0, ""))


def _container(items: list[str], brackets: str, used: int, indent: str) -> list[str]:
    one = brackets[0] + ", ".join(items) + brackets[1]
    if used + len(one) + 1 <= WIDTH:
        return [one]
    return [brackets[0], *(f"{indent}{_INDENT}{item}," for item in items), indent + brackets[1]]


def _string(text: str, used: int, indent: str) -> list[str]:
    one = _quote(text)
    if used + len(one) + 1 <= WIDTH:
        return [one]
    budget = WIDTH - len(indent) - len(_INDENT) - 3  # room for r"…" on a line of its own
    return ["(", *(indent + _INDENT + _quote(chunk) for chunk in _chunks(text, budget)), indent + ")"]


def _quote(text: str) -> str:
    """A raw string where the text has backslashes and a raw literal can hold it, else a plain one."""
    if "\\" in text and "\n" not in text and not re.search(r"(?<!\\)(\\\\)*\\$", text):
        for quote in ('"', "'"):
            if quote not in text:
                return f"r{quote}{text}{quote}"
    return f'"{repr(text)[1:-1]}"' if "'" not in text and '"' not in text else repr(text)


def _chunks(text: str, budget: int) -> list[str]:
    """``text`` cut into pieces of at most ``budget`` characters, never inside an escape such as ``\\.``:
    before a ``|`` where one is near the end, else after a ``(?:`` or a ``\\.``."""
    tokens = re.findall(r"\\.|\(\?:|.", text, re.S)
    chunks: list[str] = []
    current: list[str] = []
    for token in tokens:
        if current and len("".join(current)) + len(token) > budget:
            chunks.append("".join(current[: _cut(current)]))
            current = current[_cut(current) :]
        current.append(token)
    if current:
        chunks.append("".join(current))
    return chunks


def _cut(tokens: list[str]) -> int:
    third = len(tokens) // 3
    for wanted, after in (("|", 0), ("(?:", 1), ("\\.", 1)):
        found = [i + after for i, t in enumerate(tokens) if t == wanted and i >= third]
        if found:
            return found[-1]
    return len(tokens)
