"""``modscope scan``: every model type of the installed transformers, from its default config, each
preset checked against a real PEFT injection, and what PEFT's own defaults would do instead."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from modscope.errors import ModscopeError, first_line, typed_line
from modscope.peft_defaults import peft_default_sets, peft_differences, peft_wrapped, same_outcome
from modscope.presets import PRESETS
from modscope.reduced import reduced_config

TIME_BUDGET_S = 60.0
ConfigFor = Callable[[Any, int], Any]  # (TargetPlan, r) -> the peft.LoraConfig to inject


@dataclass(frozen=True)
class PresetCheck:
    """One preset on one model type: the targets, and modscope's prediction against PEFT's count."""

    preset: str
    target_modules: tuple[str, ...] | str
    target_parameters: tuple[str, ...]
    layers: int
    predicted: int
    peft: int | None
    match: bool
    problem: str | None = None  # PEFT's error or the mismatch, in one line

    @property
    def empty(self) -> bool:
        return self.layers == 0


@dataclass(frozen=True)
class TypeScan:
    """The scan of one model type."""

    model_type: str
    status: str  # analysed | not built | failed | timeout
    reason: str | None = None  # one line, for every status but analysed
    architecture: str = ""
    roles: tuple[str, ...] = ()  # "part group role ×n", e.g. "language attention q ×2"
    presets: tuple[PresetCheck, ...] = ()
    peft_differences: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def built(self) -> bool:
        return bool(self.architecture)  # set once the model is built, whatever happened after

    @property
    def match(self) -> bool:
        return self.status == "analysed" and all(p.match for p in self.presets if not p.empty)


@dataclass(frozen=True)
class ScanReport:
    results: tuple[TypeScan, ...]
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def built(self) -> tuple[TypeScan, ...]:
        return tuple(t for t in self.results if t.built)

    @property
    def matched(self) -> tuple[TypeScan, ...]:
        return tuple(t for t in self.results if t.match)

    def failures_by_reason(self) -> dict[str, list[str]]:
        """Model types that were not analysed with every preset matching PEFT, by short reason."""
        found: dict[str, list[str]] = {}
        for t in self.results:
            if not t.match:
                found.setdefault(reason_kind(t), []).append(t.model_type)
        return dict(sorted(found.items(), key=lambda kv: -len(kv[1])))

    def __rich__(self) -> Any:
        from modscope.render.rich import scan_view

        return scan_view(self)


PREDICTION_DIFFERS = "modscope's prediction of PEFT's own defaults differs from a real injection"


def reason_kind(t: TypeScan) -> str:
    """A short category for why a model type did not pass, for the summary."""
    text = t.reason or ""
    if t.status == "analysed":
        bad = [p for p in t.presets if not p.match and not p.empty]
        errors = {p.problem for p in bad}
        problem = bad[0].problem or "" if bad else ""
        if len(bad) == len([p for p in t.presets if not p.empty]) and len(errors) == 1 and "refused" in problem:
            return "PEFT refuses every preset: " + problem.split(": ", 1)[-1][:60]
        return f"mismatch with PEFT ({', '.join(p.preset for p in bad)})"
    if t.status in ("timeout", "failed"):
        return "over the time budget" if t.status == "timeout" else f"modscope error: {text.split(':')[0]}"
    package = re.search(
        r"needs a package that is not installed: .*?(?:No module named '?|requires the )([\w.-]+)", text
    )
    if "needs a package" in text:
        return f"needs {package.group(1) if package else 'a package that is not installed'}"
    if "Unrecognized configuration class" in text:
        return "no Auto model class (a sub-config of a larger model)"
    if text.startswith("no default config"):
        return "no default config"
    return "the default config does not build: " + re.sub(r"\d+", "N", text.split(": ", 2)[-1])[:60]


def all_model_types() -> tuple[str, ...]:
    from transformers import CONFIG_MAPPING

    return tuple(sorted(CONFIG_MAPPING.keys()))


class _OverBudget(Exception):
    pass


@contextmanager
def _budget(seconds: float) -> Iterator[None]:
    """Stop a pathological model type after ``seconds`` (only where signals work: the main thread on Unix)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _OverBudget(f"over the {seconds:.0f} s time budget")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _plan_config(plan: Any, r: int) -> Any:
    return plan.lora_config(r)


def scan_type(
    model_type: str, *, layers: int = 2, r: int = 4, budget: float = TIME_BUDGET_S, config_for: ConfigFor = _plan_config
) -> TypeScan:
    """Build ``model_type`` from its reduced default config and check every preset with PEFT; never raises.
    ``config_for(plan, r)`` gives the LoraConfig injected: the plan's own, or (the command line, the full scan
    in CI) what a user takes away from `show`, read back."""
    import warnings

    from transformers import AutoConfig

    from modscope.analysis import analyze
    from modscope.errors import BuildError

    start = time.perf_counter()
    analysis = None
    checks: list[PresetCheck] = []
    warned: list[str] = []
    try:
        with warnings.catch_warnings(), _budget(budget):
            warnings.simplefilter("ignore")
            try:
                config = reduced_config(model_type, layers)
            except Exception as exc:
                return TypeScan(
                    model_type,
                    "not built",
                    f"no default config: {typed_line(exc)}",
                    seconds=time.perf_counter() - start,
                )
            try:
                analysis = analyze(config)
            except BuildError as reduced_error:
                try:  # the reduction may break a config's own consistency; the full one, on meta, costs little
                    analysis = analyze(AutoConfig.for_model(model_type))
                except BuildError as exc:
                    return TypeScan(model_type, "not built", str(exc), seconds=time.perf_counter() - start)
                warned.append(f"built at full depth: the reduced config failed ({reduced_error})")
            checks = [_check(analysis, preset, r, config_for) for preset in PRESETS]
            real = peft_default_sets(analysis, wrapped=peft_wrapped)
            differences = peft_differences(analysis, real)
            predicted = peft_default_sets(analysis)
            peft_works = all(c.match for c in checks if not c.empty)  # else PEFT refuses the model itself
            if peft_works and not all(same_outcome(real[t], predicted[t]) for t in real):  # `show` says what PEFT does
                warned.append(PREDICTION_DIFFERS)
    except _OverBudget as exc:
        return _partial(model_type, "timeout", str(exc), analysis, checks, start)
    except Exception as exc:  # a bug in modscope on this model type: recorded, the scan goes on
        return _partial(model_type, "failed", typed_line(exc), analysis, checks, start)
    warned += list(dict.fromkeys(c.problem or f"'{c.preset}' selects no layer" for c in checks if c.empty))
    warned += [n for p in ({} if analysis.peft_refusal else analysis.plans()).values() for n in p.notes]
    return TypeScan(
        model_type,
        "analysed",
        None,
        analysis.architecture,
        _roles(analysis),
        tuple(checks),
        differences,
        tuple(dict.fromkeys(warned)),
        time.perf_counter() - start,
    )


def _check(analysis: Any, preset: str, r: int, config_for: ConfigFor) -> PresetCheck:
    from modscope.inject import verify_plan

    try:
        plan = analysis.suggest(preset)
    except ModscopeError as exc:
        return PresetCheck(preset, (), (), 0, 0, None, False, first_line(exc))
    targets = (preset, plan.target_modules, plan.target_parameters, len(plan.layers))
    report = verify_plan(analysis.fresh_model(), plan, r, config_for(plan, r))
    return PresetCheck(*targets, report.predicted, report.peft, report.match, None if report.match else report.summary)


def _partial(model_type: str, status: str, reason: str, analysis: Any, checks: list, start: float) -> TypeScan:
    arch = analysis.architecture if analysis is not None else ""
    roles = _roles(analysis) if analysis is not None else ()
    return TypeScan(model_type, status, reason, arch, roles, tuple(checks), seconds=time.perf_counter() - start)


def _roles(analysis: Any) -> tuple[str, ...]:
    return tuple(
        f"{part} {group} {role} ×{len(found)}" for (part, group, role), found in analysis.layers_by_role().items()
    )


def scan(
    model_types: Any = None,
    *,
    layers: int = 2,
    progress: Callable[[TypeScan], None] | None = None,
    budget: float = TIME_BUDGET_S,
    config_for: ConfigFor = _plan_config,
) -> ScanReport:
    """Scan ``model_types`` (default: every model type transformers knows); ``progress`` sees each result."""
    import peft
    import transformers
    from transformers.utils import logging

    logging.set_verbosity_error()
    chosen = tuple(model_types) if model_types is not None else all_model_types()
    start = time.perf_counter()
    results = []
    for model_type in chosen:
        result = scan_type(model_type, layers=layers, budget=budget, config_for=config_for)
        results.append(result)
        if progress is not None:
            progress(result)
    versions = {"transformers": transformers.__version__, "peft": peft.__version__}
    return ScanReport(tuple(results), time.perf_counter() - start, versions)
