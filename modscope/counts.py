"""What a count reports, whatever the PEFT method: the adapted layers, the totals by role, and the parameters
trained beside them (biases, modules_to_save copies, prompt encoders). ``check`` (LoRA, AdaLoRA) and
``methods`` (IA3, LoHa, OFT, …) fill the same result, so that one renderer shows them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modscope.formulas import percent
from modscope.roles import ROLE_ORDER, Layer


@dataclass(frozen=True)
class AdaptedLayer:
    layer: Layer
    r: int  # the method's size on this layer, after PEFT's own adjustments (r, block size, n_frequency; 0: none)
    params: int  # trainable adapter parameters on this layer (DoRA magnitude and AdaLoRA's lora_E included)
    frozen: int = 0  # adapter parameters PEFT adds frozen: AdaLoRA's ranknum scalar (in total, not trainable)
    basis: str = ""  # what the count is made of, where the shape alone does not say (IA3: in or out features)


@dataclass(frozen=True)
class RoleTotal:
    part: str
    group: str
    role: str
    layers: int
    ranks: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class Trained:
    """Parameters a method trains that belong to no adapted layer: a prompt encoder, the adaption prompts."""

    what: str
    params: int
    detail: str = ""
    added: bool = True  # created by PEFT (so in the total too), or the model's own left trainable


@dataclass(frozen=True)
class CountReport:
    """What a PEFT config adapts on a model and what PEFT will count, with plain-words warnings."""

    model_id: str
    method: str  # LoRA | AdaLoRA | IA3 | LoHa | …
    target_modules: tuple[str, ...] | str | None  # as PEFT matches them (after its own rewrites)
    target_parameters: tuple[str, ...]
    rows: tuple[AdaptedLayer, ...]
    roles: tuple[RoleTotal, ...]
    adapter_params: int
    bias: str
    bias_params: int
    saved_modules: tuple[str, ...]  # modules_to_save (and SEQ_CLS heads) PEFT copies
    saved_params: int
    base_params: int
    trainable: int
    total: int
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # what PEFT would refuse outright
    config: Any = field(default=None, repr=False, compare=False)  # the PEFT config as given
    analysis: Any = field(default=None, repr=False, compare=False)
    knob: str = "r"  # what AdaptedLayer.r is: r, oft_block_size, n_frequency; "" where the method has none
    others: tuple[Trained, ...] = ()  # trained beside the layers (prompt methods), in adapter_params

    @property
    def trainable_percent(self) -> float:
        return percent(self.trainable, self.total)

    @property
    def wrapped(self) -> frozenset[str]:
        return frozenset(row.layer.name for row in self.rows)

    def __rich__(self) -> Any:
        from modscope.render.rich import check_table

        return check_table(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from modscope.render.rich import mimebundle

        return mimebundle(self)


def copy_params(analysis: Any, module: str) -> int:
    """Size of the deep copy modules_to_save trains: the module's tensors, each once."""
    return sum(p.numel() for p in analysis.model().get_submodule(module).parameters())


def bias_params(analysis: Any, bias: str, rows: tuple[AdaptedLayer, ...], saved: tuple[str, ...]) -> tuple[int, int]:
    """(parameters, tensors) of the biases ``bias`` makes trainable; modules_to_save originals stay frozen.
    ``"all"`` or ``"<method>_only"``, as ``BaseTuner._mark_only_adapters_as_trainable`` reads it."""
    if bias == "none":
        return 0, 0
    model = analysis.model()
    if bias == "all":  # named_parameters() yields a tied bias once, under its first name
        found = {name: p for name, p in model.named_parameters() if name == "bias" or name.endswith(".bias")}
    else:  # lora_only, oft_only, …: the biases of the wrapped layers
        found = {}
        for row in rows:
            b = getattr(model.get_submodule(row.layer.module), "bias", None)
            if b is not None and all(b is not p for p in found.values()):
                found[f"{row.layer.module}.bias"] = b
    kept = [p for name, p in found.items() if not any(name.startswith(s + ".") for s in saved)]
    return sum(p.numel() for p in kept), len(kept)


def role_totals(rows: tuple[AdaptedLayer, ...]) -> tuple[RoleTotal, ...]:
    groups: dict[tuple[str, str, str], list[AdaptedLayer]] = {}
    for row in rows:
        groups.setdefault((row.layer.part, row.layer.group, row.layer.role), []).append(row)
    ordered = sorted(
        groups.items(), key=lambda kv: (kv[0][0] != "language", kv[0][0], kv[0][1], ROLE_ORDER.index(kv[0][2]))
    )
    return tuple(
        RoleTotal(part, group, role, len(rs), tuple(sorted({r.r for r in rs})), sum(r.params for r in rs))
        for (part, group, role), rs in ordered
    )
