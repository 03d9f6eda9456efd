"""`modscope export`: every format, read back the way its trainer reads it (tests/trainer_readers.py) and injected
with PEFT on a fresh meta model, trains modscope's count, or exactly the difference the snippet states."""

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from tiny import TINY, tiny_config, tiny_vit
from trainer_readers import read

import modscope
from modscope import catalog
from modscope.errors import OptionError
from modscope.inject import compare
from modscope.render.trainers import FORMATS, export
from modscope.render.trainers.torchtune import FAMILIES as TORCHTUNE_FAMILIES

R = 8
ALWAYS_EXACT = {"peft", "json", "axolotl", "unsloth"}
_ANALYSES: dict = {}


def analysis(source):
    if source not in _ANALYSES:
        _ANALYSES[source] = modscope.analyze(tiny_config(source) if source in TINY else source)
    return _ANALYSES[source]


def as_injected(config, a):
    """The trainers here load causal LMs (AutoModelForCausalLM) and say CAUSAL_LM; modscope builds an encoder's
    own architecture (a masked LM), which PEFT's causal-LM wrapper cannot hold. The task type changes no count
    (SEQ_CLS alone adds a head), so such a config is injected without it."""
    if config.task_type == "CAUSAL_LM" and not hasattr(a.model(), "prepare_inputs_for_generation"):
        return dataclasses.replace(config, task_type=None)
    return config


def counted(config):
    """What in a LoraConfig decides what PEFT wraps and counts, or refuses: configs equal in it inject alike."""
    targets = config.target_modules
    return (
        targets if isinstance(targets, str) else sorted(targets or ()),
        sorted(config.target_parameters or ()),
        config.r,
        sorted((config.rank_pattern or {}).items()),
        config.layers_to_transform,
        sorted(config.modules_to_save or ()),
        config.bias,
        config.use_dora,
        bool(config.lora_dropout and config.target_parameters),
        config.task_type == "SEQ_CLS",
    )


def exported(a, plan, r=R, formats=FORMATS, lora_alpha=None):
    """``plan`` in each format that can say it (torchtune has a few families; LLaMA-Factory names no expert)."""
    results = {}
    for fmt in formats:
        try:
            results[fmt] = export(a, plan, fmt, r, lora_alpha)
        except OptionError:
            unsupported = fmt == "torchtune" and a.model_type not in TORCHTUNE_FAMILIES
            unnameable = fmt == "llama-factory" and all(l.kind == "param" for l in plan.layers)  # experts alone
            assert unsupported or unnameable, (fmt, a.model_type)
    return results


def proven(a, plan, r=R, formats=FORMATS, lora_alpha=None, results=None, exact_too=True):
    """Export ``plan`` to each format, read each back as its trainer does, inject it (identical configs once) and
    hold PEFT's count to modscope's, or to the difference stated; returns the exports by format. Without
    ``exact_too``, only the exports stating a difference are injected (see the full scan below)."""
    results = exported(a, plan, r, formats, lora_alpha) if results is None else results
    injected = []
    for fmt, result in results.items():
        assert result.exact or fmt not in ALWAYS_EXACT, (fmt, result.differences)
        if fmt == "json":
            assert json.loads(result.text)["trainable"] == result.trainable
        else:
            assert f"{result.trainable:,} trainable" in result.text.splitlines()[1]
        assert all(str(d) in result.text for d in result.differences)
        if result.exact and not exact_too:
            continue
        config = read(fmt, result.text, a.model())
        report = next((rep for seen, rep in injected if seen == counted(config)), None)
        if report is None:
            report = compare(
                a.fresh_model(),
                as_injected(config, a),
                label=plan.preset,
                r=r,
                predicted=plan.trainable_params(r),
                expected=plan.wrapped,
            )
            injected.append((counted(config), report))
        where = f"{a.model_id} {plan.preset} --to {fmt}:\n{result.text}"
        if result.exact:
            assert report.match, f"{report.summary}\n{where}"
        else:
            assert report.error is None and report.peft == result.trainer_trainable, f"{report.summary}\n{where}"
    return results


@pytest.mark.parametrize("model_type", list(TINY))
def test_every_preset_and_format_reads_back_to_modscopes_count(model_type):
    a = analysis(model_type)
    for plan in a.plans().values():
        proven(a, plan)


def peft_count(a, config, plan):
    """PEFT's injection of a naive spelling, against ``plan``."""
    return compare(
        a.fresh_model(),
        as_injected(config, a),
        label="naive",
        r=R,
        predicted=plan.trainable_params(R),
        expected=plan.wrapped,
    )


def test_qwen2_0_5b_from_the_catalog_is_exact_in_every_format():
    """The issue's example: Qwen/Qwen2-0.5B from the catalog, offline, every format exact."""
    a = analysis("Qwen/Qwen2-0.5B")
    results = proven(a, a.suggest("all-linear"))
    assert set(results) == set(FORMATS) and all(r.exact for r in results.values())
    assert "lora_target: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj" in results["llama-factory"].text


@pytest.mark.parametrize("model_type", ["qwen3_moe", "gpt2", "llama"])
def test_rank_and_alpha_reach_every_format(model_type):
    """r=16 with lora_alpha=8: each trainer's own keys carry both (and the experts' 2r and 2·alpha patterns)."""
    a = analysis(model_type)
    for fmt, result in proven(a, a.suggest("all-linear"), r=16, lora_alpha=8).items():
        config = read(fmt, result.text, a.model())
        assert (config.r, config.lora_alpha) == (16, 8), fmt


# --- the traps of the issue, one test each: the naive spelling trains something else, modscope's does not ---


def test_llama_factory_has_no_regex_so_bert_dense_is_spelled_by_unique_suffixes():
    """`dense` is BERT's attention output, its MLP down projection and the MLM head's transform at once."""
    a = analysis("bert")
    plan = a.suggest("all-linear")
    naive = peft_count(a, read("llama-factory", "lora_target: query,key,value,dense\n", a.model()), plan)
    assert naive.extra == ("cls.predictions.transform.dense",), naive.summary
    ours = proven(a, plan, formats=("llama-factory",))["llama-factory"]
    assert ours.exact and ",dense" not in ours.text and "lora_target: query,key,value,output.dense" in ours.text
    mlp = proven(a, a.suggest("mlp"), formats=("llama-factory",))["llama-factory"]
    assert mlp.exact and "intermediate.dense,0.output.dense,1.output.dense" in mlp.text


def test_torchtune_has_fixed_module_names():
    with pytest.raises(OptionError, match="torchtune has no model builder for bert"):
        export(analysis("bert"), analysis("bert").suggest("qv"), "torchtune")
    a = analysis("llama")
    result = proven(a, a.suggest("mlp"), formats=("torchtune",))["torchtune"]
    (difference,) = result.differences  # no empty lora_attn_modules: the smallest projection (k_proj, GQA) is added
    assert "k_proj" in difference.what and difference.params == R * (64 + 32) * 2
    assert "lora_attn_modules: [k_proj]" in result.text


def test_trl_one_name_list_is_written_as_a_regex_that_matches():
    a = analysis("gpt2")
    plan = a.suggest("qv")
    assert plan.target_modules == ("c_attn",)
    naive = peft_count(a, read("trl", "use_peft: true\nlora_target_modules: [c_attn]\n", a.model()), plan)
    assert naive.error and "c_attn" in naive.error  # TRL made it the string "c_attn": a regex matching no path
    ours = proven(a, plan, formats=("trl",))["trl"]
    assert ours.exact and r"lora_target_modules: '(?:.*\.)?c_attn'" in ours.text


def test_unsloth_gets_a_regex_through_fast_model_and_never_other_modules_to_save():
    a = analysis("gpt2")
    plan = a.suggest("mlp")
    assert isinstance(plan.target_modules, str)
    ours = proven(a, plan, formats=("unsloth",))["unsloth"]
    assert ours.exact and "FastModel.get_peft_model" in ours.text
    naive = ours.text.replace("FastModel", "FastLanguageModel")
    assert read("unsloth", naive, a.model()).target_modules <= set(plan.target_modules)  # its characters
    with pytest.raises(TypeError, match="Only 'lm_head' and 'embed_tokens'"):
        read("unsloth", naive.replace("r=8,", "r=8, modules_to_save=['wte'],"), a.model())
    for model_type in TINY:
        for plan in analysis(model_type).plans().values():
            assert "modules_to_save" not in export(analysis(model_type), plan, "unsloth").text


def test_unsloth_gets_a_classifiers_targets_through_fast_model():
    """FastLanguageModel sets task_type SEQ_CLS on a class named *Classification, and PEFT then trains the head."""
    a = modscope.analyze(tiny_vit())
    plan = a.suggest("qv")
    ours = proven(a, plan, formats=("unsloth",))["unsloth"]
    assert ours.exact and "FastModel.get_peft_model" in ours.text
    naive = peft_count(a, read("unsloth", ours.text.replace("FastModel", "FastLanguageModel"), a.model()), plan)
    assert naive.peft == plan.trainable_params(R) + 32 * 3 + 3, naive.summary  # the classifier, in full


def test_swift_sets_lora_dropout_to_zero_beside_target_parameters():
    a = analysis("qwen3_moe")
    plan = a.suggest("mlp")
    ours = proven(a, plan, formats=("swift",))["swift"]
    assert ours.exact and "--lora_dropout 0" in ours.text
    naive = ours.text.replace(" \\\n    --lora_dropout 0", "")
    assert read("swift", naive, a.model()).lora_dropout == 0.05
    assert peft_count(a, read("swift", naive, a.model()), plan).error  # PEFT refuses dropout on parameter targets


def test_axolotl_never_uses_lora_target_linear():
    """It adds every Linear leaf name: the vision tower and projector of llava, the MoE router of qwen2_moe."""
    linear = "adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_target_linear: true\n"
    for model_type, part in (
        ("llava", "vision_tower"),
        ("llava", "multi_modal_projector"),
        ("qwen2_moe", "expert_gate"),
    ):
        a = analysis(model_type)
        plan = a.suggest("all-linear")
        naive = peft_count(a, read("axolotl", linear, a.model()), plan)
        assert any(part in name for name in naive.extra), naive.summary
        ours = proven(a, plan, formats=("axolotl",))["axolotl"]
        assert ours.exact and "lora_target_linear" not in ours.text


def test_llama_factory_unfreezes_the_vision_tower_and_projector_when_they_are_asked_for():
    a = analysis("llava")
    plan = a.suggest("all-linear", vision=True, projector=True)
    naive = peft_count(a, read("llama-factory", "lora_target: all\n", a.model()), plan)
    assert any("vision_tower" in n for n in naive.missing) and any("multi_modal_projector" in n for n in naive.missing)
    ours = proven(a, plan, formats=("llama-factory",))["llama-factory"]
    assert ours.exact
    assert "freeze_vision_tower: false" in ours.text and "freeze_multi_modal_projector: false" in ours.text


def test_experts_alone_keep_swift_off_all_linear_and_are_out_of_llama_factorys_reach():
    """gpt-oss's MLP is its fused experts alone, a type PEFT does not convert: no module to name."""
    from modscope.reduced import reduced_config

    a = modscope.analyze(reduced_config("gpt_oss"))
    plan = a.suggest("mlp")
    results = proven(a, plan)
    assert "--target_regex '^$'" in results["swift"].text and "lora_target_modules: []" in results["trl"].text
    with pytest.raises(OptionError, match="LLaMA-Factory cannot name any layer of this set"):
        export(a, plan, "llama-factory")


# --- the command line ---


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny configs on disk, for the command line."""
    paths = {}
    for model_type in ("qwen2", "qwen3_moe", "bert", "gpt2"):
        path = tmp_path_factory.mktemp(model_type)
        tiny_config(model_type).save_pretrained(path)
        paths[model_type] = str(path)
    return paths


def test_cli_prints_the_snippet_and_nothing_else_when_it_is_exact(saved, capsys):
    from modscope.cli import main

    assert main(["export", saved["qwen2"], "--to", "axolotl", "--r", "16", "--alpha", "32"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    values = yaml.safe_load(out)
    assert values["lora_r"] == 16 and values["lora_alpha"] == 32 and "q_proj" in values["lora_target_modules"]
    assert main(["export", saved["qwen2"], "--to", "json", "--preset", "qv"]) == 0
    document = json.loads(capsys.readouterr().out)
    validate(document, "export")
    assert document["lora_config"]["target_modules"] == ["q_proj", "v_proj"]


def test_cli_states_each_difference_on_stderr_and_fails_under_strict(saved, capsys, tmp_path):
    from modscope.cli import main

    args = ["export", saved["qwen3_moe"], "--to", "llama-factory", "--preset", "mlp"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "lora_target: gate_proj,up_proj,down_proj" in out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("modscope: warning: llama-factory leaves out 3 layers")
    assert (
        lines[0].endswith("(-3,840 parameters)") and lines[0].removeprefix("modscope: warning: llama-factory ") in out
    )
    assert main([*args, "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "cannot say this set exactly" in err
    target = tmp_path / "lf.yaml"
    assert main([*args, "-o", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and target.read_text().startswith("# modscope:") and len(err.splitlines()) == 1


def test_cli_exports_your_own_targets(saved, capsys):
    from modscope.cli import main

    assert main(["export", saved["gpt2"], "--to", "trl", "--target-modules", "c_attn"]) == 0
    out = capsys.readouterr().out
    assert "your targets c_attn" in out.splitlines()[0] and r"'(?:.*\.)?c_attn'" in out
    a = analysis("gpt2")
    assert f"{a.suggest('qv').trainable_params(R):,} trainable" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "torchtune"], "torchtune has no model builder for bert"),
        (["--to", "peft", "--target-modules", "nothing_here"], "nothing_here"),
        (["--to", "peft", "-o", "/nonexistent/folder/out.py"], "cannot write /nonexistent/folder/out.py"),
        (["--to", "peft", "--preset", "qv", "--include-router"], "--include-router conflicts"),
        (["--to", "yaml"], "invalid choice: 'yaml'"),
        (["--to", "peft", "--r", "0"], "r must be a positive integer"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(saved, capsys, args, message):
    from modscope.cli import main

    assert main(["export", saved["bert"], *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err, err


def validate(document, name):
    from test_handover import validate as against_schema

    against_schema(document, name)


# --- the catalog: the model types the tiny families do not cover, each by its smallest entry; all of it with
# MODSCOPE_FULL_SCAN=1 (about 3 minutes) ---


def _catalog():
    from test_catalog import _native

    return [e for e in catalog.entries() if _native(e)]


def _new_types():
    smallest = {}
    for entry in sorted(_catalog(), key=lambda e: e.total_params or 0):
        if entry.model_type not in TINY:
            smallest.setdefault(entry.model_type, entry)
    return list(smallest.values())


def _every_preset(entry):
    a = analysis(entry.id)
    for plan in a.plans().values():
        proven(a, plan)
    _ANALYSES.pop(entry.id)


@pytest.mark.parametrize("entry", _new_types(), ids=lambda e: e.id)
def test_catalog_model_types_beyond_the_tiny_families(entry):
    _every_preset(entry)


_STRUCTURES: dict = {}  # every export of a model, less its name and counts -> the entry injected for them


def _taken_away(a, results):
    """What a user takes away from each export but the model's name and the counts (the snippets' comments, the
    JSON's trainable): the same for catalog models that differ only in sizes (Qwen2.5's 0.5B to 72B)."""
    shape = []
    for fmt, result in results.items():
        text = result.text.replace(a.model_id, "<model>")
        if fmt == "json":
            document = json.loads(text)
            document.pop("trainable")
            text = json.dumps(document)
        shape.append((fmt, result.exact, [line for line in text.splitlines() if not line.lstrip().startswith("#")]))
    return repr(shape)


@pytest.mark.skipif(not os.environ.get("MODSCOPE_FULL_SCAN"), reason="every catalog model: MODSCOPE_FULL_SCAN=1")
@pytest.mark.parametrize("entry", sorted(_catalog(), key=lambda e: e.total_params or 0), ids=lambda e: e.id)
def test_every_catalog_model_full_scan(entry):
    """Every preset of every catalog model in every format, read back and injected as the trainers do. Models whose
    exports are the same but for name and counts are injected once, the smallest first; for the others the exports
    that state a difference from modscope's count are injected, and their own counts are PEFT's in
    test_catalog.py::test_every_entry_shows_offline_verified_by_peft."""
    a = analysis(entry.id)
    exports = {name: exported(a, plan) for name, plan in a.plans().items()}
    shape = (a.model_type, a.architecture, *(_taken_away(a, results) for results in exports.values()))
    first = _STRUCTURES.setdefault(shape, entry.id) == entry.id
    for name, plan in a.plans().items():
        proven(a, plan, results=exports[name], exact_too=first)
    _ANALYSES.pop(entry.id)


def test_the_readme_shows_what_export_prints():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Hand it to your trainer") : readme.index("## Benchmark")]
    a = analysis("Qwen/Qwen2-0.5B")
    plan = a.suggest("all-linear")
    shown = {}
    for heading, block in re.findall(r"### (\S+)\n.*?```\w+\n(.*?)```", section, re.S):
        shown[heading] = block
    names = {"axolotl": "axolotl", "LLaMA-Factory": "llama-factory", "TRL": "trl", "Unsloth": "unsloth"}
    names |= {"ms-swift": "swift", "torchtune": "torchtune"}
    assert set(shown) == set(names)
    for heading, fmt in names.items():
        assert shown[heading] == export(a, plan, fmt).text, heading
