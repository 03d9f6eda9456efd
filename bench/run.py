"""modscope against the import floor and the usual way (build + get_peft_model per rank).

Run from the repository root: ``.venv/bin/python bench/run.py`` (see bench/README.md).
Every measurement is a fresh subprocess; wall time and peak RSS come from ``os.wait4``,
whose rusage covers that one child only. Each figure is the best of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("Qwen/Qwen2-0.5B", "meta-llama/Llama-3.1-405B", "deepseek-ai/DeepSeek-V3")
RANKS = (4, 8, 16, 32, 64, 128)
# issue 14: a training step's peak memory, estimated offline within 2x the import floor
MEMORY = ("meta-llama/Llama-3.1-8B", "deepseek-ai/DeepSeek-V3")
MEMORY_ARGS = ("--seq", "2048", "--gradient-checkpointing")
PYTHON = sys.executable
MODSCOPE = str(Path(sys.executable).parent / "modscope")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # unbuffered: keep output of killed runs

# What people write today: build on meta, then get_peft_model with PEFT's defaults, once per rank.
USUAL_WAY = """
import json, sys
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

raw = json.load(open(sys.argv[1]))["config"]
targets = json.loads(sys.argv[2])
values = {k: v for k, v in raw.items() if k not in ("model_type", "transformers_version", "_name_or_path")}
cfg = AutoConfig.for_model(raw["model_type"], **values)
for r in json.loads(sys.argv[3]):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    config = LoraConfig(
        r=r,
        target_modules=targets["target_modules"],
        target_parameters=targets["target_parameters"] or None,
        rank_pattern={k: int(v[:-1] or 1) * r for k, v in targets["rank_pattern"].items()},  # "2r" -> 2*r
    )
    get_peft_model(model, config).print_trainable_parameters()
"""


def measure(argv: list[str], timeout: float, stdout_path: str = os.devnull) -> dict:
    """One run of ``argv``: wall seconds, peak RSS (MB) of that child, exit code; killed past ``timeout``."""
    with open(stdout_path, "w") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=ENV, cwd=ROOT, start_new_session=True)
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child alone, unlike RUSAGE_CHILDREN
        wall = time.perf_counter() - start
        timed_out = not timer.is_alive()
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().strip().splitlines()[-1:]
    error = None
    if timed_out:
        error = "timeout"
    elif proc.returncode:
        error = f"exit {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
    return {
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(usage.ru_maxrss * 1024 / 1e6, 1),  # Linux reports KiB
        "rc": proc.returncode,
        "error": error,
    }


def best_of(name: str, argv: list[str], runs: int, timeout: float, stdout_path: str = os.devnull) -> dict:
    samples = []
    for i in range(runs):
        print(f"  {name}: run {i + 1}/{runs}…", file=sys.stderr, flush=True)
        samples.append(measure(argv, timeout, stdout_path))
        if samples[-1]["error"] == "timeout":  # no point waiting that long again
            break
    ok = [s for s in samples if s["error"] is None]
    # a run killed at the timeout still bounds the figures from below
    kept = ok or [s for s in samples if s["error"] == "timeout"]
    return {
        "name": name,
        "command": argv,
        "wall_s": min(s["wall_s"] for s in kept) if kept else None,
        "peak_rss_mb": min(s["peak_rss_mb"] for s in kept) if kept else None,
        "lower_bound": not ok and bool(kept),
        "error": None if ok else samples[-1]["error"],
        "samples": samples,
    }


def modscope_plan(model: str) -> dict:
    """modscope's all-linear targets and counts for ``model`` (not timed)."""
    done = subprocess.run(
        [MODSCOPE, "show", model, "--json", "--no-verify"],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["presets"]["all-linear"]


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "peft", "modscope")},
    }


def ratio(row: dict, base: dict, key: str) -> float | None:
    """``row[key] / base[key]``; a lower bound when ``row`` timed out, none when ``base`` did."""
    a, b = row[key], base[key]
    return round(a / b, 2) if a is not None and b and not base["lower_bound"] else None


def run(models: list[str], runs: int, timeout: float, memory_rows: bool = True) -> dict:
    host = machine()
    floor_argv = [PYTHON, "-c", "import torch, transformers, peft"]
    measure(floor_argv, timeout)  # warm the page cache; not counted
    rows = [best_of("floor: import torch, transformers, peft", floor_argv, runs, timeout)]
    floor = rows[0]
    rows.append(best_of("modscope --help", [MODSCOPE, "--help"], runs, timeout))
    for model in models:
        plan = modscope_plan(model)
        shown = best_of(f"modscope show {model}", [MODSCOPE, "show", model], runs, timeout)
        targets = {key: plan[key] for key in ("target_modules", "target_parameters", "rank_pattern")}
        data = ROOT / "data" / (model.replace("/", "--") + ".json")
        usual_argv = [PYTHON, "-c", USUAL_WAY, str(data), json.dumps(targets), json.dumps(list(RANKS))]
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as printed:
            usual = best_of(f"usual way {model} ({len(RANKS)} ranks)", usual_argv, runs, timeout, printed.name)
            counts = [int(m.replace(",", "")) for m in re.findall(r"trainable params: ([\d,]+)", printed.read())]
        # the usual way must do the same work: PEFT's counts equal modscope's for every rank it reached
        usual["ranks_done"] = len(counts)
        usual["counts_match"] = counts == [plan["trainable"][str(r)] for r in RANKS[: len(counts)]] if counts else None
        for row in (shown, usual):
            row["model"] = model
            row["wall_vs_floor"] = ratio(row, floor, "wall_s")
            row["rss_vs_floor"] = ratio(row, floor, "peak_rss_mb")
        usual["wall_vs_modscope"] = ratio(usual, shown, "wall_s")
        usual["rss_vs_modscope"] = ratio(usual, shown, "peak_rss_mb")
        rows += [shown, usual]
    for model in MEMORY if memory_rows else ():
        row = best_of(
            f"modscope memory {model} {' '.join(MEMORY_ARGS)}", [MODSCOPE, "memory", model, *MEMORY_ARGS], runs, timeout
        )
        row["model"] = model
        row["wall_vs_floor"] = ratio(row, floor, "wall_s")
        row["rss_vs_floor"] = ratio(row, floor, "peak_rss_mb")
        rows.append(row)
    rows[1]["wall_vs_floor"] = ratio(rows[1], floor, "wall_s")
    rows[1]["rss_vs_floor"] = ratio(rows[1], floor, "peak_rss_mb")
    return {
        "machine": host,
        "runs": runs,
        "timeout_s": timeout,
        "ranks": list(RANKS),
        "rows": rows,
        "checks": checks(rows),
    }


def checks(rows: list[dict]) -> list[dict]:
    """The issue's targets, read off the rows; an upper limit fails on a timed-out (lower-bound) row."""

    def check(text: str, row: dict, key: str, *, at_most: float | None = None, at_least: float | None = None) -> dict:
        value = row.get(key)
        if value is None:
            ok = False
        elif at_most is not None:
            ok = not row["lower_bound"] and value <= at_most
        else:
            ok = value >= at_least  # a lower bound meeting it still proves it
        return {"check": text, "value": f">{value}" if row["lower_bound"] else value, "ok": ok}

    found = []
    for row in rows:
        if row["name"].startswith("modscope show"):
            found.append(check(f"{row['name']} <= 1.3x the floor (wall)", row, "wall_vs_floor", at_most=1.3))
        if row["name"].startswith("modscope memory"):
            found.append(check(f"{row['name']} <= 2x the floor (wall)", row, "wall_vs_floor", at_most=2.0))
        if row.get("model") == "deepseek-ai/DeepSeek-V3":
            if row["name"].startswith("modscope show"):
                found.append(check("modscope show DeepSeek-V3 peak RSS < 1 GB", row, "peak_rss_mb", at_most=1000))
            elif row["name"].startswith("usual way"):
                found.append(
                    check(
                        "usual way ÷ modscope show on DeepSeek-V3 >= 10x (wall)", row, "wall_vs_modscope", at_least=10
                    )
                )
    help_row = next(r for r in rows if r["name"] == "modscope --help")
    found.append(check("modscope --help < 0.3 s", help_row, "wall_s", at_most=0.3))
    return found


def render(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["machine"]
    title = (
        f"modscope benchmark, best of {result['runs']} — {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; "
        f"Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}"
    )
    table = Table(title=title, title_justify="left")
    for column in (
        "measurement",
        "wall s",
        "peak RSS MB",
        "wall ÷ floor",
        "RSS ÷ floor",
        "usual ÷ modscope wall",
        "usual ÷ modscope RSS",
    ):
        table.add_column(column, justify="left" if column == "measurement" else "right")

    def cell(value: object) -> str:
        return "" if value is None else f"{value:,}" if isinstance(value, (int, float)) else str(value)

    for row in result["rows"]:
        if row["error"] and not row["lower_bound"]:
            table.add_row(row["name"], row["error"])
            continue
        bound = ">" if row["lower_bound"] else ""
        name = row["name"]
        if row["lower_bound"]:
            name += f", timeout after {row['ranks_done']} rank(s)" if "ranks_done" in row else ", timeout"
        table.add_row(
            name,
            *(
                bound + cell(row.get(key)) if row.get(key) is not None else ""
                for key in (
                    "wall_s",
                    "peak_rss_mb",
                    "wall_vs_floor",
                    "rss_vs_floor",
                    "wall_vs_modscope",
                    "rss_vs_modscope",
                )
            ),
        )
    checks_table = Table(title="targets (issues 6 and 14)", title_justify="left")
    for column in ("check", "value", "ok"):
        checks_table.add_column(column)
    for c in result["checks"]:
        checks_table.add_row(c["check"], cell(c["value"]), "yes" if c["ok"] else "NO")
    console = Console(width=200)
    console.print(table)
    console.print(checks_table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="ID", help="catalog ids")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run before it is killed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--no-memory", action="store_true", help="skip the `modscope memory` rows")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    missing = [m for m in args.models if not (ROOT / "data" / (m.replace("/", "--") + ".json")).is_file()]
    if missing:
        parser.error(f"not in the bundled catalog (data/): {', '.join(missing)}; see `modscope catalog`")
    result = run(args.models, args.runs, args.timeout, memory_rows=not args.no_memory)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    render(result)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
