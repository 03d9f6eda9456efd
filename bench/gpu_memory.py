"""modscope's memory estimate against real training steps on a CUDA GPU (issue 14, item 6).

Run on a machine with one GPU, from the repository root, offline (configs from the bundled catalog, random
weights, no download): ``python bench/gpu_memory.py`` (a few minutes; ``--quick`` for one model). For each
model and setting it runs two training steps as ``modscope memory`` assumes them (weights in bf16, autocast,
AdamW, labels = inputs, the model's default attention) and compares ``torch.cuda.max_memory_allocated()``
and ``max_memory_reserved()`` during the second step with the estimate. Results go to
``bench/gpu-results.json``; the table goes in ``bench/README.md``. Targets: allocated within 3% (or 64 MiB),
reserved within 10%.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [  # model, batch, seq, gradient checkpointing
    ("Qwen/Qwen2-0.5B", 4, 1024, False),
    ("Qwen/Qwen2-0.5B", 4, 1024, True),
    ("meta-llama/Llama-3.2-1B", 2, 2048, False),
    ("meta-llama/Llama-3.2-1B", 2, 2048, True),
    ("gpt2", 8, 1024, False),
    ("Qwen/Qwen3-30B-A3B", 1, 1024, True),
]


def real_step(analysis, lora_config, batch: int, seq: int, checkpointing: bool) -> dict:
    """Two steps on the GPU; the peaks of the second."""
    import torch
    import transformers
    from peft import get_peft_model

    from modscope.build import TASKS

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    config = copy.deepcopy(analysis.resolved.config)
    with torch.device("cuda"):
        model = getattr(transformers, TASKS[analysis.task][0]).from_config(config, dtype=torch.bfloat16)
    model = get_peft_model(model, copy.deepcopy(lora_config))
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, foreach=True)
    ids = torch.randint(0, config.get_text_config().vocab_size, (batch, seq), device="cuda")
    for step in range(2):
        if step == 1:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        del loss
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    found = {
        "allocated": torch.cuda.max_memory_allocated(),
        "reserved": torch.cuda.max_memory_reserved(),
    }
    del model, optimizer, trainable
    return found


def main(argv: list[str] | None = None) -> int:
    import torch

    import modscope

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first two cases only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "gpu-results.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: this benchmark needs one", file=sys.stderr)
        return 2
    rows = []
    for model_id, batch, seq, checkpointing in CASES[:2] if args.quick else CASES:
        analysis = modscope.analyze(model_id)
        plan = analysis.suggest("all-linear")
        started = time.perf_counter()
        estimate = modscope.memory(analysis, batch=batch, seq=seq, gradient_checkpointing=checkpointing)
        estimate_s = time.perf_counter() - started
        try:
            real = real_step(analysis, plan.lora_config(8), batch, seq, checkpointing)
        except torch.OutOfMemoryError:
            real = {"allocated": None, "reserved": None}
        row = {
            "model": model_id,
            "batch": batch,
            "seq": seq,
            "gradient_checkpointing": checkpointing,
            "estimate_allocated": estimate.peak_bytes,
            "estimate_peak_op": estimate.peak_op,
            "estimate_s": round(estimate_s, 2),
            "real_allocated": real["allocated"],
            "real_reserved": real["reserved"],
        }
        if real["allocated"]:
            error = estimate.peak_bytes - real["allocated"]
            row["allocated_error"] = round(error / real["allocated"], 4)
            row["allocated_ok"] = abs(error) <= max(0.03 * real["allocated"], 64 << 20)
            row["reserved_vs_estimate"] = round(real["reserved"] / estimate.peak_bytes, 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "capability": list(torch.cuda.get_device_capability(0)),
        "torch": torch.__version__,
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
