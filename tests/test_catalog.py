"""The bundled catalog: every entry builds and `modscope show` works offline; lookups; card counts."""

import json
import re
from pathlib import Path

import pytest

import modscope
from modscope import catalog
from modscope.cli import main
from modscope.resolve import resolve

ENTRIES = catalog.entries()


def _native(entry):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    from modscope.resolve import LEGACY_MODEL_TYPES

    return entry.model_type in CONFIG_MAPPING_NAMES or entry.model_type in LEGACY_MODEL_TYPES


def test_catalog_is_big_enough_and_ids_unique():
    assert len(ENTRIES) >= 150  # the issue's floor
    assert len({e.id.lower() for e in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _native(e)], ids=lambda e: e.id)
def test_every_entry_shows_offline_verified_by_peft(entry, capsys):
    """`show --json` offline; then every preset's printed LoraConfig and JSON lora_config, taken as a user
    takes them, injected with PEFT to the JSON's count."""
    from peft import LoraConfig
    from test_handover import printed_code, rendered, validate

    from modscope.inject import compare
    from modscope.render.readback import pasted_config
    from modscope.render.rich import show_view

    assert main(["show", entry.id, "--json", "--r", "8"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate(doc, "show")
    assert doc["source"] == "catalog" and doc["total_params"] == entry.total_params > 0
    assert doc["verification"]["match"], doc["verification"]
    a = modscope.analyze(entry.id)
    plans = a.plans()
    assert set(plans) == set(doc["presets"])
    for name, plan in plans.items():
        pasted = pasted_config(printed_code(rendered(show_view(a, plans, name, (8,), 8), 80)))
        assert pasted == LoraConfig(**doc["presets"][name]["lora_config"])
        report = compare(
            a.fresh_model(),
            pasted,
            label=name,
            r=8,
            predicted=doc["presets"][name]["trainable"]["8"],
            expected=plan.wrapped,
        )
        assert report.match, report.summary


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not _native(e)], ids=lambda e: e.id)
def test_entries_needing_their_own_code_explain_it(entry, capsys):
    assert main(["show", entry.id]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--trust-remote-code" in err and "own modeling code" in err


@pytest.mark.parametrize("name", ["qwen/qwen2-0.5b", "QWEN/QWEN2-0.5B", "qwen2-0.5b", "Qwen2-0.5B"])
def test_lookup_is_case_insensitive_and_org_optional(name):
    assert catalog.lookup(name).id == "Qwen/Qwen2-0.5B"


# Names from the issue (its six not-found ids, bases named by real saved adapters) that resolve offline, and to
# what. Each alias is recorded with its evidence in the entry's found_at.
RESOLVES_OFFLINE = {
    "Qwen/Qwen2-7B": "Qwen/Qwen2-7B",
    "openai-community/gpt2-xl": "gpt2-xl",
    "gpt2-large": "gpt2-large",
    "distilbert/distilgpt2": "distilgpt2",
    "google-bert/bert-large-uncased": "bert-large-uncased",
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "stabilityai/stablelm-3b-4e1t": "stabilityai/stablelm-3b-4e1t",
    "01-ai/Yi-6B": "01-ai/Yi-6B",
    "yi-34b": "01-ai/Yi-34B",
    "google/gemma-3-1b-it": "google/gemma-3-1b-pt",  # differs only in eos_token_id
    "mistralai/Mistral-7B-v0.3": "mistralai/Mistral-7B-Instruct-v0.3",  # same file but for transformers_version
    "meta-llama/Llama-3.2-1B-Instruct": "meta-llama/Llama-3.2-1B",  # differs only in eos_token_id
    "Llama-3.2-1B-Instruct": "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B-Instruct": "meta-llama/Llama-3.2-3B",  # differs only in eos_token_id
    "distilbert-base-uncased": "distilbert-base-uncased",
    "unsloth/Qwen3-8B-bnb-4bit": "Qwen/Qwen3-8B",
    "unsloth/llama-3-8b-bnb-4bit": "meta-llama/Meta-Llama-3-8B",  # Unsloth drops "Meta-"
    "/home/someone/Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "/root/autodl-tmp/flan-t5-xxl": "google/flan-t5-xxl",
    "gpt2-medium": "gpt2-medium",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "google/gemma-2-9b-it": "google/gemma-2-9b-it",
    "unsloth/gemma-2-9b-it-bnb-4bit": "google/gemma-2-9b-it",
    "Qwen/Qwen2-1.5B-Instruct": "Qwen/Qwen2-1.5B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit": "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen2.5-1.5B-Instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.2": "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mixtral-8x22B-v0.1": "mistral-community/Mixtral-8x22B-v0.1",  # Mistral AI's repo of the same file
    "HuggingFaceTB/SmolLM3-3B": "HuggingFaceTB/SmolLM3-3B",
    "Qwen/Qwen2-1.5B": "Qwen/Qwen2-1.5B",
    "Qwen/Qwen2.5-14B-Instruct": "Qwen/Qwen2.5-14B-Instruct",
    "unsloth/Qwen2.5-14B-Instruct-bnb-4bit": "Qwen/Qwen2.5-14B-Instruct",
    "HuggingFaceTB/SmolLM-135M-Instruct": "HuggingFaceTB/SmolLM-135M-Instruct",
    "facebook/opt-125m": "facebook/opt-125m",
    "answerdotai/ModernBERT-base": "answerdotai/ModernBERT-base",
    "google/gemma-3-270m": "google/gemma-3-270m",
    "google/gemma-3-4b-pt": "google/gemma-3-4b-it",  # differs only in eos_token_id
    "unsloth/gemma-3-27b-it-bnb-4bit": "google/gemma-3-27b-it",
    "Qwen2-VL-7B-Instruct": "Qwen/Qwen2-VL-7B-Instruct",
    "unsloth/Qwen2.5-VL-7B-Instruct-bnb-4bit": "Qwen/Qwen2.5-VL-7B-Instruct",
    "Qwen/Qwen2.5-VL-3B-Instruct": "Qwen/Qwen2.5-VL-3B-Instruct",
    "tiiuae/falcon-7b-instruct": "tiiuae/falcon-7b-instruct",
    "microsoft/phi-1_5": "microsoft/phi-1_5",
    "EleutherAI/gpt-j-6B": "EleutherAI/gpt-j-6b",
    "google/flan-t5-base": "google/flan-t5-base",
    "google/vit-base-patch16-224": "google/vit-base-patch16-224",
    "bigscience/mt0-large": "bigscience/mt0-large",
    "google/paligemma-3b-pt-224": "google/paligemma-3b-pt-224",
    "google/gemma-3-270m-it": "google/gemma-3-270m",  # the same file, byte for byte (its git blob id)
    "mistralai/Mistral-Nemo-Instruct-2407": "mistralai/Mistral-Nemo-Instruct-2407",
    "nvidia/Nemotron-H-8B-Base-8K": "nvidia/Nemotron-H-8B-Base-8K",
    "meta-llama/Llama-3.2-90B-Vision": "meta-llama/Llama-3.2-90B-Vision-Instruct",  # differs only in eos_token_id
    "meta-llama/Meta-Llama-3-8B-Instruct": "meta-llama/Meta-Llama-3-8B",  # differs only in eos_token_id
    "google/gemma-4-E4B-it": "google/gemma-4-E4B-it",
    "Qwen/Qwen3.5-0.8B": "Qwen/Qwen3.5-0.8B",
    "Qwen3.5-9B": "Qwen/Qwen3.5-9B",
    "prajjwal1/bert-tiny": "prajjwal1/bert-tiny",
    "Qwen/Qwen3.5-27B": "Qwen/Qwen3.5-27B",
    "google/gemma-3-12b-it": "google/gemma-3-12b-it",
    "unsloth/DeepSeek-R1-Distill-Qwen-7B-bnb-4bit": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
    "SmolLM-1.7B": "HuggingFaceTB/SmolLM-1.7B",
    "openai/whisper-large-v3": "openai/whisper-large-v3",
    "allenai/OLMoE-1B-7B-0924": "allenai/OLMoE-1B-7B-0924",
    "ibm-granite/granite-3.1-8b-instruct": "ibm-granite/granite-3.1-8b-instruct",
    "unsloth/Qwen3-235B-A22B-bnb-4bit": "Qwen/Qwen3-235B-A22B",
    "QwQ-32B": "Qwen/QwQ-32B",
    "DeepSeek-V4-Flash-0731": "deepseek-ai/DeepSeek-V4-Flash-0731",
    "deepseek-ai/DeepSeek-V4-Pro": "deepseek-ai/DeepSeek-V4-Pro",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/Mixtral-8x7B-v0.1",  # the same file, read on both pages
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "Ministral-8B-Instruct-2410": "mistralai/Ministral-8B-Instruct-2410",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-unsloth-bnb-4bit": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "bigscience/bloomz-560m": "bigscience/bloomz-560m",
    "Salesforce/codegen-2B-multi": "Salesforce/codegen-2B-multi",
    "HuggingFaceTB/SmolVLM-256M-Instruct": "HuggingFaceTB/SmolVLM-256M-Instruct",
    "meta-llama/Meta-Llama-3.1-405B": "meta-llama/Llama-3.1-405B",
    "Meta-Llama-3.1-70B": "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.2-11B-Vision-Instruct": "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "qwen/qwen3.5-397b-a17b": "Qwen/Qwen3.5-397B-A17B",
    "unsloth/Qwen3.5-122B-A10B-bnb-4bit": "Qwen/Qwen3.5-122B-A10B",
    "Qwen/Qwen2.5-72B-Instruct-AWQ": "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen3-Next-80B-A3B-Instruct-FP8": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "unsloth/Qwen3-30B-A3B-Instruct-2507-bnb-4bit": "Qwen/Qwen3-30B-A3B-Instruct-2507",
    "unsloth/Qwen3-Coder-30B-A3B-Instruct": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "GLM-5": "zai-org/GLM-5",
}


@pytest.mark.parametrize("name", sorted(RESOLVES_OFFLINE))
def test_names_from_the_issue_resolve_offline(name):
    resolved = resolve(name)
    assert resolved.source == "catalog" and resolved.model_id == RESOLVES_OFFLINE[name]
    if name.rsplit("/", 1)[-1].lower() != resolved.model_id.rsplit("/", 1)[-1].lower():
        assert resolved.notes  # an alias, a re-upload or a foreign path says what it resolved to


def test_catalog_kinds_are_read_from_the_config():
    kinds = {e.id: e.kind for e in ENTRIES}
    assert kinds["Qwen/Qwen2-0.5B"] == "dense" and kinds["Qwen/Qwen3-30B-A3B"] == "MoE"
    assert kinds["llava-hf/llava-1.5-7b-hf"] == "multimodal" and kinds["openai/whisper-tiny"] == "speech"
    assert kinds["google/flan-t5-xxl"] == "encoder-decoder" and kinds["google/vit-base-patch16-224"] == "vision"


def test_close_matches_offer_the_near_miss():
    assert "Qwen/Qwen2-0.5B" in catalog.close_matches("Qwen/Qwen2-0.5")


_UNITS = {"": 1, "k": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9, "t": 1e12}


def card_count(text):
    """'0.49B' -> (490e6, 10e6): the value and the unit of its last significant digit
    ('360M' -> 10M: trailing zeros of a whole number are not significant)."""
    match = re.fullmatch(r"\s*([\d,]*\.?\d+)\s*([a-zA-Z]*)\s*", text)
    assert match, f"cannot read the card count {text!r}"
    digits, unit = match.group(1).replace(",", ""), _UNITS[match.group(2).lower()]
    whole, _, decimals = digits.partition(".")
    step = 10 ** -len(decimals) if decimals else 10 ** (len(whole) - len(whole.rstrip("0")))
    return float(digits) * unit, step * unit


def within_card_rounding(total, value, step):
    """Cards round ('0.49B' for 494M) or truncate ('7.61B' for 7.6156B); either is the card's rounding."""
    return abs(total - value) <= step / 2 or value <= total < value + step


# Cards whose stated count is not the model's exact total even allowing for their rounding: the
# relative difference is asserted to stay this small, so a config mistake still fails.
CARD_DISCREPANCIES = {
    "Qwen/Qwen2.5-32B": 0.01,  # "32.5B" for 32.76B
    "Qwen/Qwen2.5-Coder-32B-Instruct": 0.01,  # "32.5B" for 32.76B, the same shapes as Qwen/Qwen2.5-32B
    "Qwen/QwQ-32B": 0.01,  # "32.5B" for 32.76B, the same shapes as Qwen/Qwen2.5-32B
    # the Qwen2 blog's "7.07B" for 7.62B; the same dimensions as Qwen/Qwen2.5-7B, whose card says 7.61B
    "Qwen/Qwen2-7B": 0.08,
    "Qwen/Qwen2.5-VL-7B-Instruct": 0.19,  # "7 billion" for 8.29B, the vision tower included
    # "1.5B", the size class of its base Qwen2.5-Math-1.5B, for 1.78B: its input and output embeddings are untied
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": 0.19,
    # the card's "90B (88.8)" for 88.59B, which is what the Hub counts in the safetensors of the same shapes (88.6B)
    "meta-llama/Llama-3.2-90B-Vision-Instruct": 0.003,
    # KerasHub's count of the backbone with its pooler (test_a_config_without_model_type_is_read_by_its_repo_name)
    "prajjwal1/bert-tiny": 0.008,
    # the paper's 1.3B; the untied 51200 x 2048 embedding and lm_head alone are 210M of the 1.42B
    "microsoft/phi-1": 0.1,
    "microsoft/phi-1_5": 0.1,
    "bert-large-uncased": 0.003,  # "336M" counts the pre-training heads (336,226,108 with them)
    # OpenAI's nominal sizes from the Whisper paper's table, each a little above the checkpoint's count
    "openai/whisper-tiny": 0.04,
    "openai/whisper-small": 0.01,
    "openai/whisper-medium": 0.01,
    "openai/whisper-large-v3": 0.005,
}


def test_card_discrepancies_name_entries_with_a_card_count():
    assert all(catalog.lookup(i) is not None and catalog.lookup(i).card_params for i in CARD_DISCREPANCIES)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.card_params and _native(e)], ids=lambda e: e.id)
def test_total_agrees_with_the_model_card(entry):
    total = modscope.analyze(entry.id).total_params
    value, rounding = card_count(entry.card_params["text"].replace("billion", "B"))
    if entry.id in CARD_DISCREPANCIES:
        assert abs(total - value) / value <= CARD_DISCREPANCIES[entry.id]
    else:
        assert within_card_rounding(total, value, rounding), f"{total:,} vs card {entry.card_params['text']}"


# Exact totals from the published configs of the models the issue names (tied weights once).
PINNED_TOTALS = {
    "Qwen/Qwen2-0.5B": 494_032_768,
    "Qwen/Qwen2-0.5B-Instruct": 494_032_768,
    "Qwen/Qwen2-1.5B": 1_543_714_304,  # as Qwen/Qwen2.5-1.5B-Instruct: the same dimensions
    "Qwen/Qwen2-7B": 7_615_616_512,  # as Qwen/Qwen2.5-7B: the same dimensions
    "tiiuae/falcon-7b": 6_921_720_704,
    "facebook/opt-6.7b": 6_658_473_984,
    "bert-base-uncased": 109_514_298,
    "microsoft/deberta-v3-base": 184_551_780,
    # transformers 5 ties T5's lm_head to the shared embedding whatever config.json says, but loading the
    # checkpoint, which holds its own, keeps them apart: counted untied (see the note)
    "google/flan-t5-xxl": 11_135_332_352,
    "bigscience/mt0-xxl": 12_921_057_280,
    "Salesforce/codegen25-7b-multi": 6_895_702_016,
}


# Entries whose config.json could not be read from the official repo (or a Hub duplicate of it) in full;
# each says in found_at what was read and what was not. They stay because the issue names them; a new
# entry must come from the official file.
UNVERIFIED = {
    "Qwen/Qwen2.5-72B",
    "deepseek-ai/DeepSeek-V2-Lite",
    "tiiuae/falcon-7b",
}


def test_only_the_known_entries_are_unverified():
    assert {e.id for e in ENTRIES if "[not verified" in e.found_at} == UNVERIFIED


def test_a_config_without_model_type_is_read_by_its_repo_name():
    """bert-tiny's config.json names no model_type: transformers 4 read "bert" from the repo name, 5 does not."""
    resolved = resolve("prajjwal1/bert-tiny")
    assert resolved.config.model_type == "bert" and "names no model_type" in resolved.notes[0]
    assert catalog.lookup("bert-tiny").model_type == "bert"
    entry = catalog.lookup("prajjwal1/bert-tiny")
    assert modscope.analyze(entry.id, task="base").total_params == card_count(entry.card_params["text"])[0]


def test_forced_tie_is_explained():
    a = modscope.analyze("google/flan-t5-xxl")
    assert any("tie_word_embeddings=false" in note for note in a.notes)


@pytest.mark.parametrize("model_id", sorted(PINNED_TOTALS))
def test_pinned_totals(model_id):
    assert catalog.lookup(model_id) is not None, f"{model_id} is named in the issue and must be in the catalog"
    assert modscope.analyze(model_id).total_params == PINNED_TOTALS[model_id]


def test_catalog_ships_inside_the_installed_package():
    package = Path(modscope.__file__).resolve().parent
    if "site-packages" in str(package):  # CI: the non-editable install must carry data/
        assert catalog.data_dir() == package / "data"
    assert any(catalog.data_dir().glob("*.json"))


# A model whose code is not part of transformers: a local directory holding its own code.
_CONFIG_CODE = """
from transformers import PretrainedConfig

class TinyRemoteConfig(PretrainedConfig):
    model_type = "tiny_remote"

    def __init__(self, vocab_size=64, hidden_size=32, num_hidden_layers=2, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        super().__init__(**kwargs)
"""
_MODEL_CODE = """
import pathlib
import torch.nn as nn
from transformers import PreTrainedModel
from .configuration_tiny_remote import TinyRemoteConfig

pathlib.Path(__file__).with_name("EXECUTED").write_text("modeling code ran")

class Block(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.attn = nn.ModuleDict(dict(wq=nn.Linear(h, h), wk=nn.Linear(h, h), wv=nn.Linear(h, h), wo=nn.Linear(h, h)))
        self.mlp = nn.ModuleDict(dict(up=nn.Linear(h, 4 * h), down=nn.Linear(4 * h, h)))

class TinyRemoteForCausalLM(PreTrainedModel):
    config_class = TinyRemoteConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config.hidden_size) for _ in range(config.num_hidden_layers))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head
"""


@pytest.fixture
def remote_dir(tmp_path):
    (tmp_path / "configuration_tiny_remote.py").write_text(_CONFIG_CODE)
    (tmp_path / "modeling_tiny_remote.py").write_text(_MODEL_CODE)
    config = {
        "model_type": "tiny_remote",
        "architectures": ["TinyRemoteForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_tiny_remote.TinyRemoteConfig",
            "AutoModelForCausalLM": "modeling_tiny_remote.TinyRemoteForCausalLM",
        },
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_own_code_is_not_run_without_the_flag(remote_dir, capsys):
    assert main(["show", str(remote_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--trust-remote-code" in err
    assert not (remote_dir / "EXECUTED").exists()


def test_own_code_runs_with_the_flag_and_peft_agrees(remote_dir, capsys):
    assert main(["show", str(remote_dir), "--trust-remote-code", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verification"]["match"]
    assert set(doc["presets"]["all-linear"]["target_modules"]) == {"wq", "wk", "wv", "wo", "up", "down"}
    assert resolve(str(remote_dir), trust_remote_code=True).trust_remote_code


def test_legacy_refinedweb_config_maps_onto_falcon(tmp_path):
    legacy = {
        "model_type": "RefinedWebModel",
        "architectures": ["RWForCausalLM"],
        "vocab_size": 128,
        "hidden_size": 64,
        "n_head": 4,
        "n_layer": 2,
        "multi_query": True,
        "parallel_attn": True,
        "bias": False,
        "auto_map": {"AutoConfig": "configuration_RW.RWConfig"},
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    a = modscope.analyze(tmp_path)
    assert a.model_type == "falcon" and a.architecture == "FalconForCausalLM"
    assert any("legacy model_type 'RefinedWebModel'" in n for n in a.notes)
    assert a.suggest("qv").target_modules_list == ["query_key_value"]


def test_catalog_table_groups_by_family_with_kind_and_size(capsys):
    assert main(["catalog", "qwen"]) == 0
    out = capsys.readouterr().out
    assert "family" in out and "qwen3_moe" in out and "MoE" in out and "494M" in out


def test_catalog_ids_print_whole_on_an_80_column_terminal():
    from rich.console import Console

    from modscope.render.rich import catalog_table

    console = Console(width=80, record=True)
    console.print(catalog_table(ENTRIES))
    lines = console.export_text().splitlines()
    assert all(any(line.split()[:1] == [e.id] for line in lines) for e in ENTRIES)
