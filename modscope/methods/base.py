"""What every method module gives: ``Method``, its count on one layer (``LayerCount``) and the few facts about
PEFT that several methods share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modscope.counts import AdaptedLayer, Trained
from modscope.errors import OptionError
from modscope.roles import Layer

ALL = frozenset({"linear", "conv1d", "embedding", "torch_conv1d", "conv2d", "conv3d"})
KIND_NAMES = {
    "linear": "Linear",
    "conv1d": "GPT-2 style Conv1D",
    "embedding": "Embedding",
    "torch_conv1d": "Conv1d",
    "conv2d": "Conv2d",
    "conv3d": "Conv3d",
    "param": "parameter (target_parameters)",
}


@dataclass(frozen=True)
class LayerCount:
    params: int
    size: int = 0  # the method's size knob on this layer after PEFT's adjustments (0 where it has none)
    basis: str = ""  # what the count is made of, where the shape alone does not say


def _no_traps(analysis: Any, config: Any, rows: tuple[AdaptedLayer, ...]) -> list[str]:
    return []


@dataclass(frozen=True)
class Method:
    """One PEFT method as modscope counts it. Layer methods give ``layer``; prompt methods give ``prompt``."""

    peft_type: str
    name: str
    config_class: str
    knob: str  # the config field of its main size ("" where it has none, as for IA3)
    sizes: tuple[int, ...]  # the sizes `show --method` counts across
    kinds: frozenset[str] = frozenset({"linear"})  # layer kinds PEFT wraps (graph kinds)
    # (layer, config after PEFT's fill-ins, the meta module) -> what PEFT creates on it
    layer: Callable[[Layer, Any, Any], LayerCount] | None = None
    # (analysis, config, warnings to add to) -> what PEFT trains beside the model's layers
    prompt: Callable[[Any, Any, list[str]], tuple[Trained, ...]] | None = None
    traps: Callable[[Any, Any, tuple[AdaptedLayer, ...]], list[str]] = _no_traps
    show_fields: tuple[tuple[str, Any], ...] = ()  # written by `show` besides the targets and the size

    @property
    def kind_names(self) -> str:
        names = [name for kind, name in KIND_NAMES.items() if kind in self.kinds]
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def refused(method: str, what: str, why: str) -> OptionError:
    """PEFT raises for this config on this layer: one line that says so, and what would work."""
    return OptionError(f"PEFT's {method} refuses {what}: {why}")


def kernel_dim(module: Any) -> int:
    """in_channels × kernel_size[0]², the width OFT, BOFT and HRA give a Conv2d: PEFT squares the first kernel
    side (``conv_filter_dim`` in ``oft.layer.Conv2d.update_layer``), whatever the second."""
    return module.in_channels * module.kernel_size[0] * module.kernel_size[0]


def prepared(analysis: Any, config: Any) -> Any:
    """A prompt method's config with what PEFT fills in from the model (``_prepare_prompt_learning_config``:
    layers, token_dim, heads, the encoder's hidden size; ``PeftModel._setup_prompt_encoder``: two transformer
    submodules for SEQ_2_SEQ_LM, else one). Filled in place on the caller's copy."""
    from peft.utils.other import _prepare_prompt_learning_config

    if not config.num_virtual_tokens:
        raise OptionError(f"{config.peft_type.value}: set num_virtual_tokens (PEFT has no default for it)")
    try:
        _prepare_prompt_learning_config(config, analysis.model().config)
    except (ValueError, KeyError) as exc:
        raise OptionError(f"PEFT cannot size {config.peft_type.value} on {analysis.model_type}: {exc}") from None
    if config.num_transformer_submodules is None:
        config.num_transformer_submodules = 2 if config.task_type == "SEQ_2_SEQ_LM" else 1
    return config
