"""The bundled offline catalog: one published config.json per model id, in ``data/``.

Pure lookups over files that ship in the wheel; no torch, no network.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    config: dict[str, Any]
    config_url: str
    found_at: str = ""
    aliases: tuple[str, ...] = ()
    card_params: dict[str, str] | None = None
    total_params: int | None = None  # as modscope builds it; stored so listing needs no torch
    path: Path | None = field(default=None, compare=False)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", "?"))

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["?"])[0]


def data_dir() -> Path:
    """Where the catalog lives: inside the installed package, or ``data/`` of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data", here.parent / "data"):
        if candidate.is_dir():
            return candidate
    return here / "data"


@cache
def entries() -> tuple[CatalogEntry, ...]:
    found = []
    for path in sorted(data_dir().glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        found.append(
            CatalogEntry(
                id=raw["id"],
                config=raw["config"],
                config_url=raw.get("config_url", ""),
                found_at=raw.get("found_at", ""),
                aliases=tuple(raw.get("aliases", ())),
                card_params=raw.get("card_params"),
                total_params=raw.get("total_params"),
                path=path,
            )
        )
    return tuple(sorted(found, key=lambda e: e.id.lower()))


@cache
def _index() -> dict[str, CatalogEntry]:
    """Lower-cased id, aliases, and the name without its organisation where that is unambiguous."""
    index: dict[str, CatalogEntry] = {}
    short: dict[str, list[CatalogEntry]] = {}
    for entry in entries():
        for name in (entry.id, *entry.aliases):
            index[name.lower()] = entry
            short.setdefault(name.rsplit("/", 1)[-1].lower(), []).append(entry)
    for name, hits in short.items():
        if len({e.id for e in hits}) == 1:
            index.setdefault(name, hits[0])
    return index


def lookup(name: str) -> CatalogEntry | None:
    return _index().get(name.strip().lower())


def close_matches(name: str, n: int = 3) -> list[str]:
    """Catalog ids that look like ``name``, best first, for 'did you mean' messages."""
    query = name.strip().lower()
    scored: dict[str, float] = {}
    for key, entry in _index().items():
        score = difflib.SequenceMatcher(None, query, key).ratio()
        if query.startswith(key) or key.startswith(query):
            score += 0.25  # a typo'd suffix ("-instrukt") or a truncated name
        if score >= 0.6:
            scored[entry.id] = max(score, scored.get(entry.id, 0.0))
    return sorted(scored, key=lambda i: -scored[i])[:n]


def search(query: str | None) -> list[CatalogEntry]:
    """Entries whose id, alias or model type contains ``query`` (all entries when it is empty)."""
    if not query:
        return list(entries())
    q = query.lower()
    return [
        e for e in entries() if q in e.id.lower() or q in e.model_type.lower() or any(q in a.lower() for a in e.aliases)
    ]
