"""``modscope show MODEL``: structure, roles, the suggested LoraConfig, counts per r, one real PEFT injection
of the printed config."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from modscope.cli._options import MODEL_HELP, console, rank
from modscope.errors import OptionError
from modscope.methods import LORA_TYPES, METHODS

if TYPE_CHECKING:
    from modscope.inject import VerifyReport

NAME = "show"
RANKS = (4, 8, 16, 32, 64, 128)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from modscope.build import TASKS
    from modscope.presets import PRESETS

    show = subparsers.add_parser(NAME, help="analyse a model: structure, roles, suggested LoraConfig, counts per r")
    show.add_argument("model", help=MODEL_HELP)
    show.add_argument(
        "--preset",
        choices=PRESETS,
        help="preset to print as LoraConfig (default: all-linear, or the first that selects a layer)",
    )
    show.add_argument("--r", type=rank, nargs="+", default=list(RANKS), metavar="R", help="ranks to count")
    show.add_argument("--task", choices=list(TASKS), help="build for this task instead of config.architectures")
    show.add_argument("--method", choices=list(METHODS), help="count another PEFT method across its size knob")
    show.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    show.add_argument("--no-verify", action="store_true", help="skip the real PEFT injection")
    show.add_argument("--trust-remote-code", action="store_true", help="run the model's own code (local copy)")
    show.add_argument("--include-router", action="store_true", help="adapt the MoE router too")
    show.add_argument("--include-vision", action="store_true", help="adapt the vision/audio tower too")
    show.add_argument("--include-projector", action="store_true", help="adapt the multimodal projector too")
    show.add_argument("--svg", metavar="FILE", help="also draw one block of each stack, the preset marked, as SVG")
    return show


def run(args: argparse.Namespace) -> int:
    """0 when PEFT's count of the printed config equals the prediction (or nothing was verified), else 1."""
    from modscope.analysis import analyze
    from modscope.inject import verify_plan
    from modscope.peft_defaults import peft_differences, surprising
    from modscope.render.readback import taken_away

    if args.include_router and args.preset in ("qv", "attention"):
        raise OptionError(
            f"--include-router conflicts with --preset {args.preset}: the router is adapted with the "
            "MLP; use --preset mlp or all-linear"
        )
    if args.svg:
        from modscope.render.diagram import require_matplotlib

        require_matplotlib()  # before the work, not after it
    extras = dict(router=args.include_router, vision=args.include_vision, projector=args.include_projector)
    if args.method and METHODS[args.method] not in LORA_TYPES:
        from modscope.cli._show_method import run_method

        return run_method(args, extras)
    ranks = tuple(dict.fromkeys(args.r))
    verify_r = 8 if 8 in ranks else ranks[0]
    out = console()
    status = None if args.json else out.status(f"building {args.model} on the meta device…")
    if status:
        status.start()
    try:
        analysis = analyze(args.model, task=args.task, trust_remote_code=args.trust_remote_code)
        plans = analysis.plans(**extras)
        preset = args.preset or next((p for p in ("all-linear", *plans) if p in plans), "all-linear")
        chosen = plans.get(preset) or analysis.suggest(preset, **extras)  # which says why it is empty
        report: VerifyReport | None = None
        differences: tuple[str, ...] = ()
        if not args.no_verify:
            if status:
                status.update("verifying with a real PEFT injection…")
            # inject what the user takes away: the printed code, exec'd (equal to the JSON's lora_config)
            report = verify_plan(analysis.fresh_model(), chosen, verify_r, taken_away(chosen, verify_r))
            if surprising(analysis):
                if status:
                    status.update("comparing with PEFT's own all-linear and default mapping…")
                differences = peft_differences(analysis)
    finally:
        if status:
            status.stop()
    if args.json:
        from modscope.render.json import show_document

        print(json.dumps(show_document(analysis, plans, ranks, verify_r, report, differences), indent=2))
    else:
        from modscope.render.rich import show_view

        out.print(show_view(analysis, plans, preset, ranks, verify_r, report, differences), crop=False)
    if args.svg:
        from modscope.render.diagram import block_diagram, write_svg

        write_svg(block_diagram(analysis, chosen, verify_r), args.svg)
    return 0 if report is None or report.match else 1
