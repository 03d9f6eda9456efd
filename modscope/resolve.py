"""Find a model's config: local path, Hugging Face cache, bundled catalog, then the Hub.

The only stage that touches disk or network. The Hub is asked for config.json only,
never weights, skipped when ``HF_HUB_OFFLINE=1``, and bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modscope import catalog
from modscope.errors import ConfigError, ModelNotFoundError, RemoteCodeError

HUB_TIMEOUT_S = 6.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

# Model types transformers once accepted and now serves under another name:
# legacy type -> (native type, renamed keys, fixed values).
_FALCON_KEYS = {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads", "n_head_kv": "num_kv_heads"}
LEGACY_MODEL_TYPES: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "RefinedWebModel": ("falcon", _FALCON_KEYS, {"new_decoder_architecture": False}),
    "RefinedWeb": ("falcon", _FALCON_KEYS, {"new_decoder_architecture": True}),
}
_LEGACY_ARCHITECTURES = {"RWForCausalLM": "FalconForCausalLM", "RWModel": "FalconModel"}


@dataclass(frozen=True)
class ResolvedConfig:
    """A config and where it came from."""

    config: Any  # transformers.PretrainedConfig
    model_id: str
    source: str  # local | cache | catalog | hub | object
    location: str
    notes: tuple[str, ...] = field(default=())
    trust_remote_code: bool = False
    # transformers ties the output layer to the input embeddings, but the checkpoint holds its own, which
    # loading keeps apart: the model is built untied, as it loads (``build.untie_output``)
    untied_output: bool = False


def resolve(source: Any, *, trust_remote_code: bool = False) -> ResolvedConfig:
    """Turn an id, a path or a ``PretrainedConfig`` into a :class:`ResolvedConfig`."""
    from transformers import PretrainedConfig

    if isinstance(source, PretrainedConfig):
        name = getattr(source, "name_or_path", "") or source.model_type
        return ResolvedConfig(source, name, "object", "PretrainedConfig object")
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"cannot analyse a {type(source).__name__}: give a model id, a path or a PretrainedConfig")
    text = os.fspath(source).strip()
    if not text:
        raise ModelNotFoundError("empty model name: give a Hugging Face id, a local directory or a config.json path")

    path = Path(text).expanduser()
    if path.exists():
        return _from_local(path, trust_remote_code)
    if text.startswith((".", "/", "~")) or text.endswith(".json") or not _HUB_ID.match(text):
        return _from_foreign_path(text, trust_remote_code)

    cached = _cached_config(text)
    if cached is not None:
        return _from_file(cached, text, "cache", trust_remote_code)
    match = catalog.find(text)
    if match is not None:
        return _from_catalog(match.entry, trust_remote_code, match.note)
    hub = _from_hub(text)
    if hub is not None:
        return _from_file(hub, text, "hub", trust_remote_code)
    raise ModelNotFoundError(_not_found_message(text))


def _not_found_message(name: str) -> str:
    hint = catalog.close_matches(name)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    where = "not a local path, not in the Hugging Face cache, not in the catalog"
    where += (
        " (HF_HUB_OFFLINE is set, Hub not asked)"
        if offline
        else ", and the Hub did not answer (set HF_HUB_OFFLINE=1 to work from the catalog without asking it)"
    )
    fix = (
        f"did you mean {', '.join(hint)}?"
        if hint
        else "see `modscope catalog` or give a local directory with config.json"
    )
    return f"unknown model {name!r}: {where}; {fix}"


# Path components that name a checkpoint or a cache snapshot rather than the model.
_NOT_A_MODEL_NAME = re.compile(r"checkpoint-\d+|snapshots|[0-9a-f]{40}|config\.json", re.IGNORECASE)


def _from_foreign_path(text: str, trust_remote_code: bool) -> ResolvedConfig:
    """A path that does not exist here, typically the base model of an adapter saved on another machine
    (``/home/me/models/Llama-3.1-8B-Instruct``): the catalog model its last component names."""
    parts = [p for p in re.split(r"[/\\]+", text) if p not in ("", ".", "..", "~")]
    name = ""
    for part in reversed(parts):
        if part.startswith("models--"):  # a Hugging Face cache directory: models--org--name
            name = "/".join(part.split("--")[1:3])
            break
        if not _NOT_A_MODEL_NAME.fullmatch(part):
            name = part
            break
    match = catalog.find(name) if name else None
    if match is None:
        hint = catalog.close_matches(name) if name else []
        fix = (
            f"closest catalog models: {', '.join(hint)}"
            if hint
            else "give a local directory with config.json or a model id (see `modscope catalog`)"
        )
        raise ModelNotFoundError(f"no such file or directory: {text}; {fix}")
    note = f"{text} does not exist on this machine; its name {name!r} is the catalog model {match.entry.id}"
    return _from_catalog(match.entry, trust_remote_code, "; ".join(n for n in (note, match.note) if n))


def _from_local(path: Path, trust_remote_code: bool) -> ResolvedConfig:
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"{path} has no config.json: point at a model directory or a config.json file")
    return _from_file(file, str(path), "local", trust_remote_code)


def _from_file(file: Path, model_id: str, source: str, trust_remote_code: bool) -> ResolvedConfig:
    raw = read_config_json(file)
    return _make(raw, model_id, source, str(file), trust_remote_code, code_dir=file.parent)


def _from_catalog(entry: catalog.CatalogEntry, trust_remote_code: bool, note: str = "") -> ResolvedConfig:
    code_dir = None
    cached = _cached_config(entry.id)
    if cached is not None:
        code_dir = cached.parent
    raw = dict(entry.config)
    notes = [note] if note else []
    if "model_type" not in raw and entry.named_type:
        raw["model_type"] = entry.named_type
        notes.append(f"its config.json names no model_type: read as {entry.named_type}, as its repo name spells it")
    resolved = _make(raw, entry.id, "catalog", entry.config_url or entry.id, trust_remote_code, code_dir)
    return replace(resolved, notes=(*notes, *resolved.notes))


def read_config_json(file: Path) -> dict[str, Any]:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file} is not valid JSON (line {exc.lineno}: {exc.msg}); re-download or fix it") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file} holds a JSON {type(raw).__name__}, not a config object")
    if "model_type" not in raw:
        raise ConfigError(f"{file} has no 'model_type'; {_model_type_hint(file)}")
    return raw


def _model_type_hint(file: Path) -> str:
    """Old configs (prajjwal1/bert-tiny's) left the type to the repo name, which transformers 5 no longer reads:
    name the model type the path spells, as transformers 4 guessed it (the longest one it contains)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    folder = file.resolve().parent
    if folder.parent.name == "snapshots":  # the Hugging Face cache: models--org--name/snapshots/<hash>
        folder = folder.parent.parent
    spelled = [t for t in CONFIG_MAPPING_NAMES if t in folder.name.lower()]
    if not spelled:
        return "is it a transformers config.json?"
    guess = max(spelled, key=len)
    return f'transformers 5 no longer guesses it from the name; if this is a {guess} model, add "model_type": "{guess}"'


def _make(
    raw: dict[str, Any], model_id: str, source: str, location: str, trust_remote_code: bool, code_dir: Path | None
) -> ResolvedConfig:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    raw, notes = _upgrade_legacy(raw)
    model_type = raw["model_type"]
    if model_type in CONFIG_MAPPING_NAMES:
        config = config_from_dict(raw)
        untied = _untied_on_loading(raw, config)
        notes += [untied] if untied else []
        return ResolvedConfig(config, model_id, source, location, tuple(notes), untied_output=bool(untied))
    if not raw.get("auto_map"):
        raise ConfigError(
            f"model_type {model_type!r} is not known to the installed transformers and the config has no auto_map;"
            " upgrade transformers or check the config"
        )
    return _remote_code_config(raw, model_id, source, location, trust_remote_code, code_dir, notes)


def _untied_on_loading(raw: dict[str, Any], config: Any) -> str:
    """Why the output layer is untied, or "". transformers ties it to the input embeddings when the config's
    ``tie_word_embeddings`` is true: T5 and mT5 force it whatever config.json says, and composite configs
    that leave it out (Mistral Small 3.1) get a class default of true while their text config says false.
    A checkpoint saved under either file holds its own output layer, and loading it keeps the two apart
    ("both are present in the checkpoints with different values, so we will NOT tie them"): the real model
    is untied, so modscope builds it so (tiny real saved models in the tests show both cases)."""
    if not getattr(config, "tie_word_embeddings", False):
        return ""
    text = config.get_text_config(decoder=True)
    text_unties = text is not config and getattr(text, "tie_word_embeddings", None) is False
    if raw.get("tie_word_embeddings") is False:
        said = "config.json says tie_word_embeddings=false"
    elif "tie_word_embeddings" not in raw and text_unties:
        said = "config.json leaves tie_word_embeddings out and its text config says false"
    else:
        return ""
    return (
        f"{said}; transformers ties {raw['model_type']}'s output layer to the input embeddings on building, but"
        " the checkpoint holds its own, which loading keeps apart: counted untied, as it loads"
    )


def _remote_code_config(raw, model_id, source, location, trust_remote_code, code_dir, notes) -> ResolvedConfig:
    model_type = raw["model_type"]
    needed = {ref.split("--")[-1].split(".")[0] + ".py" for ref in _auto_map_refs(raw)}
    have_code = code_dir is not None and needed and all((code_dir / f).is_file() for f in needed)
    if not trust_remote_code:
        where = f" (found locally in {code_dir})" if have_code else ""
        raise RemoteCodeError(
            f"{model_id} ({model_type}) needs its own modeling code, which is not part of transformers{where}; "
            "rerun with --trust-remote-code to run that code"
            + ("" if have_code else ", with the model's files in a local directory or the Hugging Face cache")
        )
    if not have_code:
        raise RemoteCodeError(
            f"{model_id} ({model_type}) needs its own modeling code ({', '.join(sorted(needed))}), which is not"
            " available offline; download the model repo (without weights) into a local directory and point at it"
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(code_dir), trust_remote_code=True)
    except Exception as exc:  # the model's own code: anything can go wrong
        raise ConfigError(f"the config code of {model_id} failed: {type(exc).__name__}: {exc}") from None
    notes = [*notes, f"built with the model's own code from {code_dir} (--trust-remote-code)"]
    return ResolvedConfig(config, model_id, source, location, tuple(notes), trust_remote_code=True)


def _auto_map_refs(raw: dict[str, Any]) -> list[str]:
    refs = []
    for value in raw.get("auto_map", {}).values():
        refs.extend(value if isinstance(value, list) else [value])
    return [r for r in refs if isinstance(r, str) and "." in r]


def _upgrade_legacy(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    legacy = raw.get("model_type")
    if legacy not in LEGACY_MODEL_TYPES:
        return raw, []
    native, renames, fixed = LEGACY_MODEL_TYPES[legacy]
    upgraded = {renames.get(k, k): v for k, v in raw.items() if k != "auto_map"}
    upgraded.update(fixed, model_type=native)
    upgraded["architectures"] = [_LEGACY_ARCHITECTURES.get(a, a) for a in raw.get("architectures") or []]
    return upgraded, [f"legacy model_type {legacy!r} mapped onto transformers' native {native!r}"]


def config_from_dict(raw: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    values = {k: v for k, v in raw.items() if k not in {"model_type", "transformers_version", "_name_or_path"}}
    try:
        return AutoConfig.for_model(raw["model_type"], **values)
    except Exception as exc:  # a config class rejecting values: report, don't crash
        raise ConfigError(
            f"transformers rejected this {raw['model_type']} config: {type(exc).__name__}: {exc}"
        ) from None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the hub client finds it, read from the environment at each call (the
    client reads it once, at import): ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ``XDG_CACHE_HOME``."""
    env = os.environ
    if env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(env.get("HF_HUB_CACHE") or env["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def _cached_config(repo_id: str) -> Path | None:
    """config.json from the local Hugging Face cache, without any network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache_dir())
    except Exception:  # an invalid repo id for the cache layout is simply not cached
        return None
    return Path(hit) if isinstance(hit, str) else None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _from_hub(repo_id: str) -> Path | None:
    """config.json (only) from the Hub, in a thread with a deadline so no network never means a hang."""
    if _hub_offline():
        return None
    result: dict[str, Path] = {}

    def fetch() -> None:
        import logging
        import socket

        try:  # a quick probe first: huggingface_hub would retry an unreachable host for many seconds
            socket.create_connection(("huggingface.co", 443), timeout=HUB_TIMEOUT_S / 3).close()
            from huggingface_hub import hf_hub_download

            logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
            result["path"] = Path(hf_hub_download(repo_id, "config.json", etag_timeout=HUB_TIMEOUT_S / 2))
        except Exception:  # unreachable, unknown repo, gated: all mean "not from the Hub"
            pass

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(HUB_TIMEOUT_S)
    return result.get("path")
