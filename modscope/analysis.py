"""The pipeline: resolve -> build -> graph -> classify, and the result notebooks and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modscope.build import BuiltModel, build_resolved
from modscope.errors import OptionError
from modscope.graph import ModuleGraph, build_graph
from modscope.inject import VerifyReport, verify_plan
from modscope.peft_rules import model_refusal
from modscope.presets import DEFAULT_PRESET, PRESETS, Extras, TargetPlan, plan
from modscope.resolve import ResolvedConfig, resolve
from modscope.roles import Layer, classify


@dataclass(frozen=True)
class Analysis:
    """What a model is made of, and what each preset would adapt."""

    model_id: str
    source: str
    location: str
    model_type: str
    architecture: str
    task: str
    total_params: int
    graph: ModuleGraph = field(repr=False)
    layers: tuple[Layer, ...] = field(repr=False)
    module_names: tuple[str, ...] = field(repr=False)
    param_names: tuple[str, ...] = field(repr=False)
    notes: tuple[str, ...] = ()
    peft_refusal: str | None = None  # why get_peft_model fails on this model whatever the targets
    resolved: ResolvedConfig | None = field(default=None, repr=False, compare=False)
    # the model built for this analysis, handed to the first verification instead of building another
    _spare: list = field(default_factory=list, repr=False, compare=False)
    # compiled plans by (preset, extras): show, scan and the error messages ask for the same ones again
    _compiled: dict = field(default_factory=dict, repr=False, compare=False)
    # the task the model was built for; None built the config's own architectures, which a rebuild builds again
    # (the task read back from a class can build another: BertForTokenClassification's is masked-lm's)
    _asked: str | None = field(default=None, repr=False, compare=False)

    def suggest(
        self, preset: str = DEFAULT_PRESET, *, router: bool = False, vision: bool = False, projector: bool = False
    ) -> TargetPlan:
        """The targets for ``preset`` (qv, attention, mlp, all-linear), plus what the flags add.
        Raises ``OptionError``, saying what the model has instead, when the preset selects no layer."""
        if self.peft_refusal:
            raise OptionError(self.peft_refusal)
        extras = Extras(router=router, vision=vision, projector=projector)
        result = self._plan(preset, extras)
        if not result.layers:
            raise OptionError(self._selects_nothing(preset, extras, result))
        return result

    def plans(self, **extras: bool) -> dict[str, TargetPlan]:
        """Every preset that selects at least one layer; ``OptionError`` on a model PEFT cannot adapt."""
        if self.peft_refusal:
            raise OptionError(self.peft_refusal)
        found = {name: self._plan(name, Extras(**extras)) for name in PRESETS}
        return {name: p for name, p in found.items() if p.layers}

    def _plan(self, preset: str, extras: Extras) -> TargetPlan:
        key = (preset, extras)
        if key not in self._compiled:
            self._compiled[key] = plan(
                preset, self.layers, self.module_names, self.param_names, self.total_params, self.model_type, extras
            )
        return self._compiled[key]

    def _selects_nothing(self, preset: str, extras: Extras, result: TargetPlan) -> str:
        """Why ``preset`` is empty here, what the model has, and which preset or flag would select something."""
        have: dict[str, set[str]] = {}
        for layer in self.layers:
            if layer.group not in ("head", "embedding"):
                have.setdefault(f"{layer.part} {layer.group}", set()).add(layer.leaf)
        has = "; ".join(f"{where}: {', '.join(sorted(leaves))}" for where, leaves in sorted(have.items()))
        others = [p for p in PRESETS if p != preset and self._plan(p, extras).layers]
        flags = [
            f"{flag}=True (--include-{flag})"
            for flag in ("vision", "projector", "router")
            if not getattr(extras, flag) and self._plan(preset, replace(extras, **{flag: True})).layers
        ]
        tries = [f"another preset ({', '.join(repr(p) for p in others)})"] if others else []
        tries += flags
        why = " ".join(result.notes)
        groups = {l.group for l in self.layers if l.part == "language"}
        if preset in ("qv", "attention") and "mixer" in groups and not groups & {"attention", "cross_attention"}:
            why = "it has no attention: its token mixers are state-space or recurrent layers, which 'all-linear' adapts"
        return (
            f"preset {preset!r} selects no layer of {self.model_id}{' (' + why + ')' if why else ''}; "
            f"adaptable layers: {has or 'none that LoRA wraps (Linear, GPT-2 Conv1D, Conv1d/2d/3d, Embedding)'}"
            + (
                f"; try {' or '.join(tries)}"
                if tries
                else f"; name layers yourself: `modscope check {self.model_id} --target-modules NAME …`"
            )
        )

    def fresh_model(self) -> Any:
        """A model on the meta device for PEFT to inject into: the spare one once, then new builds."""
        if self._spare:
            return self._spare.pop()
        return self.rebuild().model

    def rebuild(self, config: Any = None) -> BuiltModel:
        """A new meta model of this analysis' class, from its config or from ``config`` (a changed copy of it)."""
        assert self.resolved is not None
        resolved = self.resolved if config is None else replace(self.resolved, config=config)
        return build_resolved(resolved, self._asked)

    def model(self) -> Any:
        """The built meta model, unchanged, for reading what only the tensors tell (which weights are tied);
        it stays the spare for the next injection."""
        if not self._spare:
            self._spare.append(self.fresh_model())
        return self._spare[0]

    def layers_by_role(self) -> dict[tuple[str, str, str], list[Layer]]:
        groups: dict[tuple[str, str, str], list[Layer]] = {}
        for layer in self.layers:
            groups.setdefault((layer.part, layer.group, layer.role), []).append(layer)
        return groups

    def __rich__(self) -> Any:
        from modscope.render.rich import analysis_view

        return analysis_view(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from modscope.render.rich import mimebundle

        return mimebundle(self)

    def draw(self, preset: str | TargetPlan | None = DEFAULT_PRESET, r: int = 8, **extras: bool) -> Any:
        """One block of each stack (each tower) as a matplotlib Figure, layers coloured by role, those ``preset``
        adapts (with ``extras``; None: none) marked with their trainable count at ``r``. Needs modscope[draw]."""
        from modscope.render.diagram import block_diagram

        chosen = self.suggest(preset, **extras) if isinstance(preset, str) else preset
        return block_diagram(self, chosen, r)


def analyze(source: Any, *, task: str | None = None, trust_remote_code: bool = False) -> Analysis:
    """Analyse a model from a Hub id, a local path or a ``transformers.PretrainedConfig``."""
    resolved = resolve(source, trust_remote_code=trust_remote_code)
    return analysis_of(resolved, build_resolved(resolved, task))


def analysis_of(resolved: ResolvedConfig, built: BuiltModel) -> Analysis:
    """The analysis of a model already built (``check`` hands it one whose blocks PEFT has repeated)."""
    graph = build_graph(built.model)
    layers = classify(graph, built.model, resolved.config)
    return Analysis(
        model_id=resolved.model_id,
        source=resolved.source,
        location=resolved.location,
        model_type=resolved.config.model_type,
        architecture=built.architecture,
        task=built.task,
        total_params=graph.total_params,
        graph=graph,
        layers=layers,
        module_names=tuple(n for n in graph.graph.nodes if n),
        param_names=tuple(f"{n}.{p}" if n else p for n, data in graph.graph.nodes(data=True) for p in data["shapes"]),
        notes=resolved.notes,
        peft_refusal=model_refusal(built.model),
        resolved=resolved,
        _spare=[built.model],
        _asked=built.asked,
    )


def verify(analysis: Analysis | Any, preset: str | TargetPlan = DEFAULT_PRESET, r: int = 8) -> VerifyReport:
    """Inject the preset (or a plan) with PEFT on a fresh meta model and compare with the prediction."""
    if not isinstance(analysis, Analysis):
        analysis = analyze(analysis)
    target = preset if isinstance(preset, TargetPlan) else analysis.suggest(preset)
    return verify_plan(analysis.fresh_model(), target, r)
