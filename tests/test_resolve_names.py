"""Names people type, offline: the Hugging Face cache, catalog aliases, re-uploads, and base paths from other
machines (as saved adapters name them)."""

import json

import pytest

from modscope import catalog
from modscope.cli import main
from modscope.errors import ModelNotFoundError
from modscope.resolve import resolve

_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _fake_cache(hub, repo_id, config):
    """A cache laid out as huggingface_hub lays it out: refs/main names the snapshot holding config.json."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(_COMMIT)
    snapshot = repo / "snapshots" / _COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    return snapshot / "config.json"


def _tiny_qwen2():
    config = dict(catalog.lookup("Qwen/Qwen2-0.5B").config)
    config.update(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4)
    config.update(num_key_value_heads=2, vocab_size=256)
    return config


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    return monkeypatch


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_the_cache_is_found_through_the_environment_and_preferred_over_the_catalog(no_cache, tmp_path, variable):
    hub = tmp_path / "hf" / ("hub" if variable == "HF_HOME" else "")
    file = _fake_cache(hub, "Qwen/Qwen2-0.5B", _tiny_qwen2())
    no_cache.setenv(variable, str(tmp_path / "hf" if variable == "HF_HOME" else hub))
    resolved = resolve("Qwen/Qwen2-0.5B")
    assert resolved.source == "cache" and resolved.location == str(file)
    assert resolved.config.num_hidden_layers == 2


def test_a_cached_model_outside_the_catalog_resolves_offline(no_cache, tmp_path):
    _fake_cache(tmp_path / "hub", "acme/tiny-qwen", _tiny_qwen2())
    no_cache.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve("acme/tiny-qwen").source == "cache"


def test_without_a_cache_the_catalog_answers(no_cache):
    resolved = resolve("Qwen/Qwen2-0.5B")
    assert resolved.source == "catalog" and resolved.config.num_hidden_layers == 24


def test_every_alias_resolves_to_its_entry():
    for entry in catalog.entries():
        for alias in entry.aliases:
            assert catalog.lookup(alias) is entry, alias
            assert catalog.lookup(alias.upper()) is entry, alias


@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("unsloth/Qwen3-8B-bnb-4bit", "Qwen/Qwen3-8B"),
        ("unsloth/qwen3-8b", "Qwen/Qwen3-8B"),
        ("unsloth/Qwen2.5-7B-Instruct-unsloth-bnb-4bit", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct"),
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "meta-llama/Llama-3.1-8B-Instruct"),
    ],
)
def test_reuploads_resolve_to_the_original_with_a_note(name, original):
    resolved = resolve(name)
    assert resolved.model_id == original and resolved.source == "catalog"
    assert any(f"re-upload of {original}" in note for note in resolved.notes)


def test_a_same_named_model_of_another_organisation_is_not_taken_for_the_original():
    assert catalog.find("someone/Qwen3-8B") is None


@pytest.mark.parametrize(
    ("path", "model_id"),
    [
        ("/home/someone/models/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("/root/autodl-tmp/flan-t5-xxl/", "google/flan-t5-xxl"),
        ("~/checkpoints/Qwen2-0.5B/checkpoint-500", "Qwen/Qwen2-0.5B"),
        ("C:\\Users\\me\\models\\gpt2", "gpt2"),
        (f"/data/hub/models--Qwen--Qwen3-8B/snapshots/{_COMMIT}", "Qwen/Qwen3-8B"),
    ],
)
def test_a_base_path_from_another_machine_resolves_by_its_name(path, model_id):
    resolved = resolve(path)
    assert resolved.model_id == model_id and resolved.source == "catalog"
    assert any("does not exist on this machine" in note for note in resolved.notes)


def test_a_foreign_path_naming_no_catalog_model_says_which_come_closest(capsys):
    with pytest.raises(ModelNotFoundError, match=r"closest catalog models: .*Qwen/Qwen2-0\.5B"):
        resolve("/home/someone/Qwen2-0.6B")
    assert main(["show", "/home/someone/Qwen2-0.6B"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no such file or directory" in err and "Qwen/Qwen2-0.5B" in err


def test_the_note_reaches_show(capsys):
    assert main(["show", "/home/someone/models/Qwen2-0.5B", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "Qwen/Qwen2-0.5B"
    assert any("does not exist on this machine" in note for note in doc["notes"])
