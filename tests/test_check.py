"""`modscope check`: a user's own LoraConfig counted without injection, and the count equal to PEFT's
after a real injection (get_peft_model(..., low_cpu_mem_usage=True) on a meta model) for every option."""

import argparse
import json
from pathlib import Path

import pytest
from tiny import tiny_config

import modscope
from modscope.check import count, verify_count
from modscope.cli.check import add_parser, run
from modscope.errors import ConfigError, OptionError

DATA = Path(__file__).parent.parent / "data"
_ANALYSES = {}


def analysis(model_type, task=None):
    if (model_type, task) not in _ANALYSES:
        _ANALYSES[model_type, task] = modscope.analyze(tiny_config(model_type), task=task)
    return _ANALYSES[model_type, task]


def assert_peft_agrees(report):
    result = verify_count(report)
    assert result.error is None, result.error
    assert not result.missing and not result.extra, result.summary
    assert result.peft == report.trainable, result.summary
    assert result.peft_all == report.total
    return result


OPTIONS = {
    "list": ("llama", dict(target_modules=["q_proj", "v_proj"], r=4)),
    "full path": ("llama", dict(target_modules=["model.layers.1.mlp.down_proj"], r=4)),
    "regex": ("llama", dict(target_modules=r".*\.layers\.0\.self_attn\.(q|k)_proj", r=4)),
    "all-linear": ("llama", dict(target_modules="all-linear", r=4)),
    "conv1d": ("gpt2", dict(target_modules=["c_attn", "c_fc"], r=4, fan_in_fan_out=True)),
    "embedding": ("llama", dict(target_modules=["embed_tokens", "q_proj"], r=4)),
    "conv2d": ("llava", dict(target_modules=["patch_embedding", "q_proj"], r=4)),
    "experts 3-D": (
        "deepseek_v3",
        dict(
            target_modules=["q_a_proj"],
            target_parameters=["experts.gate_up_proj", "experts.down_proj"],
            r=4,
            lora_dropout=0.0,
        ),
    ),
    "2-D weight as parameter": ("qwen3_moe", dict(target_parameters=["mlp.gate_proj.weight"], r=4)),
    "moe conversion": ("mixtral", dict(target_modules=["q_proj", "w1", "w3", "w2"], r=4)),
    "moe all-linear": ("deepseek_v3", dict(target_modules="all-linear", r=4)),
    "rank_pattern": (
        "qwen2",
        dict(
            target_modules=["q_proj", "v_proj", "down_proj"],
            r=4,
            rank_pattern={"v_proj": 8, r"layers\.1\.mlp\.down_proj": 2},
        ),
    ),
    "layers_to_transform": ("qwen2", dict(target_modules=["q_proj", "v_proj"], r=4, layers_to_transform=[1])),
    "layers_pattern": (
        "gpt2",
        dict(target_modules=["c_attn"], r=4, layers_to_transform=0, layers_pattern="h", fan_in_fan_out=True),
    ),
    "exclude_modules list": (
        "llama",
        dict(target_modules=["q_proj", "v_proj"], r=4, exclude_modules=["model.layers.0.self_attn.q_proj"]),
    ),
    "exclude_modules regex": ("llama", dict(target_modules="all-linear", r=4, exclude_modules=r".*mlp\..*")),
    "bias none": ("bert", dict(target_modules=["query", "value"], r=4, bias="none")),
    "bias all": ("bert", dict(target_modules=["query", "value"], r=4, bias="all")),
    "bias lora_only": ("bert", dict(target_modules=["query", "value", "dense"], r=4, bias="lora_only")),
    "modules_to_save": ("llama", dict(target_modules=["q_proj"], r=4, modules_to_save=["lm_head", "norm"])),
    "modules_to_save + bias all": ("bert", dict(target_modules=["query"], r=4, bias="all", modules_to_save=["cls"])),
    "dora linear": ("llama", dict(target_modules=["q_proj", "v_proj"], r=4, use_dora=True)),
    "dora embedding+conv1d": ("gpt2", dict(target_modules=["c_attn", "wte"], r=4, use_dora=True, fan_in_fan_out=True)),
    "seq_cls": ("bert", dict(target_modules=["query", "value"], r=4, task_type="SEQ_CLS")),
    "seq_cls all-linear": ("roberta", dict(target_modules="all-linear", r=4, task_type="SEQ_CLS", bias="all")),
    "seq_cls score": ("llama", dict(target_modules=["q_proj"], r=4, task_type="SEQ_CLS")),
    "adalora": (
        "bert",
        dict(peft_type="ADALORA", target_modules=["query", "key", "value", "dense"], init_r=6, total_step=100),
    ),
    "adalora conv1d": (
        "gpt2",
        dict(peft_type="ADALORA", target_modules=["c_attn"], init_r=3, total_step=100, fan_in_fan_out=True),
    ),
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_count_equals_peft(option):
    model_type, config = OPTIONS[option]
    task = "sequence-classification" if config.get("task_type") == "SEQ_CLS" else None
    report = count(analysis(model_type, task), config)
    assert report.rows and not report.problems
    assert report.trainable == report.adapter_params + report.bias_params + report.saved_params
    assert_peft_agrees(report)


def test_options_change_the_count():
    """Each option must move the number (else the equality above could hold by accident)."""
    base = count(analysis("qwen2"), dict(target_modules=["q_proj", "v_proj"], r=4)).trainable
    for extra in (
        dict(use_dora=True),
        dict(bias="all"),
        dict(bias="lora_only"),
        dict(modules_to_save=["norm"]),
        dict(layers_to_transform=[0]),
        dict(rank_pattern={"v_proj": 8}),
        dict(exclude_modules=["model.layers.0.self_attn.v_proj"]),
    ):
        assert count(analysis("qwen2"), dict(target_modules=["q_proj", "v_proj"], r=4, **extra)).trainable != base


def test_accepts_peft_config_objects():
    from peft import AdaLoraConfig, LoraConfig

    report = count(analysis("bert"), LoraConfig(target_modules=["query"], r=2))
    assert report.method == "LoRA" and len(report.rows) == 2
    ada = count(analysis("bert"), AdaLoraConfig(target_modules=["query"], init_r=5, total_step=10))
    assert ada.method == "AdaLoRA" and {row.r for row in ada.rows} == {5}
    assert_peft_agrees(ada)


SEEDS = {
    "falcon": (
        "tiiuae/falcon-7b",
        dict(target_modules=["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], r=8),
    ),
    "opt": ("facebook/opt-6.7b", dict(target_modules=["q_proj", "v_proj"], r=16)),
    "flan-t5": ("google/flan-t5-xxl", dict(target_modules=["q", "v"], r=16, task_type="SEQ_2_SEQ_LM")),
    "bert lora": ("bert-base-uncased", dict(target_modules=["query", "key", "value", "dense"], r=8)),
    "bert adalora": (
        "bert-base-uncased",
        dict(peft_type="ADALORA", target_modules=["query", "key", "value", "dense"], init_r=12, total_step=1000),
    ),
    "qwen2": (
        "Qwen/Qwen2-0.5B",
        dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], r=8),
    ),
}


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_examples(seed):
    model_id, config = SEEDS[seed]
    if not (DATA / f"{model_id.replace('/', '--')}.json").exists():
        pytest.skip(f"{model_id} is not in the bundled catalog")
    report = count(model_id, config)
    assert not report.problems
    assert_peft_agrees(report)
    targets = set(config["target_modules"])
    assert {row.layer.leaf for row in report.rows} == targets


def test_nothing_matched_lists_the_real_names_by_role():
    with pytest.raises(OptionError, match=r"\(a list.*matches nothing.*by role: attention: q_proj \(q\), v_proj"):
        count(analysis("llama"), dict(target_modules=["q_projj", "vproj"]))
    with pytest.raises(OptionError, match=r"by role: attention: query \(q\), value \(v\)"):
        count(analysis("bert"), dict(target_modules=["q_proj", "v_proj"]))
    with pytest.raises(OptionError, match="layers_to_transform"):
        count(analysis("llama"), dict(target_modules=["q_proj"], layers_to_transform=[7]))


def test_warnings_in_plain_words():
    llama = analysis("llama")
    with pytest.raises(OptionError, match=r"looks like a list of leaf names: write .*\['q_proj', 'v_proj'\]"):
        count(llama, dict(target_modules="q_proj|v_proj"))
    text = " | ".join(count(llama, dict(target_modules=r".*\.(q_proj|v_proj)")).warnings)
    assert "one string, so PEFT reads it as a regex" in text and "4 layers match" in text
    text = " | ".join(count(llama, dict(target_modules=["q_proj", "vproj"])).warnings)
    assert "'vproj' matches nothing" in text and "v_proj" in text
    text = " | ".join(count(llama, dict(target_modules=["q_proj", "lm_head", "embed_tokens"])).warnings)
    assert "heads" in text and "lm_head" in text and "embeddings" in text
    text = " | ".join(count(analysis("gpt2"), dict(target_modules=["c_attn"])).warnings)
    assert "fan_in_fan_out=True" in text
    text = " | ".join(
        count(analysis("bert"), dict(target_modules=["query"], modules_to_save=["cls"], bias="all")).warnings
    )
    assert "full copy of cls" in text and "counted in both trainable and total" in text
    assert "LayerNorm biases included" in text
    text = " | ".join(count(analysis("llava"), dict(target_modules=["q_proj"])).warnings)
    assert "vision/audio tower" in text
    router = count(analysis("mixtral"), dict(target_modules=["gate"], r=4))
    assert "MoE router" in " | ".join(router.warnings)
    assert_peft_agrees(router)


def test_peft_refusals_are_problems_and_peft_refuses_them():
    cases = [
        ("deepseek_v3", dict(target_parameters=["experts.down_proj"], r=4, lora_dropout=0.1), "lora_dropout"),
        ("deepseek_v3", dict(target_parameters=["experts.down_proj"], r=4, use_dora=True), "DoRA"),
        ("llama", dict(target_modules=["self_attn"], r=4), "not a layer LoRA can wrap"),
        ("llama", dict(peft_type="ADALORA", target_modules=["embed_tokens", "q_proj"], total_step=10), "AdaLoRA"),
    ]
    for model_type, config, words in cases:
        report = count(analysis(model_type), config)
        assert any(words in p for p in report.problems), report.problems
        assert verify_count(report).error is not None  # PEFT refuses it too


def test_rich_table_and_mimebundle():
    from rich.console import Console

    report = count(analysis("bert"), dict(target_modules=["query", "value"], r=4, bias="all"))
    console = Console(width=140, record=True, color_system=None)
    console.print(report)
    text = console.export_text()
    assert "attention" in text and f"{report.trainable:,}" in text and "bias=all" in text
    bundle = report._repr_mimebundle_()
    assert f"{report.total:,}" in bundle["text/plain"] and "<" in bundle["text/html"]


def _cli(argv):
    parser = argparse.ArgumentParser(prog="modscope")
    add_parser(parser.add_subparsers(dest="command"))
    return run(parser.parse_args(["check", *argv]))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_config("llama", architectures=["LlamaForCausalLM"]).save_pretrained(path)
    return str(path)


def test_cli_options_json(tiny_dir, capsys):
    code = _cli(
        [
            tiny_dir,
            "--target-modules",
            "q_proj",
            "v_proj",
            "--r",
            "4",
            "--alpha",
            "8",
            "--bias",
            "all",
            "--modules-to-save",
            "norm",
            "--dora",
            "--rank-pattern",
            '{"v_proj": 8}',
            "--layers-to-transform",
            "0",
            "1",
            "--exclude-modules",
            "model.layers.1.self_attn.q_proj",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verification"]["match"]
    assert doc["verification"]["peft"] == doc["trainable"] and doc["verification"]["peft_all"] == doc["total"]
    assert len(doc["layers"]) == 3 and {l["r"] for l in doc["layers"]} == {4, 8}


def test_cli_regex_and_target_parameters(tiny_dir, capsys):
    code = _cli([tiny_dir, "--target-modules", r"model\.layers\.\d+\.mlp\.(up|down)_proj", "--r", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "treated as a regex" in out and "✔" in out
    code = _cli([tiny_dir, "--target-parameters", "mlp.up_proj.weight", "--r", "2", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["verification"]["match"]


def test_cli_config_files(tiny_dir, tmp_path, capsys):
    adapter = tmp_path / "adapter_config.json"
    adapter.write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "base_model_name_or_path": "x",
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["o_proj"],
                "revision": None,
                "task_type": "CAUSAL_LM",
            }
        )
    )
    assert _cli([tiny_dir, "--config", str(adapter), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 2
    yaml_file = tmp_path / "lora.yaml"
    yaml_file.write_text("r: 4\ntarget_modules: [gate_proj]\nbias: lora_only\n")
    assert _cli([tiny_dir, "--config", str(yaml_file), "--r", "2", "--json"]) == 0
    assert {l["r"] for l in json.loads(capsys.readouterr().out)["layers"]} == {2}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        _cli([tiny_dir, "--config", str(tmp_path / "bad.json")])


def test_cli_nothing_matched_is_an_option_error(tiny_dir):
    with pytest.raises(OptionError, match=r"by role: attention: o_proj \(o\)"):
        _cli([tiny_dir, "--target-modules", "out_proj"])
    with pytest.raises(OptionError, match="--target-modules"):
        _cli([tiny_dir])
    with pytest.raises(OptionError, match="rank-pattern"):
        _cli([tiny_dir, "--target-modules", "q_proj", "--rank-pattern", "{v_proj: 8"])
