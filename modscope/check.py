"""Check a user's own LoraConfig: what it adapts, what it costs, and what it probably did not mean.

The matching follows PEFT's rules exactly (``tuners_utils.check_target_module_exists``,
``_inject_parameters``, ``_set_trainable``, ``get_pattern_key``) over modscope's layer list, so
the counts come without an injection; ``verify_count`` then proves them with one.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from modscope.errors import OptionError, first_line
from modscope.formulas import lora_params, percent
from modscope.matching import matches, pattern_key
from modscope.peft_rules import CHECKED_FIELDS, MAMBA_REFUSED, MAMBA_TYPES, check_values
from modscope.roles import ROLE_ORDER, Layer

_SEQ_CLS_HEADS = ["classifier", "score"]  # what PeftModelForSequenceClassification adds to modules_to_save
_TASK_OF_TYPE = {"SEQ_CLS": "sequence-classification", "CAUSAL_LM": "causal-lm", "SEQ_2_SEQ_LM": "seq2seq-lm"}


@dataclass(frozen=True)
class AdaptedLayer:
    layer: Layer
    r: int
    params: int  # trainable adapter parameters on this layer (DoRA magnitude and AdaLoRA's lora_E included)
    frozen: int = 0  # adapter parameters PEFT adds frozen: AdaLoRA's ranknum scalar (in total, not trainable)


@dataclass(frozen=True)
class RoleTotal:
    part: str
    group: str
    role: str
    layers: int
    ranks: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class CountReport:
    """What a LoraConfig adapts on a model and what PEFT will count, with plain-words warnings."""

    model_id: str
    method: str  # LoRA | AdaLoRA
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


def peft_config(lora_config: Any) -> Any:
    """A ``peft.LoraConfig`` / ``AdaLoraConfig`` from one, or from a dict of its fields (an adapter_config.json),
    loaded as PEFT loads a saved adapter."""
    return _load(lora_config)[0]


def _load(lora_config: Any) -> tuple[Any, list[str]]:
    """The PEFT config, and what loading it says, in plain words.

    A dict goes through PEFT's own loader, as ``PeftConfig.from_pretrained`` does with a saved adapter_config.json:
    ``check_kwargs``, then ``from_peft_type``, which drops the keys this PEFT does not know (older or newer
    versions' keys) with a warning; that warning becomes one line."""
    import warnings

    import peft
    from peft import AdaLoraConfig, LoraConfig, PeftConfig
    from peft.config import _check_and_remove_unused_kwargs

    notes: list[str] = []
    if isinstance(lora_config, (LoraConfig, AdaLoraConfig)):
        config = copy.deepcopy(lora_config)
        check_values({f: getattr(config, f) for f in CHECKED_FIELDS if hasattr(config, f)},
                      isinstance(config, AdaLoraConfig))
    elif isinstance(lora_config, dict):
        values = dict(lora_config)
        cls = _config_class(values.setdefault("peft_type", "LORA"))
        check_values(values, cls is AdaLoraConfig)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                kwargs = cls.check_kwargs(**values)
                config = PeftConfig.from_peft_type(**kwargs)
            except Exception as exc:  # PEFT's own checks of this input (ValueError, TypeError, ImportError, …)
                raise OptionError(f"PEFT {peft.__version__} rejects this {cls.__name__}: {first_line(exc)}") \
                    from None
        for warning in caught:
            if str(warning.message).startswith("Unexpected keyword arguments"):
                ignored = sorted(_check_and_remove_unused_kwargs(cls, dict(kwargs))[1])
                many = len(ignored) > 1
                notes.append(f"{'keys' if many else 'key'} {', '.join(ignored)} {'are' if many else 'is'} unknown "
                             f"to PEFT {peft.__version__} and ignored, as PEFT ignores {'them' if many else 'it'} "
                             "when it loads this config")
            elif issubclass(warning.category, (UserWarning, FutureWarning)):
                notes.append(f"PEFT says: {first_line(warning.message)}")
    else:
        raise OptionError(f"expected a peft.LoraConfig or a dict of its fields, not {type(lora_config).__name__}")
    if config.inference_mode:  # save_pretrained writes true; training resumes with is_trainable=True
        config.inference_mode = False
        notes.append("inference_mode=true, as PEFT saves it: counted as trained, as "
                     "PeftModel.from_pretrained(..., is_trainable=True) loads it (without that flag nothing trains)")
    for option, what in _NOT_COUNTED.items():
        if getattr(config, option, None):
            raise OptionError(f"{option} adds {what}, which modscope does not count yet: check the config "
                              "without it (the rest counts the same)")
    if isinstance(config, AdaLoraConfig) and config.rank_pattern:
        kept = sum(sum(map(bool, mask)) for mask in config.rank_pattern.values())
        notes.append(f"rank_pattern holds AdaLoRA's learned budget ({kept} ranks kept in "
                     f"{len(config.rank_pattern)} layers): get_peft_model starts again at init_r={config.init_r}, "
                     "as counted here; PeftModel.from_pretrained resizes the layers to it")
    return config, notes


# options that change what PEFT trains and that the count does not model: refused rather than miscounted
_NOT_COUNTED = {
    "lora_bias": "a trainable bias to every lora_B",
    "trainable_token_indices": "trainable token embeddings",
    "use_bdlora": "block-diagonal LoRA factors (fewer parameters)",
    "kasa_config": "KaSA's singular values to every layer",
}


def _config_class(peft_type: Any) -> Any:
    """The config class PEFT loads ``peft_type`` with, if modscope checks it."""
    import peft
    from peft import AdaLoraConfig, LoraConfig
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING as classes

    checked = "modscope checks LORA and ADALORA configs"
    if not isinstance(peft_type, str) or peft_type not in classes:
        spelled = [t.value for t in classes if str(peft_type).upper().rpartition(".")[2] == t.value]
        fix = f"write peft_type {spelled[0]!r}" if spelled else checked
        raise OptionError(f"peft_type {peft_type!r} is not one PEFT {peft.__version__} knows: {fix}")
    cls = classes[peft_type]
    if cls not in (LoraConfig, AdaLoraConfig):
        raise OptionError(f"peft_type {peft_type!r} is a PEFT method modscope does not check yet: {checked}")
    return cls


def count(source: Any, lora_config: Any, *, task: str | None = None) -> CountReport:
    """Which layers ``lora_config`` adapts on ``source`` and how many parameters PEFT will train."""
    from modscope.analysis import Analysis, analyze

    config, notes = _load(lora_config)
    task_type = str(getattr(config.task_type, "value", config.task_type) or "")
    if isinstance(source, Analysis):
        analysis = source
    else:
        analysis = analyze(source, task=task or _TASK_OF_TYPE.get(task_type))
    if not config.layer_replication:
        return _count(analysis, config, task_type, notes)
    # PEFT repeats blocks before it adapts them: count on that model, verify on the original (PEFT replicates it)
    return replace(_count(_replicated(analysis, config.layer_replication), config, task_type, notes),
                   analysis=analysis)


def _replicated_model(analysis: Any, layer_map: list[list[int]]) -> Any:
    """A fresh meta model with its blocks repeated by PEFT's own ``replicate_layers`` (sharing base weights), as
    ``LoraModel._prepare_model`` does for ``layer_replication``. Built from a copy of the config: PEFT rewrites
    ``num_hidden_layers`` on the model's config, which the analysis shares."""
    from peft.tuners.tuners_utils import replicate_layers

    from modscope.build import build

    resolved = analysis.resolved
    built = build(copy.deepcopy(resolved.config), analysis.task, trust_remote_code=resolved.trust_remote_code)
    blocks = getattr(built.model.config, "num_hidden_layers", None)
    try:
        replicate_layers(built.model, layer_map)
    except ValueError as exc:  # no block list where PEFT looks for one
        raise OptionError(f"PEFT cannot apply layer_replication to {analysis.model_type}: {first_line(exc)}; "
                          "drop layer_replication") from None
    except IndexError as exc:
        raise OptionError(f"PEFT cannot apply layer_replication={layer_map} to {analysis.model_type}: "
                          f"{first_line(exc)}; give [start, end) ranges within its {blocks} blocks") from None
    return built


def _replicated(analysis: Any, layer_map: list[list[int]]) -> Any:
    """The analysis of the model PEFT adapts under ``layer_replication``."""
    from modscope.analysis import analysis_of

    built = _replicated_model(analysis, layer_map)
    return analysis_of(replace(analysis.resolved, config=built.model.config), built)


def _count(analysis: Any, original: Any, task_type: str, notes: list[str]) -> CountReport:
    from peft import AdaLoraConfig

    config = copy.deepcopy(original)
    ada = isinstance(config, AdaLoraConfig)
    warnings: list[str] = list(notes)
    problems: list[str] = []
    if task_type == "SEQ_CLS":
        config.modules_to_save = list(config.modules_to_save or []) + _SEQ_CLS_HEADS
    _peft_rewrites(analysis, config, ada)
    if config.target_modules is None:  # PEFT fills in its default, even beside target_parameters
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

        if analysis.model_type in defaults:
            default = defaults[analysis.model_type]  # a list, or one regex string for some types
            config.target_modules = default if isinstance(default, str) else list(default)
            warnings.append(f"no target_modules given: PEFT adds its default for {analysis.model_type}, "
                            f"{config.target_modules}; set target_modules=[] to adapt only target_parameters")
        elif not config.target_parameters:
            raise OptionError(f"no target_modules given and PEFT has no default for {analysis.model_type}: "
                              f"name them (see `modscope show {analysis.model_id}`)")
    targets = config.target_modules
    if isinstance(targets, str) and targets.lower() == "all-linear":
        targets = config.target_modules = sorted(_all_linear(analysis, task_type))

    layers = {l.name: l for l in analysis.layers}
    chosen: list[Layer] = []
    excluded: list[str] = []
    for name in analysis.module_names:
        hit = _module_matches(config, name)
        if hit == "excluded":
            excluded.append(name)
        elif hit:
            layer = layers.get(name)
            if layer is None or layer.parameter is not None:
                problems.append(f"{name} ({analysis.graph.attrs(name)['cls']}) matches target_modules but is not a "
                                "layer LoRA can wrap; PEFT will refuse it: name its Linear children instead")
            elif ada and layer.kind not in ("linear", "conv1d"):
                problems.append(f"AdaLoRA wraps only Linear and Conv1D layers, not {name} ({layer.cls})")
            else:
                chosen.append(layer)
    for name in analysis.param_names:
        if matches(list(config.target_parameters or ()), name):
            layer = layers.get(name) or _weight_of(layers.get(name.rpartition(".")[0]), name)
            if layer is None:
                problems.append(f"target_parameters hits {name}, which modscope cannot count: target a 2-D or "
                                "3-D weight")
            else:
                chosen.append(layer)

    rows = tuple(_row(layer, config, ada) for layer in chosen)
    if not rows and not problems:
        raise OptionError(_nothing_matched(analysis, config))
    saved = _saved_modules(analysis, config.modules_to_save)
    saved_params = sum(_copy_params(analysis, m) for m in saved)
    bias_params, bias_count = _bias_params(analysis, config.bias, rows, saved)
    adapter = sum(row.params for row in rows)
    warnings += _warnings(analysis, original, config, rows, excluded, saved, saved_params, bias_count, bias_params)
    problems += _refusals(config, rows, analysis.model_type, analysis.peft_refusal)
    return CountReport(
        model_id=analysis.model_id,
        method="AdaLoRA" if ada else "LoRA",
        target_modules=targets if isinstance(targets, str) or targets is None else tuple(sorted(targets)),
        target_parameters=tuple(sorted(config.target_parameters or ())),
        rows=rows,
        roles=_role_totals(rows),
        adapter_params=adapter,
        bias=config.bias,
        bias_params=bias_params,
        saved_modules=saved,
        saved_params=saved_params,
        base_params=analysis.total_params,
        trainable=adapter + bias_params + saved_params,
        total=analysis.total_params + adapter + sum(row.frozen for row in rows) + saved_params,
        warnings=tuple(warnings),
        problems=tuple(problems),
        config=original,
        analysis=analysis,
    )


def _peft_rewrites(analysis: Any, config: Any, ada: bool) -> None:
    """On MoE types PEFT converts for transformers 5, let PEFT itself rewrite the targets, as it will on injection."""
    from modscope.presets import peft_rewritten_names

    if ada or not peft_rewritten_names(analysis.model_type):
        return
    from peft.utils.transformers_weight_conversion import convert_peft_config_for_transformers

    try:
        convert_peft_config_for_transformers(config, analysis.model(), None)
    except ValueError as exc:
        raise OptionError(f"PEFT cannot convert these targets on {analysis.model_type}: {exc}") from None


def _all_linear(analysis: Any, task_type: str) -> set[str]:
    """PEFT's ``all-linear``: every Linear and Conv1D but the output layer (or the SEQ_CLS head)."""
    names = {l.name for l in analysis.layers if l.kind in ("linear", "conv1d") and l.parameter is None}
    outputs = {l.name for l in analysis.layers if l.role == "lm_head"}
    if not outputs and task_type == "SEQ_CLS":
        outputs = set(_SEQ_CLS_HEADS[:1] if "classifier" in analysis.module_names else ["score"])
    return names - outputs


def _module_matches(config: Any, key: str) -> bool | str:
    """PEFT's check_target_module_exists; ``"excluded"`` for exclude_modules and modules_to_save."""
    if matches(config.exclude_modules, key):
        return "excluded"
    if config.modules_to_save and any(re.match(rf"(^|.*\.){m}($|\..*)", key) for m in config.modules_to_save):
        return "excluded"
    targets = config.target_modules
    if isinstance(targets, str) or (targets and key in targets):  # a regex, or a full name: no layer filter
        return matches(targets, key)
    return matches(targets, key) and _in_layers(config, key)


def _in_layers(config: Any, key: str) -> bool:
    indexes, patterns = config.layers_to_transform, config.layers_pattern
    if indexes is None or (isinstance(indexes, list) and not indexes):
        return True
    match = None
    if not patterns:
        match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)  # the first numbered segment
    else:
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            match = re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key)
            if match:
                break
    if match is None:
        return False
    index = int(match["idx"])
    return index == indexes if isinstance(indexes, int) else index in indexes


def _weight_of(layer: Layer | None, name: str) -> Layer | None:
    """A Linear's ``weight`` named in target_parameters: PEFT wraps the parameter, with the same r·(in+out)."""
    if layer is None or layer.kind not in ("linear", "conv1d") or not name.endswith(".weight"):
        return None
    return replace(layer, name=name, parameter="weight", kind="param")


def _row(layer: Layer, config: Any, ada: bool) -> AdaptedLayer:
    if ada:  # lora_A, lora_B and lora_E (r×1) at init_r; AdaLoraLayer.update_layer adds ranknum frozen
        r = config.init_r
        return AdaptedLayer(layer, r, lora_params(layer, r) + r, frozen=1)
    key = pattern_key(config.rank_pattern or {}, layer.name)
    r = config.r if key is None else config.rank_pattern[key]
    dora = layer.out_features if config.use_dora else 0  # the magnitude vector
    return AdaptedLayer(layer, r, lora_params(layer, r) + dora)


def _saved_modules(analysis: Any, modules_to_save: Any) -> tuple[str, ...]:
    """PEFT's _set_trainable: every module whose name ends with an entry (no dot needed), outermost first."""
    saved: list[str] = []
    for name in analysis.module_names:
        if any(name.endswith(m) for m in modules_to_save or ()) and not any(name.startswith(s + ".") for s in saved):
            saved.append(name)
    return tuple(saved)


def _copy_params(analysis: Any, module: str) -> int:
    """Size of the deep copy modules_to_save trains: the module's tensors, each once."""
    return sum(p.numel() for p in analysis.model().get_submodule(module).parameters())


def _bias_params(analysis: Any, bias: str, rows: tuple[AdaptedLayer, ...], saved: tuple[str, ...]) -> tuple[int, int]:
    """(parameters, tensors) of the biases ``bias`` makes trainable; modules_to_save originals stay frozen."""
    if bias == "none":
        return 0, 0
    model = analysis.model()
    if bias == "all":  # named_parameters() yields a tied bias once, under its first name
        found = {name: p for name, p in model.named_parameters() if name == "bias" or name.endswith(".bias")}
    else:  # lora_only: the biases of the wrapped layers
        found = {}
        for row in rows:
            b = getattr(model.get_submodule(row.layer.module), "bias", None)
            if b is not None and all(b is not p for p in found.values()):
                found[f"{row.layer.module}.bias"] = b
    kept = [p for name, p in found.items() if not any(name.startswith(s + ".") for s in saved)]
    return sum(p.numel() for p in kept), len(kept)


def _role_totals(rows: tuple[AdaptedLayer, ...]) -> tuple[RoleTotal, ...]:
    groups: dict[tuple[str, str, str], list[AdaptedLayer]] = {}
    for row in rows:
        groups.setdefault((row.layer.part, row.layer.group, row.layer.role), []).append(row)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0] != "language", kv[0][0], kv[0][1],
                                                     ROLE_ORDER.index(kv[0][2])))
    return tuple(RoleTotal(part, group, role, len(rs), tuple(sorted({r.r for r in rs})), sum(r.params for r in rs))
                 for (part, group, role), rs in ordered)


def _close_names(analysis: Any, wanted: str, params: bool = False) -> list[str]:
    """The real names nearest to ``wanted``: leaf names, or dotted suffixes of the same depth."""
    from modscope.roles import name_hint

    depth = wanted.count(".") + 1
    names = analysis.param_names if params else [l.name for l in analysis.layers if l.parameter is None]
    candidates = sorted({".".join(n.split(".")[-depth:]) for n in names})
    close = difflib.get_close_matches(wanted, candidates, n=3, cutoff=0.4)
    # what the name means, found under this model's own name (q_proj -> BERT's query)
    role = None if params else name_hint(wanted.rpartition(".")[2])
    same_role = [l.leaf for l in analysis.layers if role and l.role == role and l.part == "language"]
    return list(dict.fromkeys(same_role[:1] + close))


def _nothing_matched(analysis: Any, config: Any) -> str:
    """What was given (a list or a regex), and the model's adaptable names by role, closest to it first."""
    targets = config.target_modules
    if isinstance(targets, str):
        modules = [l.name for l in analysis.layers if l.parameter is None]
        example = next((name for name in modules if re.search(r"\.\d+\.", name)), modules[0] if modules else "")
        what = (f"target_modules={targets!r} (one string: a regex PEFT fullmatches against whole module names "
                f"such as {example})")
        words = re.findall(r"[A-Za-z_]\w*", targets)
    else:
        what = f"target_modules={sorted(targets or [])!r} (a list: an entry matches a module's name or its end)"
        words = list(targets or [])
    if config.target_parameters:
        what += f", target_parameters={list(config.target_parameters)}"
    limits = [f"{key}={getattr(config, key)!r}" for key in ("layers_to_transform", "exclude_modules")
              if getattr(config, key) not in (None, [], set())]
    hints = [h for h in [_list_hint(analysis, targets)] if h]
    close = [c for t in config.target_parameters or () for c in _close_names(analysis, t, params=True)]
    if close:
        hints.append(f"closest parameters: {', '.join(dict.fromkeys(close))}")
    return (f"{what}{' with ' + ' and '.join(limits) if limits else ''} matches nothing in {analysis.model_id}; "
            + "".join(h + "; " for h in hints) + f"its adaptable layers by role: {_by_role(analysis, words)}")


_SHOWN = 15  # adaptable names listed when nothing matched; all of them up to this many


def _by_role(analysis: Any, asked: list[str]) -> str:
    """The model's adaptable leaf names grouped by role (``attention: q_proj (q), …; mlp: …``), the closest to
    ``asked`` first: by spelling, or by meaning (``q_proj`` finds BERT's ``query``)."""
    from modscope.roles import name_hint

    words = [w.rpartition(".")[2] for w in asked]
    meant = {name_hint(w) for w in words} - {None}
    entries = dict.fromkeys(  # (group, leaf, role), in the model's order
        (l.group.replace("_", " ") if l.part == "language" else f"{l.part} {l.group}", l.leaf, l.role)
        for l in analysis.layers if l.parameter is None)

    def closeness(entry: tuple[str, str, str]) -> float:
        _, leaf, role = entry
        spelled = max((difflib.SequenceMatcher(None, w, leaf).ratio() for w in words), default=0.0)
        return spelled + (role in meant)

    ranked = sorted(entries, key=closeness, reverse=True)
    groups: dict[str, list[str]] = {}
    for group, leaf, role in ranked[:_SHOWN]:
        groups.setdefault(group, []).append(leaf if leaf == role else f"{leaf} ({role})")
    listing = "; ".join(f"{group}: {', '.join(leaves)}" for group, leaves in groups.items())
    more = len(ranked) - _SHOWN
    return (listing or "none that LoRA wraps") + (
        f"; and {more} more (see `modscope show {analysis.model_id}`)" if more > 0 else "")


def _list_hint(analysis: Any, targets: Any) -> str | None:
    """A string target that is really leaf names: PEFT fullmatches it against whole module names."""
    if not isinstance(targets, str):
        return None
    words = [w for w in re.split(r"[\s,'\"\[\]|()]+", targets) if w]
    leaves = {l.leaf for l in analysis.layers}
    if words and all(w in leaves for w in words):
        return f"{targets!r} looks like a list of leaf names: write target_modules={words!r} to adapt them"
    return None


def _warnings(analysis: Any, original: Any, config: Any, rows: tuple[AdaptedLayer, ...], excluded: list[str],
              saved: tuple[str, ...], saved_params: int, bias_count: int, bias_params: int) -> list[str]:
    out: list[str] = []
    targets = original.target_modules
    if isinstance(targets, str) and targets.lower() != "all-linear":
        out.append(f"target_modules is one string, so PEFT reads it as a regex that must match whole module "
                   f"names ({len([r for r in rows if r.layer.parameter is None])} layers match)")
        if hint := _list_hint(analysis, targets):
            out.append(hint)
    elif targets is not None and not isinstance(targets, str):
        rewritten = _rewritten_entries(config, original)
        for t in sorted(targets):
            if not any(matches([t], n) for n in analysis.module_names) and t not in rewritten:
                close = _close_names(analysis, t)
                out.append(f"target_modules entry {t!r} matches nothing" +
                           (f"; did you mean {', '.join(close)}?" if close else ""))
    for t in sorted(original.target_parameters or ()):
        if not any(matches([t], p) for p in analysis.param_names):
            close = _close_names(analysis, t, params=True)
            out.append(f"target_parameters entry {t!r} matches nothing" +
                       (f"; did you mean {', '.join(close)}?" if close else ""))
    for what, picked in (("heads (lm_head, classifier, pooler)", [r for r in rows if r.layer.group == "head"]),
                         ("the input/output embeddings", [r for r in rows if r.layer.role == "embed"]),
                         ("the MoE router", [r for r in rows if r.layer.group == "router"]),
                         ("the vision/audio tower", [r for r in rows if r.layer.part in ("vision", "audio")]),
                         ("the multimodal projector", [r for r in rows if r.layer.part == "projector"])):
        if picked:
            out.append(f"it also adapts {what}: {few(r.layer.name for r in picked)} — check this is meant")
    conv1d = [r for r in rows if r.layer.kind == "conv1d"]
    if conv1d and not config.fan_in_fan_out:
        out.append("these layers are GPT-2 style Conv1D: set fan_in_fan_out=True (PEFT turns it on itself, "
                   "with a warning)")
    if excluded and config.exclude_modules:
        out.append(f"exclude_modules keeps {len(excluded)} module(s) out, e.g. {excluded[0]}")
    if config.layers_to_transform is not None and isinstance(config.target_modules, str):
        out.append("layers_to_transform is ignored when target_modules is a regex string")
    if saved:
        out.append(f"modules_to_save trains and saves a full copy of {few(saved)}: {saved_params:,} parameters, "
                   "counted in both trainable and total")
    elif config.modules_to_save:
        out.append(f"modules_to_save {list(config.modules_to_save)} matches no module")
    if bias_count:
        what = "every bias in the model, LayerNorm biases included" if config.bias == "all" else \
            "the biases of the adapted layers"
        out.append(f"bias={config.bias!r} trains {what}: {bias_count} tensor(s), {bias_params:,} parameters")
    return out


def _rewritten_entries(config: Any, original: Any) -> set[str]:
    """Entries PEFT moved from target_modules into target_parameters (MoE conversion)."""
    before = set(original.target_modules or ()) if not isinstance(original.target_modules, str) else set()
    after = set(config.target_modules or ()) if not isinstance(config.target_modules, str) else set()
    return before - after


def _refusals(config: Any, rows: tuple[AdaptedLayer, ...], model_type: str, whole_model: str | None) -> list[str]:
    params = [r for r in rows if r.layer.kind == "param"]
    out = [whole_model] if whole_model else []
    refused = sorted({r.layer.leaf for r in rows if r.layer.leaf in MAMBA_REFUSED} if model_type in MAMBA_TYPES
                     else set())
    if refused:
        out.append(f"PEFT refuses LoRA on {', '.join(refused)} in {model_type} (Mamba) models; leave them out")
    if params and getattr(config, "lora_dropout", 0):
        out.append(f"lora_dropout={config.lora_dropout} with target_parameters: PEFT refuses dropout on "
                   "parameter targets; set lora_dropout=0")
    if params and getattr(config, "use_dora", False):
        out.append("use_dora=True with target_parameters: PEFT has no DoRA for parameter targets; drop one")
    if params and getattr(config, "fan_in_fan_out", False):  # lora.ParamWrapper refuses it, on real tensors too
        out.append("fan_in_fan_out=True with target_parameters: PEFT refuses it on parameter targets (a Conv1D "
                   "weight named there needs none); set fan_in_fan_out=False")
    return out


def few(names: Any, n: int = 3) -> str:
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def verify_count(report: CountReport) -> Any:
    """Inject the report's config with PEFT on a fresh meta model; a VerifyReport against the prediction."""
    from modscope.inject import compare

    config = copy.deepcopy(report.config)
    r = config.init_r if report.method == "AdaLoRA" else config.r
    if config.layer_replication:
        # get_peft_model(..., low_cpu_mem_usage=True) replicates inside init_empty_weights, which registers each
        # shared weight of a repeated block anew: the total then counts them twice, and a real model (PEFT's
        # default low_cpu_mem_usage=False) does not. So PEFT's replicate_layers runs first, outside it.
        model = _replicated_model(report.analysis, config.layer_replication).model
        config.layer_replication = None
    else:
        model = report.analysis.fresh_model()
    return compare(model, config, label="check", r=r, predicted=report.trainable, expected=report.wrapped)
