"""Every PEFT method modscope counts beyond LoRA, with its defaults and one set of other options, on every pinned
family: the predicted count equals PEFT's ``get_nb_trainable_parameters()`` after a real injection, and where
PEFT refuses (a Linear-only method on GPT-2's Conv1D, a block size that divides nothing) modscope refuses too.

Targets come from modscope's analysis (the language attention and MLP leaves), option values from the
method's own knobs; the numbers come from PEFT. The injections run on the meta device (PEFT can inject every
method there); ``test_meta_equals_real`` holds each method's meta count to PEFT on a tiny REAL CPU model."""

import copy
import json
import os
from functools import cache
from pathlib import Path

import pytest
import torch
from tiny import TINY, tiny_config

import modscope
from modscope.check import verify_count
from modscope.errors import OptionError
from modscope.inject import inject, wrapped_layers
from modscope.methods import LORA_TYPES, METHODS, method, refusal

TYPES = [t for t in METHODS.values() if t not in LORA_TYPES]
TASK_TYPES = {"causal-lm": "CAUSAL_LM", "seq2seq-lm": "SEQ_2_SEQ_LM", "speech-seq2seq": "SEQ_2_SEQ_LM"}


@cache
def family(model_type):
    return modscope.analyze(tiny_config(model_type))


def _leaves(analysis, *groups):
    return sorted(
        {l.leaf for l in analysis.layers if l.group in groups and l.part == "language" and l.parameter is None}
    )


def values(peft_type, option, analysis):
    """The config fields of ``peft_type`` with its defaults ("default") or other options ("options")."""
    other = option == "options"
    if peft_type in ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING", "ADAPTION_PROMPT"):
        out = dict(peft_type=peft_type, task_type=TASK_TYPES.get(analysis.task, "FEATURE_EXTRACTION"))
        if peft_type == "ADAPTION_PROMPT":
            return dict(out, adapter_len=4, adapter_layers=2 if other else 1)
        out["num_virtual_tokens"] = 5 if other else 8
        if other and peft_type == "PROMPT_TUNING":
            out["prompt_tuning_init"] = "SAMPLE_VOCAB"
        if other and peft_type == "PREFIX_TUNING":
            out.update(prefix_projection=True, encoder_hidden_size=24)
        if other and peft_type == "P_TUNING":
            out.update(encoder_reparameterization_type="LSTM", encoder_num_layers=2, encoder_hidden_size=16)
        return out
    attention, mlp = _leaves(analysis, "attention"), _leaves(analysis, "mlp", "shared_experts")
    out = dict(peft_type=peft_type, target_modules=attention + [m for m in mlp if m not in attention])
    if not other:
        return out
    down = [l.leaf for l in analysis.layers if l.role == "down" and l.leaf in out["target_modules"]]
    options = {
        "IA3": dict(feedforward_modules=sorted(set(down))),
        "LOHA": dict(r=4, alpha=8, rank_pattern={attention[0]: 2}, use_effective_conv2d=True),
        "LOKR": dict(r=2, decompose_both=True, decompose_factor=4, rank_pattern={attention[-1]: 16}),
        "VERA": dict(r=8, bias="all", layers_to_transform=[1]),
        "OFT": dict(r=4, oft_block_size=0, block_share=True),
        "BOFT": dict(boft_block_size=0, boft_block_num=4, boft_n_butterfly_factor=2, bias="boft_only"),
        "FOURIERFT": dict(n_frequency=50, n_frequency_pattern={out["target_modules"][-1]: 20}),
        "HRA": dict(r=3, apply_GS=True, bias="all"),
        "MISS": dict(r=8, init_weights="bat"),
    }[peft_type]
    return dict(out, **options)


def peft_config(fields):
    from peft import PeftConfig

    return PeftConfig.from_peft_type(**copy.deepcopy(fields))


def peft_injects(model, fields):
    """PEFT's (trainable, all) and wrapped layers on ``model``, or the exception it raises."""
    try:
        peft_model, counts = inject(model, peft_config(fields))
    except Exception as exc:  # PEFT's own refusal, whatever its type
        return exc
    return counts, wrapped_layers(peft_model)


@pytest.mark.parametrize("option", ["default", "options"])
@pytest.mark.parametrize("peft_type", TYPES)
def test_count_equals_peft(peft_type, option):
    """All families in one test per method and option set: an analysis is cached, each injection is fast."""
    failures = []
    for model_type in sorted(TINY):
        analysis = family(model_type)
        fields = values(peft_type, option, analysis)
        try:
            report = modscope.count(analysis, peft_config(fields))
        except OptionError as refused:
            got = peft_injects(analysis.fresh_model(), fields)
            if not isinstance(got, Exception):
                failures.append(f"{model_type}: modscope refused ({refused}) but PEFT counts {got[0]}")
            continue
        got = peft_injects(analysis.fresh_model(), fields)
        if isinstance(got, Exception):
            failures.append(f"{model_type}: modscope counts {report.trainable} but PEFT refuses: {got}")
        elif got[0] != (report.trainable, report.total) or got[1] != report.wrapped:
            failures.append(f"{model_type}: modscope {report.trainable, report.total}, PEFT {got[0]}")
    assert not failures, "\n".join(failures)


@cache
def real_model(model_type):
    import transformers

    analysis = family(model_type)
    torch.manual_seed(0)
    return getattr(transformers, analysis.architecture)._from_config(analysis.resolved.config)


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "t5", "blip-2"])
def test_meta_equals_real(model_type):
    """The truth is PEFT on a real model: every method and option set, injected into a tiny real CPU model
    (PEFT's default path, no low_cpu_mem_usage), trains exactly what modscope counts, or both refuse."""
    from peft import get_peft_model

    analysis, failures = family(model_type), []
    for peft_type in TYPES:
        for option in ("default", "options"):
            fields = values(peft_type, option, analysis)
            try:
                report = modscope.count(analysis, peft_config(fields))
            except OptionError:
                report = None
            try:
                peft_model = get_peft_model(copy.deepcopy(real_model(model_type)), peft_config(fields))
            except Exception as exc:
                if report is not None:
                    failures.append(f"{peft_type} {option}: modscope counts, PEFT refuses: {exc}")
                continue
            got = peft_model.get_nb_trainable_parameters()
            if report is None or got != (report.trainable, report.total):
                failures.append(f"{peft_type} {option}: modscope {report and report.trainable}, PEFT {got}")
    assert not failures, "\n".join(failures)


def test_verify_count_proves_each_method():
    """`check`'s own verification (one meta injection) agrees for every method on one family."""
    analysis = family("llama")
    for peft_type in TYPES:
        report = modscope.count(analysis, peft_config(values(peft_type, "options", analysis)))
        verified = verify_count(report)
        assert verified.match and verified.peft_all == report.total, verified.summary


# --- the command line ---------------------------------------------------------------------------------------


def _run(argv, capsys):
    from modscope.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_ia3_explains_in_and_out_and_equals_peft(capsys, monkeypatch):
    """The issue's example: k_proj and v_proj scale their output, down_proj (filled in by PEFT as feed-forward)
    its input; the verification inside `check` (exit 0) is PEFT's own count."""
    monkeypatch.setenv("COLUMNS", "120")
    argv = ["check", "Qwen/Qwen2-0.5B", "--method", "ia3", "--target-modules", "k_proj", "v_proj", "down_proj"]
    code, out, _ = _run(argv, capsys)
    assert code == 0, out
    assert "in 4864" in out and "out 128" in out and "✔ verified" in out
    assert "PEFT fills in its own IA3 default for qwen2, ['down_proj']" in " ".join(out.split())
    code, out, _ = _run([*argv, "--set", "feedforward_modules=[]", "--json"], capsys)
    document = json.loads(out)
    assert code == 0 and {l["basis"].split()[0] for l in document["layers"]} == {"out"}
    assert document["verification"]["peft"] == document["trainable"]
    _valid(document, "check")


def _valid(document, command):
    import jsonschema

    schema = json.loads((Path(modscope.__file__).parent / "schemas" / f"{command}.schema.json").read_text())
    jsonschema.validate(document, schema)


@pytest.mark.parametrize("name", [n for n, t in METHODS.items() if t not in LORA_TYPES])
def test_show_method_prints_a_config_that_pastes_and_equals_peft(name, tmp_path, capsys, monkeypatch):
    """The table per preset and size, the printed code exec'd back to an equal config (inside `show`), and one
    injection of it equal to the count (exit 0)."""
    monkeypatch.setenv("COLUMNS", "160")
    tiny_config("llama").save_pretrained(tmp_path)
    code, out, err = _run(["show", str(tmp_path), "--method", name], capsys)
    assert code == 0, out + err
    m = method(METHODS[name])
    assert f"from peft import {m.config_class}" in out and "✔ verified" in out
    assert all(str(size) in out for size in m.sizes)


@pytest.mark.parametrize("name", ["ia3", "oft", "vera", "prompt-tuning"])
def test_show_method_json_is_valid_and_its_config_is_what_peft_counts(name, tmp_path, capsys):
    """The JSON as a user takes it: validated, ``config`` loaded into the PEFT class it names, and injected:
    PEFT's count equals the document's for the chosen preset and size."""
    import peft

    tiny_config("llama").save_pretrained(tmp_path)
    code, out, err = _run(["show", str(tmp_path), "--method", name, "--json"], capsys)
    assert code == 0, err
    document = json.loads(out)
    _valid(document, "show-method")
    assert document["verification"]["match"]
    config = getattr(peft, document["config_class"])(**document["config"])
    got = peft_injects(modscope.analyze(tiny_config("llama")).fresh_model(), config.to_dict())
    size = str(document["size"]) if document["size"] is not None else "trainable"
    assert got[0][0] == document["presets"][document["chosen"]]["trainable"][size]


def test_linear_only_methods_refuse_conv1d_in_one_line(capsys):
    for name in ("oft", "loha", "miss"):
        code, _, err = _run(["check", "gpt2", "--method", name, "--target-modules", "c_attn"], capsys)
        assert code == 2 and err.count("\n") == 1 and "GPT-2 style Conv1D" in err, err
    code, _, err = _run(["show", "gpt2", "--method", "hra"], capsys)
    assert code == 2 and "refuses transformer.h.0.attn.c_attn" in err


def test_adapter_config_names_the_method(tmp_path, capsys):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps(dict(peft_type="LOHA", r=4, alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    )
    tiny = tmp_path / "model"
    tiny_config("llama").save_pretrained(tiny)
    code, out, err = _run(["check", str(tiny), "--config", str(tmp_path), "--json"], capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["method"] == "LoHa" and document["verification"]["match"]


@pytest.mark.parametrize("peft_type", ["VBLORA", "SHIRA", "WAVEFT"])
def test_methods_modscope_does_not_count_are_refused_with_the_reason(peft_type):
    with pytest.raises(OptionError, match=f"does not count PEFT's {peft_type} adapters: .+It counts LORA"):
        modscope.count(family("llama"), dict(peft_type=peft_type, target_modules=["q_proj"]))
    assert refusal(peft_type).count("\n") == 0


def test_traps_in_plain_words():
    bert = family("bert")
    text = " | ".join(modscope.count(bert, dict(peft_type="IA3", target_modules=["query", "dense"])).warnings)
    assert "also catches" in text and "attention.output.dense" in text  # PEFT's endswith test, no dot
    oft = modscope.count(
        family("llama"), peft_config(dict(peft_type="OFT", target_modules=["q_proj"], oft_block_size=30))
    )
    assert "silently adjusts" in " ".join(oft.warnings) and {row.r for row in oft.rows} == {32}
    boft = dict(peft_type="BOFT", target_modules=["q_proj"], boft_block_size=4, boft_n_butterfly_factor=2)
    assert "depends on the machine" in " ".join(modscope.count(family("llama"), peft_config(boft)).warnings)
    vera = modscope.count(family("llama"), peft_config(dict(peft_type="VERA", target_modules=["q_proj"], r=4)))
    assert "frozen buffers PEFT counts nowhere" in " ".join(vera.warnings)
    prefix = modscope.count(
        family("llama"), dict(peft_type="PREFIX_TUNING", num_virtual_tokens=4, task_type="CAUSAL_LM")
    )
    assert "grouped-query attention" in " ".join(prefix.warnings)
    with pytest.raises(OptionError, match="needs a task_type"):
        modscope.count(family("llama"), dict(peft_type="PROMPT_TUNING", num_virtual_tokens=4))


@pytest.mark.skipif(os.environ.get("MODSCOPE_FULL_SCAN") != "1", reason="set MODSCOPE_FULL_SCAN=1 for the full scan")
def test_full_scan_ia3_and_loha():
    """IA3 and LoHa on the all-linear targets of every model type that builds (as `scan` builds it): modscope's
    count equals PEFT's meta injection, or both refuse."""
    from modscope import reduced
    from modscope import scan as scanning

    failures = []
    for model_type in scanning.all_model_types():
        try:
            analysis = modscope.analyze(reduced.reduced_config(model_type))
            plan = analysis.plans().get("all-linear")
        except Exception:  # the scan itself reports the types that do not build
            continue
        if plan is None or not plan.target_modules_list:
            continue
        for peft_type in ("IA3", "LOHA"):
            fields = dict(peft_type=peft_type, target_modules=plan.target_modules_list)
            try:
                report = modscope.count(analysis, peft_config(fields))
            except OptionError:
                report = None
            got = peft_injects(analysis.fresh_model(), fields)
            if isinstance(got, Exception) != (report is None) or (
                report is not None and got[0] != (report.trainable, report.total)
            ):
                failures.append(f"{model_type} {peft_type}: modscope {report and report.trainable}, PEFT {got}")
    assert not failures, "\n".join(failures)
