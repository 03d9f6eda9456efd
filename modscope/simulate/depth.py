"""Full depth from two short models. A step's bytes grow by the same amount with each repeated block (its
weights, adapters, optimizer states and saved activations), so two simulations a period of blocks apart
give every depth: Q(L) = Q(D1) + (L - D1) / period · (Q(D2) - Q(D1)). The tests check this against
full-depth simulations; ``memory`` checks the extended trainable count against PEFT's on the full model."""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

_DEPTH = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
_ENCODER_DECODER = ("encoder_layers", "num_decoder_layers", "decoder_layers")
_PREFIX = ("first_k_dense_replace", "first_dense_layers", "num_dense_layers")


@dataclass(frozen=True)
class DepthPlan:
    depth: int  # the model's
    short: tuple[int, ...]  # the depths simulated: (L,) when the model is simulated whole
    period: int  # blocks between the two short depths


def _owner(config: Any) -> tuple[Any, str] | None:
    """The config (the language model's, in a multimodal config) and attribute holding the depth."""
    if any(isinstance(getattr(config, n, None), int) for n in _ENCODER_DECODER):
        return None  # two stacks: simulated whole
    owner = config.get_text_config()
    for name in _DEPTH:
        if isinstance(getattr(owner, name, None), int):
            return owner, name
    return None


def _is_index_list(values: list[Any], depth: int) -> bool:
    """Llama 4's ``moe_layers``: the indices of the layers that have something, not a value per layer."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return ints and all(0 <= a < b < depth for a, b in itertools.pairwise(values)) and bool(values)


def _lists(owner: Any, depth: int) -> dict[str, list[Any]]:
    """Per-layer lists, index lists turned into one flag per layer."""
    found = {}
    for key, values in vars(owner).items():
        if not isinstance(values, list):
            continue
        if _is_index_list(values, depth) and values[-1] < depth:
            found[key] = [i in set(values) for i in range(depth)]
        elif len(values) == depth:
            found[key] = values
    return found


def _pattern(owner: Any, depth: int) -> tuple[int, int]:
    """(prefix, period): the blocks before the repetition starts (DeepSeek's first dense layers) and the
    length of the repeating pattern (Gemma 3's five sliding + one full layers, Jamba's attention every 8th)."""
    prefix = max((getattr(owner, n) for n in _PREFIX if isinstance(getattr(owner, n, None), int)), default=0)
    ends = ("_period", "_step", "_pattern", "_interval")  # an offset within a period repeats with it
    ints = [v for k, v in vars(owner).items() if k.endswith(ends) and isinstance(v, int) and not isinstance(v, bool)]
    period = math.lcm(1, *[v for v in ints if v > 0])
    for values in _lists(owner, depth).values():
        p = next(p for p in range(1, depth + 1) if all(values[i] == values[i + p] for i in range(prefix, depth - p)))
        period = math.lcm(period, p)
    return prefix, period


def plan_depth(config: Any) -> DepthPlan | None:
    """The short depths to simulate, or None when the model has no single stack of blocks to shorten."""
    found = _owner(config)
    if found is None:
        return None
    owner, name = found
    depth = getattr(owner, name)
    prefix, period = _pattern(owner, depth)
    first = prefix + period + (depth - prefix) % period
    if first + period >= depth:
        return DepthPlan(depth, (depth,), period)
    return DepthPlan(depth, (first, first + period), period)


def at_depth(config: Any, depth: int) -> Any:
    """A copy of ``config`` with its first ``depth`` blocks (per-layer lists cut to match)."""
    config = copy.deepcopy(config)
    found = _owner(config)
    assert found is not None
    owner, name = found
    old = getattr(owner, name)
    for key, values in vars(owner).copy().items():
        if isinstance(values, list) and _is_index_list(values, old):
            setattr(owner, key, [i for i in values if i < depth])
        elif isinstance(values, list) and len(values) == old:
            setattr(owner, key, values[:depth])
    setattr(owner, name, depth)
    return config


def extend(plan: DepthPlan, values: list[int]) -> int:
    """Q(L) from Q at the short depths (exact integer arithmetic)."""
    if len(plan.short) == 1:
        return values[0]
    steps = (plan.depth - plan.short[0]) // plan.period
    return values[0] + steps * (values[1] - values[0])
