"""``modscope show MODEL --method M``: M's counts per preset and size, its config as code (or one JSON
document), one injection of that code."""

from __future__ import annotations

import argparse
import json

from modscope.cli._options import console
from modscope.errors import OptionError
from modscope.methods import METHODS


def run_method(args: argparse.Namespace, extras: dict[str, bool]) -> int:
    """0 when PEFT's count of the printed config equals the prediction (or nothing was verified), else 1."""
    from modscope import count
    from modscope.analysis import analyze
    from modscope.check import verify_count
    from modscope.methods.table import method_table
    from modscope.render.methods import method_document, method_taken_away, method_view

    if args.svg:
        raise OptionError("--svg draws LoRA's targets: drop --svg with --method, or drop --method")
    analysis = analyze(args.model, task=args.task, trust_remote_code=args.trust_remote_code)
    table = method_table(analysis, METHODS[args.method], args.preset, **extras)
    report = None if args.no_verify else verify_count(count(analysis, method_taken_away(table)))
    if args.json:
        print(json.dumps(method_document(table, report), indent=2))
    else:
        console().print(method_view(table, report), crop=False)
    return 0 if report is None or report.match else 1
