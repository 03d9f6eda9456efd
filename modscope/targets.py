"""A set of module names spelled for PEFT as briefly as it can be exactly: leaf names; else one regex (the common
prefix, then the alternatives, a layer index as ``\\d+``); where a regex needs indices spelled out (RegNet's
``layer.0`` and ``layer.3`` beside a grouped ``layer.1``), the shorter of that regex and the shortest dotted
suffixes; full paths last. PEFT fullmatches a string and matches a list entry as the name or a ``.suffix``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from modscope.peft_rules import matches


def spell(ordered: list[str], names: tuple[str, ...], allow_regex: bool) -> tuple[str, ...] | str:
    """``ordered`` (in the order the targets should read) among all module ``names``; no regex where PEFT would
    rewrite it (the converted MoE types)."""
    wanted = set(ordered)
    leaves = tuple(dict.fromkeys(name.rpartition(".")[2] for name in ordered))
    if selects(leaves, names) == wanted:
        return leaves
    regex, spelled_out = _regex_for(ordered, names) if allow_regex else (None, False)
    if regex is not None and not spelled_out:
        return regex
    suffixes = shortest_suffixes(ordered, names)  # full paths where nothing shorter is exact
    return suffixes if regex is None or _length(suffixes) <= _length(regex) else regex


def selects(targets: tuple[str, ...] | str, names: Iterable[str]) -> set[str]:
    return {n for n in names if matches(targets, n)}


def _length(targets: tuple[str, ...] | str) -> int:
    return len(targets) if isinstance(targets, str) else sum(len(t) + 4 for t in targets)  # quotes, comma, space


def _regex_for(ordered: list[str], names: tuple[str, ...]) -> tuple[str | None, bool]:
    """One regex for ``ordered``, and whether some layer index had to be spelled out: names of one shape share a
    template whose indices are ``\\d+`` where every index there is wanted, else the wanted ones, ``(?:0|3)``."""
    wanted = set(ordered)
    shapes: dict[tuple, list[list[str]]] = {}
    for name in ordered:
        parts = name.split(".")
        shapes.setdefault(tuple(None if p.isdigit() else p for p in parts), []).append(parts)
    templates, spelled_out = [], False
    for shape, members in shapes.items():
        tokens = [r"\d+" if p is None else re.escape(p) for p in shape]
        for column in [None, *(i for i, p in enumerate(shape) if p is None)]:
            if column is not None:
                values = sorted({m[column] for m in members}, key=int)
                tokens[column] = values[0] if len(values) == 1 else "(?:" + "|".join(values) + ")"
                spelled_out = True
            if selects(r"\.".join(tokens), names) <= wanted:
                break
        else:
            return None, spelled_out
        templates.append(tokens)
    prefix: list[str] = []
    for column in zip(*templates, strict=False):  # up to the shortest name
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    prefix = prefix[: min(len(t) for t in templates) - 1]
    tails = [r"\.".join(t[len(prefix) :]) for t in templates]
    head = r"\.".join(prefix)
    body = tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")"
    regex = rf"{head}\.{body}" if head else body
    return (regex if selects(regex, names) == wanted else None), spelled_out


def shortest_suffixes(ordered: list[str], names: Iterable[str], *, at_index: bool = False) -> tuple[str, ...]:
    """For each of ``ordered``, its shortest dotted suffix (starting at a name, not an index: ``layer.0.conv``
    rather than ``0.conv``, unless ``at_index``) that selects nothing unwanted among ``names``, its full path at
    worst (inexact only where the full path is itself the suffix of another name; callers that need it check)."""
    wanted = set(ordered)
    holders: dict[int, dict[str, bool]] = {}  # depth -> suffix -> whether every name it selects is wanted

    def only_wanted(suffix: list[str]) -> bool:
        if len(suffix) not in holders:
            found: dict[str, bool] = {}
            for name in names:
                key = ".".join(name.split(".")[-len(suffix) :])
                found[key] = found.get(key, True) and name in wanted
            holders[len(suffix)] = found
        return holders[len(suffix)].get(".".join(suffix), True)

    chosen: dict[str, None] = {}
    for name in ordered:
        segments = name.split(".")
        depths = [d for d in range(1, len(segments)) if at_index or not segments[-d].isdigit()] + [len(segments)]
        chosen[".".join(next((segments[-d:] for d in depths if only_wanted(segments[-d:])), segments))] = None
    return tuple(chosen)


def parameter_suffixes(keys: list[str], param_names: tuple[str, ...]) -> tuple[str, ...]:
    """The shortest dotted suffixes, of one depth, that select exactly ``keys`` among all parameter names (PEFT
    matches ``target_parameters`` by exact name or by ``.suffix``)."""
    wanted = set(keys)
    depth = max(len(k.split(".")) for k in keys)
    for n in range(2, depth + 1):
        suffixes = tuple(dict.fromkeys(".".join(k.split(".")[-n:]) for k in keys))
        if selects(suffixes, param_names) == wanted:
            return suffixes
    return tuple(keys)
