"""``modscope catalog [QUERY]``: the bundled offline configs (no torch import)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from modscope.cli._options import console

NAME = "catalog"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    cat = subparsers.add_parser(NAME, help="list the bundled offline catalog")
    cat.add_argument("query", nargs="?", help="substring of id or model type")
    cat.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    return cat


def run(args: argparse.Namespace) -> int:
    from modscope import catalog

    found = catalog.search(args.query)
    if args.json:
        from modscope.render.json import catalog_document

        print(json.dumps(catalog_document(found), indent=2))
    else:
        from modscope.render.rich import catalog_table

        console().print(catalog_table(found))
    return 0
