"""``modscope export MODEL --to FORMAT``: a preset (or your own targets) as a snippet for PEFT or a trainer, headed
by modscope's count; where the trainer cannot say the set, the closest one, and what differs on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modscope.cli._options import MODEL_HELP, TARGETS_HELP, rank, target_names
from modscope.errors import OptionError

NAME = "export"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from modscope.build import TASKS
    from modscope.presets import PRESETS
    from modscope.render.trainers import FORMATS

    export = subparsers.add_parser(NAME, help="the suggested setup as a snippet for PEFT or a trainer")
    export.add_argument("model", help=MODEL_HELP)
    export.add_argument("--to", required=True, choices=FORMATS, help="PEFT code, JSON, or the trainer's format")
    export.add_argument("--preset", default="all-linear", choices=PRESETS, help="preset to export")
    export.add_argument("--target-modules", nargs="+", metavar="NAME", help=f"your own set instead: {TARGETS_HELP}")
    export.add_argument("--r", type=rank, default=8, help="rank (default 8)")
    export.add_argument("--alpha", type=int, help="lora_alpha (default 2r)")
    export.add_argument("--include-router", action="store_true", help="adapt the MoE router too")
    export.add_argument("--include-vision", action="store_true", help="adapt the vision/audio tower too")
    export.add_argument("--include-projector", action="store_true", help="adapt the multimodal projector too")
    export.add_argument("-o", "--output", metavar="FILE", help="write the snippet to FILE instead of stdout")
    export.add_argument(
        "--strict", action="store_true", help="fail (exit 2) where the format cannot say the set exactly"
    )
    export.add_argument("--task", choices=list(TASKS), help="build for this task instead of config.architectures")
    export.add_argument("--trust-remote-code", action="store_true", help="run the model's own code (local copy)")
    return export


def run(args: argparse.Namespace) -> int:
    """0 with the snippet (differences, if any, on stderr); OptionError (exit 2) for bad input, or under --strict
    where the format cannot say the set."""
    from modscope.analysis import analyze
    from modscope.render.trainers import export

    if args.include_router and args.preset in ("qv", "attention") and not args.target_modules:
        raise OptionError(
            f"--include-router conflicts with --preset {args.preset}: the router is adapted with the "
            "MLP; use --preset mlp or all-linear"
        )
    analysis = analyze(args.model, task=args.task, trust_remote_code=args.trust_remote_code)
    if args.target_modules:
        from modscope.check import as_plan, count

        plan = as_plan(count(analysis, {"target_modules": target_names(args.target_modules), "r": args.r}))
        label = f"your targets {' '.join(args.target_modules)}"
    else:
        extras = dict(router=args.include_router, vision=args.include_vision, projector=args.include_projector)
        plan, label = analysis.suggest(args.preset, **extras), ""
    result = export(analysis, plan, args.to, args.r, args.alpha, label)
    if args.strict and result.differences:
        raise OptionError(
            f"{args.to} cannot say this set exactly: {'; '.join(map(str, result.differences))} "
            "(without --strict, the closest set is exported with these differences)"
        )
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as file:
                file.write(result.text)
        except OSError as exc:
            raise OptionError(f"cannot write {args.output}: {exc.strerror or exc}; choose another -o FILE") from None
    else:
        sys.stdout.write(result.text)
    for difference in result.differences:
        print(f"modscope: warning: {args.to} {difference}", file=sys.stderr)
    return 0
