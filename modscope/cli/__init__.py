"""The command line: ``modscope show|check|export|memory|scan|catalog``, one module per command (its parser and a
``run`` that calls the API and a renderer). Bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from collections.abc import Iterator, Sequence

from modscope.cli import catalog, check, export, memory, scan, show
from modscope.errors import ModscopeError

COMMANDS = (show, check, export, memory, scan, catalog)
# one model's work each: collector paused, transformers' log lines silenced
HEAVY = {"show", "check", "export", "memory"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line and exit 2, as for all bad input
        self.exit(2, f"modscope: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modscope", description="Which LoRA target_modules to use, and what each rank trains.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return int(exc.code or 0)
    command = next(c for c in COMMANDS if args.command == c.NAME)
    try:
        if args.command in HEAVY:
            with _gc_paused():
                _quiet_transformers()
                return command.run(args)
        return command.run(args)
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
    the JSON on the terminal; what matters reaches the user as modscope's output or error. So would
    bitsandbytes' CPU build, which peft imports when installed: it warns on every start that an optional
    kernel package is missing, a kernel modscope never needs."""
    import logging as std_logging

    from transformers.utils import logging

    logging.set_verbosity_error()
    std_logging.getLogger("bitsandbytes").setLevel(std_logging.ERROR)
