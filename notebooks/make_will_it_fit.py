"""Writes and executes notebooks/will_it_fit.ipynb (run: python notebooks/make_will_it_fit.py)."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELLS = [
    (
        "markdown",
        "# Will it fit? The peak memory of a LoRA training step\n\n"
        "`modscope.memory` runs two training steps of the model, adapted by PEFT, on fake tensors (shapes, no "
        "data) and counts the bytes of live tensor storage at every op: weights, adapters, gradients, optimizer "
        "states and activations at the peak, and the op where it falls. Offline, from the bundled catalog, in "
        "seconds for any size of model.",
    ),
    (
        "code",
        "import os\nos.environ['HF_HUB_OFFLINE'] = '1'\nimport warnings\nwarnings.filterwarnings('ignore')\n\n"
        "import modscope\n\n"
        "a = modscope.analyze('meta-llama/Llama-3.1-8B')\n"
        "report = modscope.memory(a, preset='all-linear', r=16, batch=1, seq=2048, gradient_checkpointing=True,\n"
        "                         gpu='24GiB')\nreport",
    ),
    (
        "code",
        "GiB = 2**30\n{name: round(value / GiB, 2) for name, value in report.terms.items()}, "
        "round(report.peak_bytes / GiB, 2), report.fit.largest",
    ),
    (
        "markdown",
        "## Peak memory against sequence length\n\nThe same step at each sequence length: LoRA with and without "
        "gradient checkpointing, and QLoRA (the base weights in bitsandbytes' nf4), against a 24 GiB GPU (less a "
        "typical CUDA context). The logits of the loss, upcast to fp32, grow with the sequence whatever "
        "checkpointing does.",
    ),
    (
        "code",
        "import matplotlib.pyplot as plt\nfrom modscope.simulate.fit import CONTEXT\n\n"
        "lengths = [256, 512, 1024, 2048, 4096, 8192]\ncurves = {}\n"
        "setups = {\n"
        "    'LoRA': dict(),\n"
        "    'LoRA, gradient checkpointing': dict(gradient_checkpointing=True),\n"
        "    'QLoRA (nf4), gradient checkpointing': dict(gradient_checkpointing=True, quant='nf4'),\n"
        "}\n"
        "for label, options in setups.items():\n"
        "    curves[label] = [modscope.memory(a, preset='all-linear', r=16, seq=n, **options).peak_bytes / GiB\n"
        "                     for n in lengths]\n\n"
        "fig, ax = plt.subplots(figsize=(7, 4))\n"
        "for label, peaks in curves.items():\n"
        "    ax.plot(lengths, peaks, marker='o', label=label)\n"
        "ax.axhline((24 * GiB - CONTEXT) / GiB, color='red', linestyle='--',\n"
        "           label='24 GiB GPU, less the CUDA context')\n"
        "ax.set_xscale('log', base=2)\nax.set_xticks(lengths, [str(n) for n in lengths])\n"
        "ax.set_xlabel('sequence length (batch 1)')\nax.set_ylabel('peak allocated, GiB')\n"
        "ax.set_title('Llama-3.1-8B, all-linear r=16, bf16, AdamW')\nax.legend()\nplt.show()\n"
        "{label: [round(p, 1) for p in peaks] for label, peaks in curves.items()}",
    ),
]


def main() -> None:
    path = Path(__file__).with_name("will_it_fit.ipynb")
    nb = nbformat.v4.new_notebook()
    for kind, source in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    main()
