"""notebooks/check_param_counts.ipynb: committed with outputs showing matching numbers, and runs clean from scratch."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "check_param_counts.ipynb"


def _text(nb):
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def _agreement(text):
    return re.search(r"modscope and PEFT agree: ([\d,]+) trainable of ([\d,]+)", text)


def test_committed_outputs_show_matching_numbers():
    text = _text(nbformat.read(NOTEBOOK, as_version=4))
    assert _agreement(text) and "trainable params: 4,399,104 || all params: 498,431,872" in text
    assert "verified with PEFT" in text
    assert "axolotl would train 4,399,104, as modscope counted" in text


def test_notebook_runs_clean_from_scratch(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    fresh = _agreement(_text(nb))
    committed = _agreement(_text(nbformat.read(NOTEBOOK, as_version=4)))
    assert fresh and fresh.groups() == committed.groups()


FIT = NOTEBOOK.with_name("will_it_fit.ipynb")


def _curves(nb):
    return re.search(r"\{'LoRA': \[[^\]]+\],\s*'LoRA, gradient checkpointing': \[[^\]]+\],[^}]+\}", _text(nb))


def test_will_it_fit_runs_clean_and_draws_the_same_curves(tmp_path):
    committed = nbformat.read(FIT, as_version=4)
    assert _curves(committed) and "image/png" in str(committed.cells[-1].outputs)
    nb = nbformat.read(FIT, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert _curves(nb).group(0) == _curves(committed).group(0)
