"""Store each catalog entry's total parameter count (as modscope builds it) in its data/*.json as
``total_params``, so `modscope catalog` can list sizes without importing torch. The catalog tests
check every stored total against a fresh meta-device build.

    python scripts/refresh_catalog_totals.py
"""

import json
import warnings

import modscope
from modscope import catalog
from modscope.errors import RemoteCodeError

warnings.filterwarnings("ignore")

for entry in catalog.entries():
    raw = json.loads(entry.path.read_text(encoding="utf-8"))
    try:
        raw["total_params"] = modscope.analyze(entry.id).total_params
    except RemoteCodeError:
        raw["total_params"] = None  # needs the model's own code to build
    entry.path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{entry.id:50} {raw['total_params']}")
