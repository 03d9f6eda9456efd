"""One training step as transformers' Trainer with PEFT runs it, on fake tensors (the estimate) or real CPU
tensors (the check): the model in ``dtype``, adapters as PEFT creates them, labels = inputs, AdamW,
``zero_grad(set_to_none=True)`` after the step. The second step is the steady state, the one measured."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

from modscope.simulate.quant import state_tensors
from modscope.simulate.track import PHASES, Peak, make_tracker

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
OPTIMIZERS = ("adamw", "adamw-8bit", "sgd")
ATTENTION = ("sdpa", "eager")


@dataclass(frozen=True)
class Setup:
    """What the step is made of. Every field is stated in the report."""

    batch: int = 1
    seq: int = 512
    dtype: str = "bf16"
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"
    attention: str | None = None  # transformers' default for the model (sdpa where it has it, else eager)
    quant: str = "none"  # bitsandbytes' nf4 or int8 base weights (QLoRA), compute dtype ``dtype``
    double_quant: bool = True  # nf4: bnb_4bit_use_double_quant, as the QLoRA recipe sets it
    rounding: int = 512  # CUDA's caching allocator hands out multiples of 512 bytes


@dataclass(frozen=True)
class StepResult:
    peaks: dict[str, Peak]  # by phase
    persistent: dict[str, int]  # what stays between steps: weights, adapters, optimizer states
    trainable: int  # parameters, as PEFT counts them


def run_step(model: Any, setup: Setup, *, fake: bool) -> StepResult:
    """Two steps of ``model`` (a PEFT model: meta tensors when ``fake``, real CPU tensors otherwise)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    tracker = make_tracker(setup.rounding)
    with contextlib.ExitStack() as stack:
        if fake:
            # fake tensors log each op that raises before the error reaches us: one line from us is enough
            stack.enter_context(_quiet("torch._subclasses.fake_tensor"))
            stack.enter_context(FakeTensorMode())
            stack.enter_context(_unpacked_sequences())
            _to_fake(model)
        for p in model.parameters():
            tracker.add(p, "adapters" if p.requires_grad else "weights")
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(lambda p: tracker.add(p.grad, "gradients"))
        for b in model.buffers():
            tracker.add(b, "weights")
        for t in state_tensors(model):  # real bitsandbytes' quantisation state (stand-ins hold it as buffers)
            tracker.add(t, "weights")
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = _optimizer(setup.optimizer, trainable, fake)
        model.train()
        with tracker, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ids = torch.zeros((setup.batch, setup.seq), dtype=torch.long)
            autocast = torch.autocast("cpu", dtype=getattr(torch, DTYPES[setup.dtype]), enabled=setup.dtype != "fp32")
            if fake:  # the first step leaves only the optimizer's state behind: make it without running the model
                for p in trainable:
                    p.grad = torch.zeros_like(p)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            else:  # the check runs the first step in full (the tests prove the shortcut equal to it)
                _step(model, ids, autocast, optimizer, tracker)
            for state in optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        tracker.add(value, "optimizer")
            tracker.reset_peaks()
            _step(model, ids, autocast, optimizer, tracker)
    persistent = {k: tracker.live[k] for k in ("weights", "adapters", "optimizer")}
    return StepResult(tracker.peaks, persistent, sum(p.numel() for p in trainable))


def _step(model: Any, ids: Any, autocast: Any, optimizer: Any, tracker: Any) -> None:
    tracker.phase = PHASES[0]
    with autocast:
        loss = model(input_ids=ids, labels=ids).loss
    tracker.phase = PHASES[1]
    loss.backward()
    del loss
    tracker.phase = PHASES[2]
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@contextlib.contextmanager
def _quiet(logger: str) -> Any:
    import logging

    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _unpacked_sequences() -> Any:
    """transformers reads the position ids to tell packed sequences apart, and on fake tensors, whose values it
    cannot read, assumes packing and builds a full B·S·S mask that the real step never builds. The simulated
    batch is unpacked (one sequence per row, as the real inputs are), so say so instead of reading it."""
    from transformers import masking_utils

    saved = getattr(masking_utils, "find_packed_sequence_indices", None)
    if saved is not None:
        masking_utils.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield
    finally:
        if saved is not None:
            masking_utils.find_packed_sequence_indices = saved


def _optimizer(name: str, params: list[Any], fake: bool) -> Any:
    import torch

    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-4)
    if name == "adamw-8bit":
        from modscope.simulate.quant import adamw_8bit

        return adamw_8bit(params, fake=fake)
    # foreach, as torch picks on CUDA (a CPU default would be the single-tensor loop)
    return torch.optim.AdamW(params, lr=1e-4, foreach=True)


def _to_fake(model: Any) -> None:
    """Replace every meta parameter and buffer by a fake CPU tensor of the same shape and dtype, inside the
    active FakeTensorMode. Shared tensors stay shared (``to_empty`` would untie tied embeddings)."""
    import torch

    fakes: dict[int, Any] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, tensor in table.items():
                if tensor is None:
                    continue
                if id(tensor) not in fakes:
                    empty = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu")
                    is_param = isinstance(tensor, torch.nn.Parameter)
                    fakes[id(tensor)] = torch.nn.Parameter(empty, tensor.requires_grad) if is_param else empty
                table[name] = fakes[id(tensor)]
