"""The command line: ``modscope show``, ``modscope catalog``. Bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from typing import Iterator, Sequence

from modscope.errors import ModscopeError, OptionError

RANKS = (4, 8, 16, 32, 64, 128)


def _rank(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"r must be a positive integer, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"r must be a positive integer, not {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as for every bad input
        self.exit(2, f"modscope: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from modscope.build import TASKS
    from modscope.presets import PRESETS

    parser = _Parser(prog="modscope", description="Which LoRA target_modules to use, and what each rank trains.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    show = sub.add_parser("show", help="analyse a model: structure, roles, suggested LoraConfig, counts per r")
    show.add_argument("model", help="Hugging Face id, local directory, or config.json path")
    show.add_argument("--preset", default="all-linear", choices=PRESETS, help="preset to print as LoraConfig")
    show.add_argument("--r", type=_rank, nargs="+", default=list(RANKS), metavar="R", help="ranks to count")
    show.add_argument("--task", choices=list(TASKS), help="build for this task instead of config.architectures")
    show.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    show.add_argument("--no-verify", action="store_true", help="skip the real PEFT injection")
    show.add_argument("--trust-remote-code", action="store_true", help="run the model's own code (local copy)")
    show.add_argument("--include-router", action="store_true", help="adapt the MoE router too")
    show.add_argument("--include-vision", action="store_true", help="adapt the vision/audio tower too")
    show.add_argument("--include-projector", action="store_true", help="adapt the multimodal projector too")

    from modscope import check, scan

    check.add_parser(sub)
    scan.add_parser(sub)

    cat = sub.add_parser("catalog", help="list the bundled offline catalog")
    cat.add_argument("query", nargs="?", help="substring of id or model type")
    cat.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return int(exc.code or 0)
    try:
        if args.command == "show":
            with _gc_paused():
                _quiet_transformers()
                return _show(args)
        if args.command == "check":
            from modscope import check

            with _gc_paused():
                _quiet_transformers()
                return check.run(args)
        if args.command == "scan":
            from modscope import scan

            return scan.run(args)
        return _catalog(args)
    except ModscopeError as exc:
        print("modscope: error: " + " ".join(str(exc).split()), file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("modscope: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """One model's worth of work without the cyclic garbage collector. A meta model and its PEFT copy are
    10^5 small objects that reference counting frees; the collector's full passes over them cost a third
    of `show` on a 405B config (bench/). `scan`, which builds hundreds of models, keeps it, and so does
    the API: the collector is the host process's (a notebook's threads) to tune, not a library's."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _quiet_transformers() -> None:
    """transformers' own log lines (advice on building a class standalone, …) would break the one-line error and
    the JSON on the terminal; what matters reaches the user as modscope's output or error."""
    from transformers.utils import logging

    logging.set_verbosity_error()


def _console():
    from rich.console import Console

    return Console()


def _show(args: argparse.Namespace) -> int:
    from modscope.analysis import analyze
    from modscope.inject import compare
    from modscope.render.readback import taken_away

    if args.include_router and args.preset in ("qv", "attention"):
        raise OptionError(f"--include-router conflicts with --preset {args.preset}: the router is adapted with the "
                          "MLP; use --preset mlp or all-linear")
    ranks = tuple(dict.fromkeys(args.r))
    verify_r = 8 if 8 in ranks else ranks[0]
    console = _console()
    status = console.status(f"building {args.model} on the meta device…") if not args.json else None
    if status:
        status.start()
    try:
        analysis = analyze(args.model, task=args.task, trust_remote_code=args.trust_remote_code)
        plans = analysis.plans(router=args.include_router, vision=args.include_vision,
                               projector=args.include_projector)
        chosen = plans.get(args.preset) or analysis.suggest(  # suggest says why the preset is empty
            args.preset, router=args.include_router, vision=args.include_vision, projector=args.include_projector)
        report, differences = None, ()
        if not args.no_verify:
            if status:
                status.update("verifying with a real PEFT injection…")
            # inject what the user takes away: the printed code, exec'd (equal to the JSON's lora_config)
            report = compare(analysis.fresh_model(), taken_away(chosen, verify_r), label=chosen.preset, r=verify_r,
                             predicted=chosen.trainable_params(verify_r), expected=chosen.wrapped)
            if _peft_defaults_surprise(analysis):
                from modscope.scan import peft_differences

                if status:
                    status.update("comparing with PEFT's own all-linear and default mapping…")
                differences = peft_differences(analysis)
    finally:
        if status:
            status.stop()
    if args.json:
        import json

        from modscope.render.json import show_document

        print(json.dumps(show_document(analysis, plans, ranks, verify_r, report, differences), indent=2))
    else:
        from modscope.render.rich import show_view

        console.print(show_view(analysis, plans, args.preset, ranks, verify_r, report, differences), crop=False)
    return 0 if report is None or report.match else 1


def _peft_defaults_surprise(analysis) -> bool:
    """Where PEFT's own all-linear / default mapping differ from the presets: MoE and multimodal models."""
    return any(l.group in ("experts", "router") or l.part != "language" for l in analysis.layers)


def _catalog(args: argparse.Namespace) -> int:
    from modscope import catalog

    found = catalog.search(args.query)
    if args.json:
        import json

        rows = [{"id": e.id, "model_type": e.model_type, "architecture": e.architecture,
                 "total_params": e.total_params, "card_params": (e.card_params or {}).get("text"),
                 "config_url": e.config_url} for e in found]
        # the shape of modscope/schemas/catalog.schema.json
        print(json.dumps({"schema_version": 1, "models": rows}, indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"modscope catalog: {len(found)} model(s)", title_justify="left")
    for column in ("id", "model type", "class", "parameters"):
        table.add_column(column, justify="right" if column == "parameters" else "left", overflow="fold")
    for e in found:
        size = f"{e.total_params:,}" if e.total_params else "needs its own code"
        table.add_row(e.id, e.model_type, e.architecture, size)
    _console().print(table)
    return 0
