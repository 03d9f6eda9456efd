"""One real PEFT injection on a meta model: PEFT's count and wrapped layers against the prediction."""

from __future__ import annotations

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
            share = 100 * self.peft / self.peft_all if self.peft_all else 0.0
            return (
                f"verified with PEFT {self.peft_version}: {self.peft:,} trainable of {self.peft_all:,} "
                f"({share:.4f}%) at r={self.r}, '{self.preset}' preset, same layers wrapped"
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
        return f"MISMATCH with PEFT {self.peft_version} at r={self.r} ({self.preset}): " + "; ".join(parts)


def wrapped_layers(peft_model: Any) -> set[str]:
    """Names of what PEFT wrapped: module paths, and ``module.parameter`` for parameter targets."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    names = set()
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        path = name[len(prefix):] if name.startswith(prefix) else name
        path = path.replace(".base_layer", "")
        parameter = getattr(module, "parameter_name", None)
        names.add(f"{path}.{parameter}" if parameter else path)
    return names


def inject(model: Any, peft_config: Any) -> tuple[Any, tuple[int, int]]:
    """``get_peft_model`` with adapters kept on the meta device; returns the model and (trainable, all)."""
    from peft import get_peft_model
    from transformers.initialization import no_init_weights

    # meta tensors hold no values: transformers' own switch skips the init calls (a third of the time)
    with warnings.catch_warnings(), no_init_weights():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, peft_config, low_cpu_mem_usage=True)
    return peft_model, peft_model.get_nb_trainable_parameters()


def compare(model: Any, peft_config: Any, *, label: str, r: int, predicted: int,
            expected: frozenset[str]) -> VerifyReport:
    """Inject ``peft_config`` into ``model`` (a fresh meta model, consumed) and compare PEFT's count and
    wrapped layers with the prediction."""
    import peft

    try:
        peft_model, (trainable, total) = inject(model, peft_config)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        return VerifyReport(label, r, predicted, None, None, peft.__version__, error=first_line(exc))
    wrapped = wrapped_layers(peft_model)
    return VerifyReport(label, r, predicted, trainable, total, peft.__version__,
                        missing=tuple(sorted(expected - wrapped)), extra=tuple(sorted(wrapped - expected)))


def verify_plan(model: Any, plan: Any, r: int) -> VerifyReport:
    """Inject ``plan`` at rank ``r`` into ``model`` and compare."""
    return compare(model, plan.lora_config(r), label=plan.preset, r=r, predicted=plan.trainable_params(r),
                   expected=plan.wrapped)
