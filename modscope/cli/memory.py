"""``modscope memory MODEL``: the peak memory of a LoRA training step, simulated on fake tensors, and whether
it fits on a GPU."""

from __future__ import annotations

import argparse
import json
from typing import Any

from modscope.cli._options import MODEL_HELP, TARGETS_HELP, console, rank, target_names

NAME = "memory"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from modscope.presets import PRESETS
    from modscope.simulate.quant import QUANTS
    from modscope.simulate.step import ATTENTION, DTYPES, OPTIMIZERS

    mem = subparsers.add_parser(NAME, help="peak memory of a LoRA training step; does it fit on a GPU?")
    mem.add_argument("model", help=MODEL_HELP)
    mem.add_argument("--preset", choices=PRESETS, help="targets of this preset (default: all-linear)")
    mem.add_argument("--target-modules", nargs="+", metavar="NAME", help=TARGETS_HELP)
    mem.add_argument("--r", type=rank, default=8, help="rank (default 8)")
    mem.add_argument("--batch", type=_positive, default=1, help="sequences per step (default 1)")
    mem.add_argument("--seq", type=_positive, default=512, help="tokens per sequence (default 512)")
    mem.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="weights and autocast (default bf16)")
    mem.add_argument("--quant", choices=QUANTS, default="none", help="QLoRA: bitsandbytes nf4 or int8 base weights")
    mem.add_argument("--no-double-quant", action="store_true", help="nf4 without bnb_4bit_use_double_quant")
    mem.add_argument("--gradient-checkpointing", action="store_true", help="recompute blocks in the backward")
    mem.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="(default adamw, torch's)")
    mem.add_argument("--attention", choices=ATTENTION, help="(default: sdpa where the model has it)")
    mem.add_argument("--gpu", metavar="SIZE|NAME", help="e.g. 24GiB or a100: does it fit, and the largest batch")
    mem.add_argument("--search", choices=("batch", "seq"), default="batch", help="what --gpu maximises")
    mem.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    return mem


def run(args: argparse.Namespace) -> int:
    from modscope.errors import OptionError
    from modscope.simulate import memory

    if args.preset and args.target_modules:
        raise OptionError("give --preset or --target-modules, not both")
    lora_config = None
    if args.target_modules:
        lora_config = {"r": args.r, "lora_alpha": 2 * args.r, "target_modules": target_names(args.target_modules)}
    err = console(stderr=True)
    with err.status("simulating a training step on fake tensors…") as status:
        report = memory(
            args.model,
            lora_config,
            preset=args.preset,
            r=args.r,
            batch=args.batch,
            seq=args.seq,
            dtype=args.dtype,
            gradient_checkpointing=args.gradient_checkpointing,
            optimizer=args.optimizer,
            attention=args.attention,
            quant=args.quant,
            double_quant=not args.no_double_quant,
            gpu=args.gpu,
            search=args.search,
            progress=lambda text: status.update(text + "…"),
        )
    if args.json:
        from modscope.render.memory import memory_document

        print(json.dumps(memory_document(report), indent=2))
    else:
        console().print(report)
    return 0
