"""Writes and executes notebooks/check_param_counts.ipynb (run: python notebooks/make_check_param_counts.py)."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELLS = [
    (
        "markdown",
        "# Check LoRA parameter counts with modscope\n\nAnalyse Qwen/Qwen2-0.5B from the bundled catalog "
        "(offline, on the meta device), build the suggested `LoraConfig`, apply it with PEFT and check that "
        "PEFT's own count equals modscope's. Then check a seed config from a blog post.",
    ),
    (
        "code",
        "import os\nos.environ['HF_HUB_OFFLINE'] = '1'\nimport warnings\nwarnings.filterwarnings('ignore')\n\n"
        "import modscope\n\na = modscope.analyze('Qwen/Qwen2-0.5B')\na",
    ),
    (
        "code",
        "s = a.suggest('all-linear')\nprint(s.target_modules)\n"
        "{r: f'{s.trainable_params(r):,} ({s.trainable_percent(r):.4f}%)' for r in (4, 8, 16, 32, 64, 128)}",
    ),
    (
        "code",
        "import peft\nimport torch\nimport transformers\n\nconfig = s.lora_config(r=8)\n"
        "with torch.device('meta'):\n    model = transformers.AutoModelForCausalLM.from_config(a.resolved.config)\n"
        "peft_model = peft.get_peft_model(model, config, low_cpu_mem_usage=True)\n"
        "peft_model.print_trainable_parameters()\n"
        "trainable, total = peft_model.get_nb_trainable_parameters()\n"
        "assert trainable == s.trainable_params(8), (trainable, s.trainable_params(8))\n"
        "assert total == a.total_params + trainable\n"
        "print(f'modscope and PEFT agree: {trainable:,} trainable of {total:,}')",
    ),
    (
        "markdown",
        "## A picture of the block\n\nOne repeated block (and one of each tower, on a multimodal model) with its "
        "layers coloured by role; the layers the plan adapts are solid and framed, with their LoRA parameters at "
        "r=8. `a.draw('qv')` draws a preset; `modscope show MODEL --svg block.svg` writes the same picture. "
        "Needs `pip install 'modscope[draw]'` (matplotlib).",
    ),
    ("code", "s.draw(a, r=8)"),
    (
        "markdown",
        "## Hand the setup to a trainer\n\n`modscope export MODEL --to axolotl` (or llama-factory, trl, unsloth, "
        "swift, torchtune) prints the same targets in that trainer's own spelling, headed by modscope's count. "
        "Read back the way axolotl reads its YAML (`lora_r`, `lora_alpha`, `lora_target_modules` into a "
        "`LoraConfig`) and injected with PEFT, it trains exactly that count.",
    ),
    (
        "code",
        "import yaml\nfrom modscope.render.trainers import export\n\n"
        "snippet = export(a, s, 'axolotl', r=8)\nprint(snippet.text)\n"
        "cfg = yaml.safe_load(snippet.text)\n"
        "axolotl_config = peft.LoraConfig(r=cfg['lora_r'], lora_alpha=cfg['lora_alpha'], "
        "target_modules=cfg['lora_target_modules'])\n"
        "with torch.device('meta'):\n    model = transformers.AutoModelForCausalLM.from_config(a.resolved.config)\n"
        "trainable, _ = peft.get_peft_model(model, axolotl_config, low_cpu_mem_usage=True)"
        ".get_nb_trainable_parameters()\n"
        "assert snippet.exact and trainable == snippet.trainable\n"
        "print(f'axolotl would train {trainable:,}, as modscope counted')",
    ),
    ("markdown", "## A seed config: OPT-6.7B with `q_proj`, `v_proj` at r=16"),
    (
        "code",
        "from modscope.check import verify_count\n\n"
        "report = modscope.count('facebook/opt-6.7b', peft.LoraConfig(r=16, target_modules=['q_proj', 'v_proj']))\n"
        "check = verify_count(report)\nassert check.match, check.summary\nprint(check.summary)\nreport",
    ),
    (
        "markdown",
        "## Other PEFT methods on the same model\n\nThe same attention and MLP layers of Qwen2-0.5B, trained with "
        "LoRA, DoRA, VeRA, IA3 and OFT: each count comes from the method's own shapes in PEFT (IA3: one vector per "
        "layer, of `in_features` on the feed-forward `down_proj`; VeRA: `out_features + r`, its shared random "
        "projections being frozen buffers; OFT: blocks of `oft_block_size`), and each is proven with one PEFT "
        "injection. `modscope show MODEL --method oft` prints one method's table across its size and its config.",
    ),
    (
        "code",
        "targets = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']\n"
        "configs = {\n"
        "    'LoRA r=8': peft.LoraConfig(r=8, target_modules=targets),\n"
        "    'DoRA r=8': peft.LoraConfig(r=8, target_modules=targets, use_dora=True),\n"
        "    'VeRA r=256': peft.VeraConfig(r=256, target_modules=targets),\n"
        "    'IA3': peft.IA3Config(target_modules=targets, feedforward_modules=['down_proj']),\n"
        "    'OFT block 32': peft.OFTConfig(oft_block_size=32, target_modules=targets),\n"
        "}\n"
        "for name, config in configs.items():\n"
        "    report = modscope.count(a, config)\n"
        "    check = verify_count(report)\n"
        "    assert check.match and check.peft_all == report.total, check.summary\n"
        "    print(f'{name:>13}: {report.trainable:>10,} trainable ({report.trainable_percent:.4f}%), PEFT agrees')",
    ),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source))
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    nbformat.write(execute(build(), here), here / "check_param_counts.ipynb")
