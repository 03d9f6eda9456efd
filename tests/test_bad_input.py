"""Bad input never crashes or hangs: one line on stderr naming the problem and the fix, exit 2."""

import json
import os
import subprocess
import sys
import time

import pytest

from modscope.cli import main


def one_line_exit_2(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_unknown_id(capsys):
    one_line_exit_2(capsys, ["show", "nobody/no-such-model-xyz"], "unknown model", "modscope catalog")


def test_near_miss_is_offered(capsys):
    one_line_exit_2(capsys, ["show", "meta-llama/Llama-3.1-8b-instrukt"], "did you mean", "meta-llama/Llama-3.1-8B")


def test_empty_directory(capsys, tmp_path):
    one_line_exit_2(capsys, ["show", str(tmp_path)], "has no config.json")


@pytest.mark.parametrize("text", ['{"model_type": "llama", "hidden', "", "[1, 2]", '{"hidden_size": 8}'])
def test_malformed_or_truncated_config(capsys, tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    one_line_exit_2(capsys, ["show", str(tmp_path)], str(tmp_path))


def test_config_without_model_type_names_the_type_its_folder_spells(capsys, tmp_path):
    """prajjwal1/bert-tiny's config.json has no model_type: transformers 4 guessed it from the name, 5 does not."""
    folder = tmp_path / "bert-tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 128, "num_hidden_layers": 2}))
    one_line_exit_2(capsys, ["show", str(folder)], "no 'model_type'", '"model_type": "bert"')


def test_unknown_model_type(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "not_a_real_type"}))
    one_line_exit_2(capsys, ["show", str(tmp_path)], "not_a_real_type", "not known to the installed transformers")


def test_values_transformers_rejects(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "feed_forward_proj": "gated-gelu-x"}))
    one_line_exit_2(capsys, ["show", str(tmp_path)], "t5")


def test_missing_optional_dependency(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dinat"}))
    one_line_exit_2(capsys, ["show", str(tmp_path)], "needs a package that is not installed", "natten")


def test_missing_file(capsys):
    one_line_exit_2(capsys, ["show", "./no/such/dir"], "no such file or directory")


def test_conflicting_options(capsys):
    one_line_exit_2(capsys, ["show", "Qwen/Qwen2-0.5B", "--preset", "qv", "--include-router"], "conflicts")


def test_no_hang_without_network_and_without_hf_hub_offline():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "modscope", "show", "nobody/no-such-model-xyz"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    assert elapsed < 15, f"took {elapsed:.1f}s"
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "HF_HUB_OFFLINE" in lines[0] and "catalog" in lines[0], proc.stderr


def test_only_config_json_is_ever_requested(monkeypatch):
    """Make the Hub look reachable and record every file asked for: only config.json, never weights."""
    import socket

    import huggingface_hub

    from modscope import resolve

    requested = []

    class _Conn:
        def close(self):
            pass

    def fake_download(repo_id, filename, **kwargs):
        requested.append(filename)
        raise OSError("offline test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Conn())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(resolve.ModelNotFoundError):
        resolve.resolve("nobody/no-such-model-xyz")
    assert requested == ["config.json"]
