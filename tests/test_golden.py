"""Golden outputs: the rich text (100 columns, no colour) and the JSON of `show`, `check` and `scan` for a
handful of models, pinned so that moving code cannot change what users see. Versions and timings are
masked. After an intended change: MODSCOPE_UPDATE_GOLDEN=1 pytest tests/test_golden.py, then read the diff."""

import os
import re
from pathlib import Path

import pytest

from modscope.cli import main

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "show-qwen2": ["show", "Qwen/Qwen2-0.5B"],
    "show-bert": ["show", "bert-base-uncased", "--preset", "attention", "--r", "4", "8"],
    "show-deepseek-v3": ["show", "deepseek-ai/DeepSeek-V3", "--r", "8", "16"],
    "show-gpt2": ["show", "gpt2", "--preset", "qv"],
    "show-llava": ["show", "llava-hf/llava-1.5-7b-hf", "--include-projector", "--r", "8"],
    "check-qwen2": [
        "check",
        "Qwen/Qwen2-0.5B",
        "--target-modules",
        "q_proj",
        "v_proj",
        "down_proj",
        "--r",
        "8",
        "--rank-pattern",
        '{"down_proj": 16}',
        "--bias",
        "all",
        "--modules-to-save",
        "lm_head",
    ],
    "check-bert-adalora": [
        "check",
        "bert-base-uncased",
        "--config",
        str(Path(__file__).parent / "fixtures" / "adapter_configs" / "peft-0.13-adalora-bert"),
    ],
    "check-deepseek-v3": [
        "check",
        "deepseek-ai/DeepSeek-V3",
        "--target-modules",
        "q_a_proj",
        "--target-parameters",
        "experts.gate_up_proj",
        "experts.down_proj",
        "--r",
        "4",
    ],
    "scan": ["scan", "llama", "gpt2", "qwen2_moe", "detr", "--all"],
}


def _masked(text):
    import peft
    import transformers

    text = text.replace(peft.__version__, "<peft>").replace(transformers.__version__, "<transformers>")
    text = re.sub(r'"seconds": [0-9.]+', '"seconds": 0', text)
    return re.sub(r"\b[0-9]+\.[0-9] s\b", "0.0 s", text)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("form", ["txt", "json"])
def test_output_is_unchanged(case, form, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    argv = CASES[case] + (["--json"] if form == "json" else [])
    code = main(argv)
    out = _masked(capsys.readouterr().out)
    path = GOLDEN / f"{case}.{form}"
    if os.environ.get("MODSCOPE_UPDATE_GOLDEN") == "1":
        path.write_text(f"exit {code}\n{out}")
    assert f"exit {code}\n{out}" == path.read_text()
