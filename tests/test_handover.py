"""What a user takes away, taken as they take it: the LoraConfig `show` prints is exec'd (captured at
several terminal widths), the JSON is loaded and validated against the shipped schema, and both are
injected with PEFT, which must wrap the plan's layers and count the plan's parameters."""

import json
import os
import random
import re
from importlib import resources

import jsonschema
import pytest
from peft import LoraConfig
from rich.console import Console
from test_scan import SAMPLE, analysis
from tiny import tiny_config

from modscope.cli import main
from modscope.inject import compare
from modscope.render.json import show_document
from modscope.render.python import WIDTH, config_code, literal
from modscope.render.readback import pasted_config
from modscope.render.rich import show_view

WIDTHS = (60, 80, 200)
R = 8


def schema(name):
    """The schema as installed with the package (CI tests the wheel, so this also proves it ships)."""
    return json.loads((resources.files("modscope") / "schemas" / f"{name}.schema.json").read_text())


def validate(document, name):
    jsonschema.Draft202012Validator(schema(name)).validate(document)


def printed_code(text):
    """The LoraConfig code block of `show`'s output, as a user selects it."""
    lines = text.splitlines()
    start = lines.index("from peft import LoraConfig")
    end = lines.index(")", start)
    return "\n".join(lines[start : end + 1])


def rendered(renderable, width):
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, color_system=None, file=sink)
        console.print(renderable, crop=False)  # as the CLI prints it
    return console.export_text()


@pytest.mark.parametrize("model_type", SAMPLE)
def test_printed_code_and_json_inject_to_the_plan(model_type):
    a = analysis(model_type)
    plans = a.plans()
    assert plans, f"no preset selects a layer of {model_type}"
    document = json.loads(json.dumps(show_document(a, plans, (4, R), R)))
    validate(document, "show")
    for name, plan in plans.items():
        expected = plan.lora_config(R)
        codes = {width: printed_code(rendered(show_view(a, plans, name, (R,), R), width)) for width in WIDTHS}
        for width, code in codes.items():
            assert pasted_config(code) == expected, f"{name} at width {width}:\n{code}"
        loaded = LoraConfig(**document["presets"][name]["lora_config"])
        assert loaded == expected
        for taken in (pasted_config(codes[60]), loaded):
            report = compare(
                a.fresh_model(), taken, label=name, r=R, predicted=plan.trainable_params(R), expected=plan.wrapped
            )
            assert report.match, report.summary
            assert report.peft == document["presets"][name]["trainable"][str(R)]


def test_regex_plans_are_printed_as_working_raw_strings():
    """The seed's bug: r'bert\\\\.encoder…' matched nothing once pasted."""
    a = analysis("bert")
    plan = a.suggest("all-linear")
    assert isinstance(plan.target_modules, str)
    code = printed_code(rendered(show_view(a, a.plans(), "all-linear", (R,), R), 60))
    assert r'r"bert\.encoder\.layer\.\d+\.' in code and "\\\\" not in code
    assert max(len(line) for line in code.splitlines()) <= WIDTH
    names = [n for n in a.module_names if re.fullmatch(pasted_config(code).target_modules, n)]
    assert set(names) == plan.wrapped


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny configs on disk, for the command line."""
    paths = {}
    for model_type, arch in (
        ("bert", "BertModel"),
        ("deepseek_v3", "DeepseekV3ForCausalLM"),
        ("gpt2", "GPT2LMHeadModel"),
        ("llava", None),
    ):
        path = tmp_path_factory.mktemp(model_type)
        extra = {"architectures": [arch]} if arch else {}
        tiny_config(model_type, **extra).save_pretrained(path)
        paths[model_type] = str(path)
    return paths


@pytest.mark.parametrize("model_type", ["bert", "deepseek_v3", "gpt2", "llava"])
def test_cli_output_at_every_width_pastes_to_the_json_config(model_type, saved, capsys, monkeypatch):
    for preset in ("qv", "mlp", "all-linear"):
        assert main(["show", saved[model_type], "--preset", preset, "--r", "16", "--json", "--no-verify"]) == 0
        document = json.loads(capsys.readouterr().out)
        validate(document, "show")
        from_json = LoraConfig(**document["presets"][preset]["lora_config"])
        for width in WIDTHS:
            monkeypatch.setenv("COLUMNS", str(width))
            assert main(["show", saved[model_type], "--preset", preset, "--r", "16", "--no-verify"]) == 0
            out = capsys.readouterr().out
            code = printed_code(out)
            assert pasted_config(code) == from_json, f"{preset} at width {width}:\n{code}"
            assert max(len(line) for line in out.splitlines()) <= max(width, WIDTH)  # the terminal's width


def test_show_verifies_what_it_prints(saved, capsys):
    assert main(["show", saved["deepseek_v3"], "--r", "8", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    validate(document, "show")
    assert document["verification"]["match"]
    assert document["verification"]["peft"] == document["presets"]["all-linear"]["trainable"]["8"]


def test_every_json_output_validates(saved, capsys):
    from modscope import scan

    assert main(["check", saved["bert"], "--target-modules", "query", "value", "--json"]) == 0
    validate(json.loads(capsys.readouterr().out), "check")
    assert (
        main(
            [
                "check",
                saved["deepseek_v3"],
                "--target-modules",
                "q_a_proj",
                "--target-parameters",
                "experts.down_proj",
                "--json",
                "--no-verify",
            ]
        )
        == 0
    )
    validate(json.loads(capsys.readouterr().out), "check")
    assert main(["catalog", "qwen", "--json"]) == 0
    validate(json.loads(capsys.readouterr().out), "catalog")
    parser_args = ["scan", "llama", "detr", "--json"]
    assert main(parser_args) == 0
    validate(json.loads(capsys.readouterr().out), "scan")
    assert scan.all_model_types()  # the scan above ran against the installed transformers


def test_schemas_are_strict_enough_to_fail():
    document = json.loads(json.dumps(show_document(analysis("llama"), analysis("llama").plans(), (R,), R)))
    validate(document, "show")
    for broken in (
        {**document, "schema_version": 2},
        {**document, "surprise": 1},
        {**document, "presets": {"qv": {**document["presets"]["qv"], "lora_config": {"r": 0}}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "show")


_PIECES = [r"\.", r"\d+", "(?:", ")", "|", "q_proj", "layers", "'", '"', "\\", "é", " ", "a" * 30, r"\\", "[0-9]"]


@pytest.mark.parametrize("seed", range(40))
def test_any_string_or_container_prints_as_an_equal_literal(seed):
    rng = random.Random(seed)
    text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 40)))
    values = {
        "target_modules": text,
        "names": [text, "v_proj"],
        "rank_pattern": {text: 16, "v": 2},
        "flag": True,
        "nothing": None,
        "ratio": 0.05,
    }
    code = config_code(values, cls="dict", module="builtins")
    assert pasted_config(code) == values
    if "\\" not in text and "'" not in text and '"' not in text and len(text) > WIDTH:
        assert all(len(line) <= WIDTH for line in literal(text, 4, "    "))
