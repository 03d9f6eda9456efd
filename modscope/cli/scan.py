"""``modscope scan [MODEL_TYPE ...]``: every model type of the installed transformers, each preset's printed
LoraConfig injected with PEFT, with a progress bar."""

from __future__ import annotations

import argparse
import json
from typing import Any

from modscope.cli._options import console
from modscope.errors import OptionError

NAME = "scan"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(NAME, help="check every model type of the installed transformers against PEFT")
    parser.add_argument("model_types", nargs="*", metavar="MODEL_TYPE", help="model types to scan (default: all)")
    parser.add_argument("--sample", type=int, metavar="N", help="scan N model types spread over the sorted list")
    parser.add_argument("--layers", type=int, default=2, metavar="N", help="depth each model is reduced to")
    parser.add_argument("--all", action="store_true", help="show every model type, not only those that did not pass")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    return parser


def run(args: argparse.Namespace) -> int:
    """0 when every model type that builds matches PEFT on every preset, else 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modscope.render.readback import taken_away
    from modscope.scan import all_model_types, scan

    known = all_model_types()
    unknown = [m for m in args.model_types if m not in known]
    if unknown:
        raise OptionError(f"unknown model type(s) {', '.join(unknown)}: see transformers.CONFIG_MAPPING")
    chosen = tuple(args.model_types) or known
    if args.sample is not None:
        if args.sample <= 0:
            raise OptionError(f"--sample must be a positive number, not {args.sample}")
        step = max(len(chosen) / args.sample, 1.0)
        chosen = tuple(dict.fromkeys(chosen[int(i * step)] for i in range(min(args.sample, len(chosen)))))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("scanning", total=len(chosen))
        report = scan(
            chosen,
            layers=args.layers,
            config_for=taken_away,
            progress=lambda t: bar.update(task, advance=1, description=f"scanning {t.model_type:<24}"),
        )
    if args.json:
        from modscope.render.json import scan_document

        print(json.dumps(scan_document(report), indent=2))
    else:
        from modscope.render.rich import scan_view

        console().print(scan_view(report, all_rows=args.all or bool(args.model_types)))
    failed = [t for t in report.results if t.built and not t.match]
    return 1 if failed else 0
