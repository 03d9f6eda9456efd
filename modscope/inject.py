"""One real PEFT injection on a meta model: PEFT's count and wrapped layers against the prediction.

Where PEFT on meta and on real tensors differ
---------------------------------------------
A user trains a real model, so the real model is the truth; meta is how we get there fast. Each
difference is corrected where it says and pinned by a test (tests/test_real_tensors.py, tests/test_check_configs.py)
that fails the day PEFT changes it (then the correction goes). Found with PEFT 0.21.2, over 33
families and every option ``check`` supports (LoRA, DoRA, bias modes, modules_to_save with tied
heads, rank_pattern, layers_to_transform, target_parameters, AdaLoRA, the SEQ_CLS head):

- AdaLoRA's ``ranknum`` (one scalar per wrapped layer) is frozen on a real model and trainable on a
  meta one. ``AdaLoraLayer.update_layer`` creates it with ``requires_grad=False``;
  ``BaseTunerLayer._move_adapter_to_device_of_base_layer`` then moves it to the base layer's device,
  and on meta ``.to("meta")`` returns a plain tensor that ``nn.ParameterDict.__setitem__`` wraps in a
  new ``nn.Parameter`` with ``requires_grad=True`` (with or without ``low_cpu_mem_usage``). The
  totals agree.

- ``layer_replication`` under ``low_cpu_mem_usage=True`` (modscope's fast path, not a meta effect):
  PEFT runs ``replicate_layers`` inside ``init_empty_weights``, which registers each shared weight of a
  repeated block anew, so the total counts them twice; a real model (PEFT's default) does not.
  ``check.verify_count`` runs ``replicate_layers`` first, outside it (tests/test_check_configs.py).

Nothing else differs there: DoRA magnitudes, modules_to_save copies of tied heads, bias="all" and
3-D expert parameters count the same on both.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

from modscope.errors import first_line


@dataclass(frozen=True)
class VerifyReport:
    preset: str
    r: int
    predicted: int
    peft: int | None
    peft_all: int | None
    peft_version: str
    missing: tuple[str, ...] = ()  # predicted but not wrapped by PEFT
    extra: tuple[str, ...] = ()  # wrapped by PEFT but not predicted
    error: str | None = None

    @property
    def match(self) -> bool:
        return self.error is None and self.peft == self.predicted and not self.missing and not self.extra

    def __rich__(self) -> Any:
        from modscope.render.rich import verification_text

        return verification_text(self)

    @property
    def summary(self) -> str:
        if self.match:
            share = 100 * (self.peft or 0) / self.peft_all if self.peft_all else 0.0
            at = f"at r={self.r}, '{self.preset}' preset" if self.r else self.preset  # r=0: a method without r
            return (
                f"verified with PEFT {self.peft_version}: {self.peft:,} trainable of {self.peft_all:,} "
                f"({share:.4f}%) {at}, same layers wrapped"
            )
        if self.error:
            return f"PEFT {self.peft_version} refused this config: {self.error}"
        parts = []
        if self.peft != self.predicted:
            parts.append(f"PEFT counts {self.peft:,}, modscope predicted {self.predicted:,}")
        if self.missing:
            parts.append(f"{len(self.missing)} predicted layer(s) not wrapped, e.g. {self.missing[0]}")
        if self.extra:
            parts.append(f"{len(self.extra)} extra layer(s) wrapped, e.g. {self.extra[0]}")
        at = f"at r={self.r} ({self.preset})" if self.r else f"({self.preset})"
        return f"MISMATCH with PEFT {self.peft_version} {at}: " + "; ".join(parts)


def wrapped_layers(peft_model: Any) -> set[str]:
    """Names of what PEFT wrapped: module paths, and ``module.parameter`` for parameter targets. The layers of
    the method's own tuner (LoRA's, IA3's, …); none for prompt methods, which wrap no layer."""
    tuner_layer = getattr(peft_model.base_model, "tuner_layer_cls", None)
    if tuner_layer is None:
        return set()
    prefix = "base_model.model."
    names = set()
    for name, module in peft_model.named_modules():
        if not isinstance(module, tuner_layer):
            continue
        path = name[len(prefix) :] if name.startswith(prefix) else name
        path = path.replace(".base_layer", "")
        parameter = getattr(module, "parameter_name", None)
        names.add(f"{path}.{parameter}" if parameter else path)
    return names


def inject(model: Any, peft_config: Any) -> tuple[Any, tuple[int, int]]:
    """``get_peft_model`` with adapters kept on the meta device; returns the model and (trainable, all)."""
    from peft import get_peft_model
    from transformers.initialization import no_init_weights

    # meta tensors hold no values: transformers' own switch skips the init calls (a third of the time); only for
    # LoRA, as other methods use what an init returns (VeRA: ``nn.init.zeros_(…).fill_(…)``), which it makes None
    skip_init = no_init_weights() if peft_config.peft_type in ("LORA", "ADALORA") else contextlib.nullcontext()
    with warnings.catch_warnings(), skip_init:
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, peft_config, low_cpu_mem_usage=True)
    _as_on_real_tensors(peft_model)
    return peft_model, peft_model.get_nb_trainable_parameters()


def _as_on_real_tensors(peft_model: Any) -> None:
    """Apply the real model's rule where meta differs (see the module notes): AdaLoRA's ``ranknum`` is
    frozen, as ``peft.tuners.adalora.layer.AdaLoraLayer.update_layer`` leaves it on real tensors."""
    from peft.tuners.adalora.layer import AdaLoraLayer

    for module in peft_model.modules():
        if isinstance(module, AdaLoraLayer):
            module.ranknum.requires_grad_(False)


def compare(
    model: Any, peft_config: Any, *, label: str, r: int, predicted: int, expected: frozenset[str]
) -> VerifyReport:
    """Inject ``peft_config`` into ``model`` (a fresh meta model, consumed) and compare PEFT's count and
    wrapped layers with the prediction."""
    import peft

    try:
        peft_model, (trainable, total) = inject(model, peft_config)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        return VerifyReport(label, r, predicted, None, None, peft.__version__, error=first_line(exc))
    wrapped = wrapped_layers(peft_model)
    return VerifyReport(
        label,
        r,
        predicted,
        trainable,
        total,
        peft.__version__,
        missing=tuple(sorted(expected - wrapped)),
        extra=tuple(sorted(wrapped - expected)),
    )


def verify_plan(model: Any, plan: Any, r: int, config: Any = None) -> VerifyReport:
    """Inject ``plan`` at rank ``r`` into ``model`` (as ``config``: what a user takes away of it, the plan's own
    LoraConfig by default) and compare with the plan."""
    config = plan.lora_config(r) if config is None else config
    return compare(model, config, label=plan.preset, r=r, predicted=plan.trainable_params(r), expected=plan.wrapped)
