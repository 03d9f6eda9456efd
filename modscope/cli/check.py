"""``modscope check MODEL``: a user's own LoRA setup (options, or an adapter_config.json / YAML file) counted,
explained and proven with one PEFT injection."""

from __future__ import annotations

import argparse
import json
from typing import Any

from modscope.cli._options import MODEL_HELP, TARGETS_HELP, console, fields, rank, target_names
from modscope.errors import OptionError
from modscope.methods import LORA_TYPES, METHODS

NAME = "check"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from modscope.build import TASKS

    check = subparsers.add_parser(
        NAME, help="check your own PEFT config (LoRA, IA3, OFT, …): what it adapts and what it trains"
    )
    check.add_argument("model", help=MODEL_HELP)
    check.add_argument(
        "--config", metavar="FILE", help="adapter_config.json (or its adapter directory), or a LoraConfig as JSON/YAML"
    )
    check.add_argument("--target-modules", nargs="+", metavar="NAME", help=TARGETS_HELP)
    check.add_argument("--target-parameters", nargs="+", metavar="NAME", help="parameter names or .suffixes")
    check.add_argument("--r", type=rank, help="rank (default 8)")
    check.add_argument("--alpha", type=int, help="lora_alpha")
    check.add_argument("--bias", choices=("none", "all", "lora_only"))
    check.add_argument("--modules-to-save", nargs="+", metavar="NAME", help="modules trained and saved in full")
    check.add_argument("--dora", action="store_true", help="use_dora=True")
    check.add_argument("--rank-pattern", metavar="JSON", help="per-layer ranks, e.g. '{\"down_proj\": 16}'")
    check.add_argument("--layers-to-transform", nargs="+", type=int, metavar="I", help="only these block indices")
    check.add_argument("--exclude-modules", nargs="+", metavar="NAME", help="names (or one regex) to leave out")
    check.add_argument("--method", choices=list(METHODS), help="the PEFT method, if not LoRA (or --config's peft_type)")
    check.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="other config fields (VALUE as JSON)")
    check.add_argument("--task", choices=list(TASKS), help="build for this task instead of config.architectures")
    check.add_argument("--no-verify", action="store_true", help="skip the real PEFT injection")
    check.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    return check


def lora_values(args: argparse.Namespace) -> dict[str, Any]:
    """The LoraConfig fields from --config and the options (options win)."""
    from modscope.user_config import read_adapter_config

    values = read_adapter_config(args.config) if args.config else {}
    if args.rank_pattern:
        try:
            values["rank_pattern"] = json.loads(args.rank_pattern)
        except ValueError:
            raise OptionError(
                f"--rank-pattern must be JSON such as '{{\"down_proj\": 16}}', not {args.rank_pattern!r}"
            ) from None
    if args.method:
        values["peft_type"] = METHODS[args.method]
    lora = values.get("peft_type", "LORA") in LORA_TYPES
    options = {
        "target_modules": target_names(args.target_modules),
        "target_parameters": args.target_parameters,
        "r": args.r,
        "lora_alpha" if lora else "alpha": args.alpha,
        "bias": args.bias,
        "modules_to_save": args.modules_to_save,
        "use_dora": args.dora or None,
        "layers_to_transform": args.layers_to_transform,
        "exclude_modules": target_names(args.exclude_modules),
    }
    values.update({k: v for k, v in options.items() if v is not None})
    values.update(fields(args.set))
    if values.get("peft_type") == "OFT" and not args.config:  # PEFT takes a saved config without it as pre-0.14
        values.setdefault("oft_block_size", 0 if values.get("r") else 32)
    if lora and not values.get("target_modules") and not values.get("target_parameters"):
        raise OptionError("name what to adapt: --target-modules, --target-parameters or --config FILE")
    return values


def run(args: argparse.Namespace) -> int:
    """0 when PEFT agrees, 1 when PEFT would refuse or disagrees; OptionError (exit 2) when nothing matches."""
    from modscope.check import count, verify_count

    report = count(args.model, lora_values(args), task=args.task)
    verification = None if args.no_verify or report.problems else verify_count(report)
    if args.json:
        from modscope.render.json import check_document

        print(json.dumps(check_document(report, verification), indent=2))
    else:
        from modscope.render.rich import check_view

        console().print(check_view(report, verification))
    ok = not report.problems and (
        verification is None or (verification.match and verification.peft_all == report.total)
    )
    return 0 if ok else 1
