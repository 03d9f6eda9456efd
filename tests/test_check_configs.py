"""`modscope check --config`: saved adapter_config.json files of several PEFT versions load as PEFT loads them
and count as PEFT counts them on a real CPU model; bad input is one line and exit 2, from the API a ModscopeError.

The fixtures in fixtures/adapter_configs/ are written in the shape each PEFT version saved (sorted keys, the
fields of that version, base_model_name_or_path and all); they are counted on tiny models of the same family.
"""

import copy
import json
from pathlib import Path

import peft
import pytest
import torch
from tiny import tiny_config

import modscope
from modscope.check import count, verify_count
from modscope.cli import main
from modscope.errors import ConfigError, ModscopeError, OptionError
from modscope.inject import wrapped_layers
from modscope.user_config import read_adapter_config

FIXTURES = Path(__file__).parent / "fixtures" / "adapter_configs"
SEQ_CLS = "sequence-classification"
_ANALYSES = {}

# fixture -> (tiny family, task, keys PEFT 0.21 ignores)
SAVED = {
    "peft-0.2-gpt2": ("gpt2", None, ["enable_lora", "merge_weights"]),
    "peft-0.3-llama": ("llama", None, ["enable_lora", "merge_weights"]),
    "peft-0.6-mistral": ("mistral", None, []),
    "peft-0.10-qwen2-dora": ("qwen2", None, []),
    "peft-0.10-llama-layer-replication": ("llama", None, []),
    "peft-0.14-llama-exclude": ("llama", None, []),
    "peft-0.17-qwen3-moe": ("qwen3_moe", None, []),
    "peft-0.19-bert-seq-cls": ("bert", SEQ_CLS, []),
    "peft-future-llama": ("llama", None, ["lora_shard_config", "use_spectral_init"]),
    "peft-0.13-adalora-bert": ("bert", SEQ_CLS, []),
}


def analysis(model_type, task=None):
    if (model_type, task) not in _ANALYSES:
        _ANALYSES[model_type, task] = modscope.analyze(tiny_config(model_type), task=task)
    return _ANALYSES[model_type, task]


def peft_on_real_tensors(directory, model_type, task):
    """What PEFT trains for this saved adapter on a real CPU model: its own loader, get_peft_model's defaults,
    trainable as PeftModel.from_pretrained(..., is_trainable=True) makes it."""
    import transformers
    from peft import PeftConfig, get_peft_model

    config = PeftConfig.from_pretrained(str(directory))
    config.inference_mode = False
    torch.manual_seed(0)
    cls = getattr(transformers, analysis(model_type, task).architecture)
    model = get_peft_model(cls._from_config(copy.deepcopy(tiny_config(model_type))), config)
    return model.get_nb_trainable_parameters(), wrapped_layers(model)


@pytest.mark.parametrize("name", sorted(SAVED))
def test_saved_adapter_counts_as_peft_counts(name):
    model_type, task, ignored = SAVED[name]
    report = count(analysis(model_type, task), read_adapter_config(str(FIXTURES / name)))
    (trainable, total), wrapped = peft_on_real_tensors(FIXTURES / name, model_type, task)
    assert report.wrapped == wrapped
    assert (report.trainable, report.total) == (trainable, total)
    unknown = [w for w in report.warnings if "unknown to PEFT" in w]
    if ignored:
        assert unknown == [
            f"keys {', '.join(ignored)} are unknown to PEFT {peft.__version__} and "
            "ignored, as PEFT ignores them when it loads this config"
        ]
    else:
        assert not unknown
    assert sum("inference_mode=true" in w for w in report.warnings) == 1
    verified = verify_count(report)  # and the meta injection check runs agrees
    assert verified.match and verified.peft_all == report.total, verified.summary


def test_layer_replication_counts_the_repeated_blocks():
    """[[0, 2], [1, 2]] makes blocks 0, 1, 1 (three, sharing base weights): three blocks adapted, base unchanged."""
    report = count(analysis("llama"), read_adapter_config(str(FIXTURES / "peft-0.10-llama-layer-replication")))
    assert sorted({row.layer.name.split(".")[2] for row in report.rows}) == ["0", "1", "2"]
    assert report.total == analysis("llama").total_params + report.adapter_params
    assert tiny_config("llama").num_hidden_layers == analysis("llama").resolved.config.num_hidden_layers == 2
    assert len(analysis("llama").fresh_model().model.layers) == 2  # PEFT's rewrite did not leak into the analysis


def test_layer_replication_peft_cannot_apply():
    with pytest.raises(OptionError, match=r"cannot apply layer_replication=\[\[0, 5\]\] .* within its 2 blocks"):
        count(analysis("llama"), dict(target_modules=["q_proj"], layer_replication=[[0, 5]]))
    with pytest.raises(OptionError, match=r"cannot apply layer_replication to gpt2: .*drop layer_replication"):
        count(analysis("gpt2"), dict(target_modules=["c_attn"], layer_replication=[[0, 2]], fan_in_fan_out=True))


def test_unknown_keys_from_the_api_too():
    report = count(analysis("llama"), dict(target_modules=["q_proj"], r=4, merge_weights=True))
    assert report.warnings[0].startswith("key merge_weights is unknown to PEFT")


def test_cli_reads_an_old_adapter(tiny_dir, capsys):
    assert (
        main(["check", tiny_dir, "--config", str(FIXTURES / "peft-0.3-llama" / "adapter_config.json"), "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["verification"]["match"] and any("enable_lora, merge_weights" in w for w in doc["warnings"])
    assert main(["check", tiny_dir, "--config", str(FIXTURES / "peft-future-llama")]) == 0  # a directory too
    assert "lora_shard_config, use_spectral_init are unknown" in " ".join(capsys.readouterr().out.split())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_config("llama", architectures=["LlamaForCausalLM"]).save_pretrained(path)
    return str(path)


def one_line_exit_2(capsys, argv, *words):
    code = main(argv)
    captured = capsys.readouterr()
    lines = [l for l in captured.err.splitlines() if l.strip()]
    assert code == 2, captured.err + captured.out
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


BAD_FIELDS = {
    "r word": (dict(r="eight"), "r must be a positive integer"),
    "r zero": (dict(r=0), "r must be a positive integer"),
    "r bool": (dict(r=True), "r must be a positive integer"),
    "target_modules int": (dict(target_modules=5), "target_modules must be a list of module names"),
    "target_modules regex": (dict(target_modules=".*(q_proj"), "is not a valid regex"),
    "exclude_modules regex": (dict(exclude_modules="(mlp"), "exclude_modules '(mlp' is not a valid regex"),
    "target_parameters str": (dict(target_parameters="mlp.up_proj.weight"), "target_parameters must be a list"),
    "rank_pattern list": (dict(rank_pattern=[16]), "rank_pattern must be a mapping"),
    "rank_pattern value": (dict(rank_pattern={"v_proj": "big"}), "rank_pattern['v_proj'] must be a positive"),
    "rank_pattern key": (dict(rank_pattern={"v_proj(": 16}), "rank_pattern key 'v_proj(' is not a valid regex"),
    "alpha_pattern key": (dict(alpha_pattern={"[": 16}), "alpha_pattern key '[' is not a valid regex"),
    "alpha_pattern value": (dict(alpha_pattern={"v_proj": None}), "alpha_pattern['v_proj'] must be a number"),
    "layers_to_transform": (dict(layers_to_transform=["a"]), "layers_to_transform must be a block index"),
    "layers_pattern": (dict(layers_to_transform=[0], layers_pattern="layers("), "layers_pattern 'layers(' is not"),
    "bias": (dict(bias="some"), "bias must be 'none', 'all' or 'lora_only'"),
    "use_dora": (dict(use_dora="yes"), "use_dora must be true or false"),
    "lora_alpha": (dict(lora_alpha="16"), "lora_alpha must be a number"),
    "modules_to_save": (dict(modules_to_save="lm_head"), "modules_to_save must be a list"),
    "layer_replication": (dict(layer_replication=[0, 2]), "layer_replication must be a list of [start, end)"),
    "peft_type unknown": (dict(peft_type="FOO"), "peft_type 'FOO' is not one PEFT"),
    "peft_type case": (dict(peft_type="lora"), "write peft_type 'LORA'"),
    "peft_type not counted": (dict(peft_type="VBLORA"), "modscope does not count PEFT's VBLORA adapters"),
    "peft refuses": (dict(layers_pattern="layers"), "PEFT 0."),
    "adalora init_r": (dict(peft_type="ADALORA", init_r=-1, total_step=10), "init_r must be a positive integer"),
    "lora_bias": (dict(lora_bias=True), "lora_bias adds a trainable bias"),
    "trainable tokens": (dict(trainable_token_indices=[0, 1]), "modscope does not count yet"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_bad_fields_api(case):
    fields, words = BAD_FIELDS[case]
    with pytest.raises(ModscopeError) as caught:
        count(analysis("llama"), {"target_modules": ["q_proj", "v_proj"], **fields})
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_bad_fields_cli(case, tiny_dir, tmp_path, capsys):
    fields, words = BAD_FIELDS[case]
    (tmp_path / "adapter_config.json").write_text(json.dumps({"target_modules": ["q_proj", "v_proj"], **fields}))
    one_line_exit_2(capsys, ["check", tiny_dir, "--config", str(tmp_path / "adapter_config.json")], words)


def test_bad_options_cli(tiny_dir, capsys):
    one_line_exit_2(
        capsys,
        ["check", tiny_dir, "--target-modules", ".*(q_proj"],
        "target_modules '.*(q_proj' is not a valid regex",
        "['q_proj', 'v_proj']",
    )
    one_line_exit_2(
        capsys,
        ["check", tiny_dir, "--target-modules", "q_proj", "--exclude-modules", "(mlp"],
        "exclude_modules '(mlp' is not a valid regex",
    )
    one_line_exit_2(
        capsys,
        ["check", tiny_dir, "--target-modules", "q_proj", "--rank-pattern", '{"q(": 4}'],
        "rank_pattern key 'q(' is not a valid regex",
    )
    one_line_exit_2(
        capsys,
        ["check", tiny_dir, "--target-modules", "q_proj", "--rank-pattern", "[4]"],
        "rank_pattern must be a mapping",
    )


def test_the_issue_example(capsys):
    """`modscope check Qwen/Qwen2-0.5B --target-modules '.*(q_proj'` ended in a traceback and exit 1."""
    one_line_exit_2(capsys, ["check", "Qwen/Qwen2-0.5B", "--target-modules", ".*(q_proj"], "not a valid regex")


@pytest.mark.parametrize(
    "text, suffix, words",
    [
        ("{not json", ".json", "is not valid JSON"),
        ("\x89PNG\r\n\x1a\n\x00\xff", ".json", "is not valid JSON"),
        ("r: [8\n", ".yaml", "is not valid YAML"),
        ("[1, 2]", ".json", "holds list, not a mapping of LoraConfig fields"),
        ("null", ".json", "holds null, not a mapping"),
        ("- r: 8\n", ".yaml", "holds list, not a mapping"),
        ("just words", ".yml", "holds str, not a mapping"),
    ],
)
def test_config_files_that_are_not_mappings(text, suffix, words, tiny_dir, tmp_path, capsys):
    path = tmp_path / f"lora{suffix}"
    path.write_bytes(text.encode("latin-1"))
    one_line_exit_2(capsys, ["check", tiny_dir, "--config", str(path)], words)
    with pytest.raises(ConfigError):
        read_adapter_config(str(path))


def test_missing_config_file(tiny_dir, tmp_path, capsys):
    one_line_exit_2(
        capsys, ["check", tiny_dir, "--config", str(tmp_path / "nope.json")], "cannot read --config", "No such file"
    )
    one_line_exit_2(capsys, ["check", tiny_dir, "--config", str(tmp_path)], "adapter_config.json", "No such file")


def test_peft_types_from_saved_files(tiny_dir, tmp_path, capsys):
    """A saved IA3 adapter (PEFT 0.10, flan-t5) counts on a T5 as PEFT counts it (exit 0: verified); a method
    modscope does not count is refused in one line, with the reason."""
    tiny_config("t5").save_pretrained(tmp_path)
    assert main(["check", str(tmp_path), "--config", str(FIXTURES / "peft-0.10-ia3-t5")]) == 0
    assert "verified" in capsys.readouterr().out
    (tmp_path / "adapter_config.json").write_text(json.dumps(dict(peft_type="SHIRA", target_modules=["q_proj"])))
    one_line_exit_2(capsys, ["check", tiny_dir, "--config", str(tmp_path)], "SHIRA", "real weights")
    one_line_exit_2(
        capsys,
        ["check", tiny_dir, "--config", str(FIXTURES / "peft-0.6-adalora-no-total-step")],
        "rejects this AdaLoraConfig",
        "total_step",
    )


# --- targets that match nothing -------------------------------------------------------------------------


def test_nothing_matched_lists_the_adaptable_names_by_role():
    with pytest.raises(OptionError) as caught:
        count(analysis("llama"), dict(target_modules=["nonexistent_proj"]))
    text = str(caught.value)
    assert "target_modules=['nonexistent_proj'] (a list" in text
    listing = text.partition("its adaptable layers by role: ")[2]
    assert listing.count(":") >= 3 and "attention: " in listing and "mlp: " in listing
    for leaf in (
        "q_proj (q)",
        "k_proj (k)",
        "v_proj (v)",
        "o_proj (o)",
        "gate_proj (gate)",
        "up_proj (up)",
        "down_proj (down)",
        "embed_tokens (embed)",
        "lm_head",
    ):
        assert leaf in listing  # all of them: nine, fewer than 15
    assert "more" not in listing


def test_nothing_matched_closest_first_and_by_meaning():
    with pytest.raises(OptionError) as caught:
        count(analysis("llama"), dict(target_modules=["q_projj"]))
    assert str(caught.value).partition("by role: ")[2].startswith("attention: q_proj (q), ")
    with pytest.raises(OptionError) as caught:  # BERT calls q_proj `query`
        count(analysis("bert"), dict(target_modules=["q_proj"]))
    assert str(caught.value).partition("by role: ")[2].startswith("attention: query (q)")


def test_nothing_matched_says_regex_and_keeps_the_list_hint():
    with pytest.raises(OptionError) as caught:
        count(analysis("llama"), dict(target_modules=r".*\.attn\.q_proj"))
    text = str(caught.value)
    assert "(one string: a regex PEFT fullmatches against whole module names such as model." in text
    assert text.partition("by role: ")[2].startswith("attention: q_proj (q)")
    with pytest.raises(OptionError, match=r"looks like a list of leaf names: write .*\['q_proj', 'v_proj'\]"):
        count(analysis("llama"), dict(target_modules="q_proj|v_proj"))
    with pytest.raises(OptionError, match=r"with layers_to_transform=\[7\] matches nothing"):
        count(analysis("llama"), dict(target_modules=["q_proj"], layers_to_transform=[7]))


def test_nothing_matched_shows_the_closest_15_of_many():
    llava = analysis("llava")
    with pytest.raises(OptionError) as caught:
        count(llava, dict(target_modules=["fc1x"]))
    listing = str(caught.value).partition("by role: ")[2]
    entries = {(l.group, l.part, l.leaf, l.role) for l in llava.layers if l.parameter is None}
    assert len(entries) > 15
    assert listing.startswith("vision mlp: fc1 (up)")
    assert f"and {len(entries) - 15} more (see `modscope show" in listing
