"""The bundled offline catalog: one published config.json per model id, in ``data/``.

Pure lookups over files that ship in the wheel; no torch, no network.
"""

from __future__ import annotations

import difflib
import json
import re
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
    # the type of an old config.json that names none, which transformers 4 read from the repo name (bert-tiny's)
    named_type: str | None = None

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type") or self.named_type or "?")

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["?"])[0]

    @property
    def kind(self) -> str:
        """dense, MoE, multimodal, multimodal MoE, encoder-decoder, speech or vision, read from the config alone."""
        configs = [self.config, *(v for v in self.config.values() if isinstance(v, dict))]
        moe = any(
            isinstance(c.get(key), int) and c[key] > 1
            for c in configs
            for key in ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
        )
        if any(key in self.config for key in ("vision_config", "audio_config")):
            return "multimodal MoE" if moe else "multimodal"
        if moe:
            return "MoE"
        if "num_mel_bins" in self.config:
            return "speech"
        if "image_size" in self.config:  # a vision model on its own (ViT); a multimodal one has a vision_config
            return "vision"
        return "encoder-decoder" if self.config.get("is_encoder_decoder") else "dense"


@dataclass(frozen=True)
class CatalogMatch:
    """A catalog entry found for a name, and the note that says how when it was not the entry's own name."""

    entry: CatalogEntry
    note: str = ""


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
                named_type=raw.get("model_type_from_name"),
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
    """The entry whose id or alias is ``name`` (case-insensitive; the organisation may be left out)."""
    return _index().get(name.strip().lower())


# What an alias in data/ promises (each entry's found_at says how it was checked).
ALIAS_MEANING = "the same model under another name, or a variant whose config.json differs only in token ids"

# Organisations whose repositories re-upload other publishers' models (often quantised) under the same name.
REUPLOAD_ORGS = frozenset({"unsloth", "thebloke", "hugging-quants", "neuralmagic", "redhatai", "modelcloud"})
# Name endings of quantised re-uploads: -bnb-4bit, -unsloth-bnb-4bit, -GPTQ-Int4, -AWQ, -int8, -FP8, …
_QUANTISED = re.compile(
    r"[-_.](?:(?:unsloth[-_])?(?:bnb[-_])?[48][-_]?bits?|(?:gptq|awq|int[48]|fp8|nf4|w4a16|w8a8)(?:[-_][\w.]*)?)$",
    re.IGNORECASE,
)


def find(name: str) -> CatalogMatch | None:
    """``lookup``, then a re-upload of a catalog model (Unsloth's, bnb-4bit, GPTQ, AWQ, …) resolved to the original."""
    entry = lookup(name)
    if entry is not None:
        typed = name.strip().lower()
        if typed not in (entry.id.lower(), entry.id.rsplit("/", 1)[-1].lower()):  # one of its aliases
            return CatalogMatch(entry, f"{name.strip()} is an alias of {entry.id}: {ALIAS_MEANING}")
        return CatalogMatch(entry)
    text = name.strip()
    org, _, short = text.rpartition("/")
    original, quantised = short, False
    while (stripped := _QUANTISED.sub("", original)) != original:
        original, quantised = stripped, True
    if not quantised and org.lower() not in REUPLOAD_ORGS:
        return None
    # Unsloth names Meta's Llama 3 without its "Meta-" (unsloth/llama-3-8b-bnb-4bit is Meta-Llama-3-8B)
    entry = lookup(original) or lookup(f"meta-{original}")
    if entry is None:
        return None
    what = "a quantised re-upload" if quantised else "a re-upload"
    return CatalogMatch(
        entry,
        f"{text} is {what} of {entry.id}: the same layers, so LoRA adapts the same modules; "
        f"config and counts are those of {entry.id}",
    )


def close_matches(name: str, n: int = 3) -> list[str]:
    """Catalog ids that look like ``name``, best first, for 'did you mean' messages."""
    query = name.strip().lower()
    query = _QUANTISED.sub("", query.rpartition("/")[2] if query.split("/")[0] in REUPLOAD_ORGS else query)
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
