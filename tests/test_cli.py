"""The command line as a user meets it: output, JSON, exit codes, one-line errors."""

import gc
import json
import os
import subprocess
import sys

import pytest

from modscope.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_qwen2_json_is_verified_by_peft(capsys):
    code, out, _ = run(capsys, "show", "Qwen/Qwen2-0.5B", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["source"] == "catalog" and doc["model_type"] == "qwen2"
    assert doc["architecture"] == "Qwen2ForCausalLM" and doc["task"] == "causal-lm"
    assert doc["total_params"] == 494_032_768  # published config, tied embeddings counted once
    preset = doc["presets"]["all-linear"]
    assert preset["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    ver = doc["verification"]
    assert ver["match"] and ver["preset"] == "all-linear" and ver["r"] == 8
    assert ver["peft"] == ver["predicted"] == preset["trainable"]["8"]
    assert ver["peft_all"] == doc["total_params"] + ver["peft"]
    assert {l["role"] for l in doc["layers"]} >= {"q", "k", "v", "o", "gate", "up", "down", "embed", "lm_head"}
    assert set(doc["layers"][0]) >= {"name", "class", "role", "in_features", "out_features", "params"}


def test_show_prints_tree_config_table_and_verification(capsys):
    code, out, _ = run(capsys, "show", "Qwen/Qwen2-0.5B", "--r", "8", "16")
    assert code == 0
    assert "(0-23): 24 × Qwen2DecoderLayer" in out
    assert "494,032,768" in out
    assert "config = LoraConfig(" in out and '"gate_proj",' in out
    assert "0.8826%" in out
    assert "verified with PEFT" in out


def test_show_pauses_the_garbage_collector_only_while_it_runs(capsys, monkeypatch):
    seen = []
    import modscope.analysis

    real = modscope.analysis.analyze
    monkeypatch.setattr(modscope.analysis, "analyze", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))
    assert gc.isenabled()
    assert run(capsys, "show", "Qwen/Qwen2-0.5B", "--no-verify")[0] == 0
    assert seen == [False] and gc.isenabled()
    assert run(capsys, "show", "no/such-model-xyz")[0] == 2  # also after an error
    assert gc.isenabled()


def test_lora_config_printed_is_copy_pasteable(capsys):
    code, out, _ = run(capsys, "show", "Qwen/Qwen2-0.5B", "--no-verify", "--preset", "qv")
    assert code == 0
    start = out.index("from peft import LoraConfig")
    end = out.index("\n)", start) + 2
    namespace = {}
    exec(out[start:end], namespace)
    assert namespace["config"].target_modules == {"q_proj", "v_proj"}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["show", "Qwen/Qwen2-0.5b-instrukt"], ["unknown model", "Qwen/Qwen2-0.5B"]),
        (["show", "qwen2-0.5"], ["unknown model", "did you mean"]),
        (["show", "Qwen/Qwen2-0.5B", "--r", "0"], ["positive integer"]),
        (["show", "Qwen/Qwen2-0.5B", "--r", "eight"], ["positive integer"]),
        (["show", "Qwen/Qwen2-0.5B", "--preset", "everything"], ["invalid choice"]),
        (["show", "Qwen/Qwen2-0.5B", "--task", "painting"], ["invalid choice"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    assert code == 2
    _assert_one_line(err, words)


def _assert_one_line(err, words):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


def _isolated(argv):
    """Run ``main(argv)`` in a fresh interpreter: (the heavy modules it imported, what it printed)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from modscope.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n    main(json.loads(sys.argv[1]))\n"
        "print(json.dumps([m for m in ('torch', 'transformers', 'peft') if m in sys.modules]))\n"
        "print(buf.getvalue())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, check=True
    ).stdout
    heavy, _, printed = out.partition("\n")
    return json.loads(heavy), printed


def test_help_does_not_import_torch_transformers_or_peft():
    heavy, printed = _isolated(["--help"])
    assert heavy == [] and "show" in printed


def test_catalog_lists_entries_without_torch():
    heavy, printed = _isolated(["catalog", "qwen2", "--json"])
    assert heavy == []
    rows = json.loads(printed)["models"]
    assert any(r["id"] == "Qwen/Qwen2-0.5B" and r["total_params"] == 494_032_768 for r in rows)
    heavy, printed = _isolated(["catalog"])
    assert heavy == [] and "Qwen/Qwen2-0.5B" in printed


def test_show_prints_nothing_on_stderr_but_its_own_lines():
    """Libraries' start-up log lines (bitsandbytes' CPU build warns of a missing optional kernel on every
    import, peft imports it) do not reach the terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "modscope", "show", "Qwen/Qwen2-0.5B"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0 and proc.stderr == ""
