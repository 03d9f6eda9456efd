"""Will it fit? The peak memory of a LoRA training step, simulated on fake tensors (``FakeTensorMode``): the
model is built on meta, adapted by PEFT, and two training steps run on tensors that have shapes but no
data, while a tracker counts the bytes of live storage at every op. Repeated blocks are simulated at two
short depths and extended exactly to full depth (``depth``); what the tracker cannot see on a GPU is added
as named terms (``device``)."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from modscope.errors import BuildError, OptionError, first_line
from modscope.simulate.depth import DepthPlan, at_depth, extend, plan_depth
from modscope.simulate.device import DeviceTerm, device_terms
from modscope.simulate.fit import CONTEXT, Fit, capacity, largest
from modscope.simulate.quant import QUANTS
from modscope.simulate.step import ATTENTION, DTYPES, OPTIMIZERS, Setup, StepResult, run_step
from modscope.simulate.track import CATEGORIES, PHASES

__all__ = ["Fit", "MemoryReport", "Setup", "memory"]

_OPTIMIZER_NAMES = {
    "adamw": "AdamW (torch, foreach)",
    "adamw-8bit": "AdamW8bit (bitsandbytes, blockwise 8-bit states for tensors of 4096 elements or more)",
    "sgd": "SGD",
}
# what the model computes its own loss from; other tasks' labels are not the inputs
_TASKS = ("causal-lm", "image-text-to-text", "masked-lm", "seq2seq-lm")


@dataclass(frozen=True)
class MemoryReport:
    """The peak of a steady-state training step (the second), in bytes, and what it is made of."""

    model_id: str
    adapter: str  # the preset (or "your config") and rank
    setup: Setup
    trainable_params: int
    terms: dict[str, int]  # weights, adapters, gradients, optimizer, activations: live at the peak
    peak_op: str  # the op at which the peak is reached
    device: tuple[DeviceTerm, ...]
    depths: DepthPlan | None  # the depths simulated and how they were extended
    assumptions: tuple[str, ...]
    fit: Fit | None = None  # with a GPU: does it fit, and the largest batch (or sequence length) that does
    seconds: float = field(default=0.0, compare=False)

    @property
    def tracked_bytes(self) -> int:
        """Every tensor the step holds at its peak, each rounded as CUDA's caching allocator rounds it."""
        return sum(self.terms.values())

    @property
    def peak_bytes(self) -> int:
        """What ``torch.cuda.max_memory_allocated()`` should show: the tracked peak and the workspaces the
        allocator holds beside it."""
        return self.tracked_bytes + sum(t.bytes for t in self.device if t.added)

    def __rich__(self) -> Any:
        from modscope.render.memory import memory_view

        return memory_view(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from modscope.render.rich import mimebundle

        return mimebundle(self)


def memory(
    source: Any,
    lora_config: Any = None,
    *,
    preset: str | None = None,
    r: int = 8,
    batch: int = 1,
    seq: int = 512,
    dtype: str = "bf16",
    gradient_checkpointing: bool = False,
    optimizer: str = "adamw",
    attention: str | None = None,
    quant: str = "none",
    double_quant: bool = True,
    gpu: str | None = None,
    search: str = "batch",
    progress: Callable[[str], None] | None = None,
) -> MemoryReport:
    """The peak memory of a LoRA training step of ``source`` (an id, path, config or ``Analysis``) with
    ``lora_config`` (a ``LoraConfig``, a dict, or None for ``preset`` at rank ``r``). With ``gpu`` (a size
    such as ``"24GiB"`` or a name such as ``"a100"``): whether it fits, and the largest ``search`` ("batch"
    or "seq") that does. ``quant`` ("nf4" or "int8"): QLoRA, the base model loaded by bitsandbytes as
    ``BitsAndBytesConfig`` loads it (nf4 with ``double_quant``, compute dtype ``dtype``). ``progress`` is told what is
    being simulated."""
    from modscope.analysis import Analysis, analyze
    from modscope.presets import DEFAULT_PRESET

    started = time.perf_counter()
    setup = Setup(batch, seq, dtype, gradient_checkpointing, optimizer, attention, quant, double_quant)
    _check(setup)
    if search not in ("batch", "seq"):
        raise OptionError(f"search must be 'batch' or 'seq', not {search!r}")
    gpu_label, gpu_bytes = capacity(gpu) if gpu is not None else ("", 0)
    analysis = source if isinstance(source, Analysis) else analyze(source)
    if analysis.task not in _TASKS:
        raise OptionError(
            f"memory simulates language-model training (labels = inputs); {analysis.model_id} is built for "
            f"{analysis.task}: choose a causal-lm, seq2seq-lm, masked-lm or image-text-to-text model"
        )
    if lora_config is not None and preset is not None:
        raise OptionError("give lora_config or preset, not both")
    if lora_config is None:
        plan = analysis.suggest(preset or DEFAULT_PRESET)
        config, label, expected = plan.lora_config(r), f"{plan.preset}, r={r}", plan.trainable_params(r)
    else:
        from modscope.check import count

        counted = count(analysis, lora_config)  # loads it as PEFT loads a saved config, and counts it
        config, label, expected = counted.config, "your config", counted.trainable
    if attention is None:  # what transformers picks when the user does not say
        setup = replace(setup, attention="sdpa" if getattr(analysis.model(), "_supports_sdpa", False) else "eager")
    say = progress or (lambda _: None)
    say(f"simulating {analysis.model_id}: {setup.batch} × {setup.seq} tokens")
    report = replace(_simulate(analysis, config, setup, expected), adapter=label)
    if gpu is not None:
        report = replace(report, fit=_fit(report, analysis, config, expected, gpu_label, gpu_bytes, search, say))
    return replace(report, seconds=time.perf_counter() - started)


def _fit(
    report: MemoryReport, analysis: Any, config: Any, expected: int, label: str, cap: int, over: str, say: Any
) -> Fit:
    @functools.cache
    def needed(n: int) -> int:
        if n == getattr(report.setup, over):
            return report.peak_bytes + CONTEXT
        say(f"{label}: trying {over} {n}")
        setup = replace(report.setup, batch=n) if over == "batch" else replace(report.setup, seq=n)
        return _simulate(analysis, config, setup, expected).peak_bytes + CONTEXT

    now = getattr(report.setup, over)
    step = max(needed(now + 1) - needed(now), 1)
    guess = max(now + (cap - needed(now)) // step, 1)
    limit = 1 << 20 if over == "batch" else (_positions(analysis.resolved.config) or 1 << 24)
    best = largest(lambda n: needed(n) <= cap, now, min(guess, limit), limit)
    return Fit(label, cap, report.peak_bytes + CONTEXT, best, over, limit)


def _check(setup: Setup) -> None:
    for name, value, allowed in (
        ("dtype", setup.dtype, tuple(DTYPES)),
        ("optimizer", setup.optimizer, OPTIMIZERS),
        ("attention", setup.attention or ATTENTION[0], ATTENTION),
        ("quant", setup.quant, QUANTS),
    ):
        if value not in allowed:
            raise OptionError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")
    for name, number in (("batch", setup.batch), ("seq", setup.seq)):
        if not isinstance(number, int) or number < 1:
            raise OptionError(f"{name} must be a positive integer, not {number!r}")


def _simulate(analysis: Any, config: Any, setup: Setup, expected: int) -> MemoryReport:
    base = training_config(analysis.resolved.config, setup.attention)
    # adapters on some blocks only do not repeat with the blocks: simulate whole
    repeats = not (getattr(config, "layers_to_transform", None) or getattr(config, "layers_pattern", None))
    depths = plan_depth(base) if repeats else None
    if depths is None or len(depths.short) == 1:
        results = [_one(analysis, base, config, setup)]
    else:
        results = [_one(analysis, at_depth(base, d), config, setup) for d in depths.short]
    if depths and len(results) > 1 and extend(depths, [r.trainable for r in results]) != expected:
        # the adapters do not repeat with the blocks (layers_to_transform, a regex naming blocks): simulate whole
        depths, results = DepthPlan(depths.depth, (depths.depth,), depths.period), [_one(analysis, base, config, setup)]
    plan = depths or DepthPlan(0, (0,), 1)
    by_phase = {
        phase: {c: extend(plan, [r.peaks[phase].by_category[c] for r in results]) for c in CATEGORIES}
        for phase in PHASES
    }
    phase = max(PHASES, key=lambda p: sum(by_phase[p].values()))
    return MemoryReport(
        model_id=analysis.model_id,
        adapter="",
        setup=setup,
        trainable_params=extend(plan, [r.trainable for r in results]),
        terms=by_phase[phase],
        peak_op=f"{results[-1].peaks[phase].op} ({phase})",
        device=device_terms(base, setup),
        depths=depths,
        assumptions=_assumptions(analysis, setup),
    )


def _positions(config: Any) -> int | None:
    """The longest sequence the model was built for (GPT-2's learned positions end there)."""
    text = config.get_text_config()
    found = next((getattr(text, n) for n in ("max_position_embeddings", "n_positions") if hasattr(text, n)), None)
    return found if isinstance(found, int) and found > 0 else None


def training_config(config: Any, attention: str | None) -> Any:
    """A copy of ``config`` as training uses it: the attention implementation chosen, no KV cache (transformers
    turns it off under checkpointing; a training step never reads it)."""
    config = copy.deepcopy(config)
    if attention:
        config._attn_implementation = attention
    for owner in {id(c): c for c in (config, config.get_text_config())}.values():
        owner.use_cache = False
    return config


def _one(analysis: Any, config: Any, peft_config: Any, setup: Setup) -> StepResult:
    import torch

    from modscope.inject import inject

    model = analysis.rebuild(config).model
    dtype = getattr(torch, DTYPES[setup.dtype])
    model = model.to(dtype)
    if setup.quant != "none":
        from modscope.simulate.quant import mark, quantise

        mark(model)  # by transformers' rules, on the model PEFT has not wrapped yet
    peft_model = inject(model, copy.deepcopy(peft_config))[0]
    if setup.quant != "none":
        quantise(peft_model, setup.quant, dtype, setup.double_quant)
    if setup.gradient_checkpointing:
        peft_model.gradient_checkpointing_enable()
    try:
        return run_step(peft_model, setup, fake=True)
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        hint = "; transformers' grouped_mm experts need bf16: try --dtype bf16" if "BF16" in str(exc) else ""
        why = first_line(exc).rstrip(".")
        raise BuildError(f"the training step of {analysis.model_type} failed: {why}{hint}") from None


def _assumptions(analysis: Any, setup: Setup) -> tuple[str, ...]:
    found = [
        f"weights in {setup.dtype}, adapters as PEFT creates them (fp32 unless the config says otherwise)",
        f"autocast to {setup.dtype}, as Trainer with {setup.dtype}=True" if setup.dtype != "fp32" else "no autocast",
        f"{setup.attention} attention; labels = input ids, loss computed by the model",
        f"{_OPTIMIZER_NAMES[setup.optimizer]}; the second step (optimizer "
        "states exist), gradients set to None after each step",
        "one unpadded sequence per row (padding adds a B·S·S mask)",
    ]
    if setup.quant != "none":
        found.append(_quant_assumption(setup))
    positions = _positions(analysis.resolved.config)
    if positions and setup.seq > positions:
        found.append(f"{setup.seq} tokens is beyond the model's {positions} positions: it may not run at all")
    if analysis.task == "image-text-to-text":
        found.append("text only: no image in the batch, the vision tower's weights counted, not run")
    if any(layer.experts for layer in analysis.layers):
        found.append("MoE experts run as transformers' grouped_mm: memory does not depend on the routing")
    return tuple(found)


def _quant_assumption(setup: Setup) -> str:
    nf4 = f"load_in_4bit=True, nf4, double quantisation {'on' if setup.double_quant else 'off'}"
    loaded = (
        f"the base model loaded with BitsAndBytesConfig({nf4 if setup.quant == 'nf4' else 'load_in_8bit=True'}"
        f", compute dtype {setup.dtype}) as bitsandbytes 0.50 stores it: transformers' Linear layers quantised, "
        "embeddings, norms, lm_head and MoE expert parameters not; then get_peft_model, without "
        "prepare_model_for_kbit_training (which upcasts the unquantised weights to fp32)"
    )
    if setup.quant == "nf4":
        return loaded + (
            f"; each 4-bit weight dequantised to {setup.dtype} in the forward (bitsandbytes' path on CUDA beyond 1536 "
            "tokens per step; fewer may use a fused kernel without that buffer) and again in the backward"
        )
    return loaded + "; LLM.int8's CUDA matmul with threshold 6.0 and no outlier column (outliers add a few columns)"
