"""Each trainer's reading of an exported snippet, down to the ``peft.LoraConfig`` it builds, written from the
trainer's source (the facts, not its code), so the tests inject what the trainer would. TRL is TRL itself.

``read(format, text, model)`` gives that LoraConfig; ``model`` is the meta model it will be injected into, which
some trainers inspect (class name, module names, config) as they do.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import types
from pathlib import Path

import yaml
from peft import LoraConfig, TaskType

from modscope.render.readback import pasted_config


def read(fmt: str, text: str, model) -> LoraConfig:
    return READERS[fmt](text, model)


def peft(text: str, model) -> LoraConfig:
    return pasted_config(text)


def json_document(text: str, model) -> LoraConfig:
    return LoraConfig(**json.loads(text)["lora_config"])


# --- axolotl 0.18.0 (067b021): src/axolotl/loaders/adapter.py (_build_peft_lora_config, find_all_linear_names),
# src/axolotl/utils/schemas/peft.py (validate_lora_dropout, validate_lora_target_parameters_dropout),
# src/axolotl/loaders/utils.py (get_linear_embedding_layers) ---


def axolotl(text: str, model) -> LoraConfig:
    cfg = yaml.safe_load(text)
    if cfg.get("adapter") is not None and cfg.get("lora_dropout") is None:
        cfg["lora_dropout"] = 0.0
    if cfg.get("lora_target_parameters") and cfg.get("lora_dropout"):
        raise ValueError("lora_dropout must be 0 when lora_target_parameters is set")
    targets = cfg.get("lora_target_modules") or []
    if cfg.get("lora_target_linear"):
        listed = targets if isinstance(targets, list) else [targets]
        targets = list(set(listed + _axolotl_linear_names(model)))
    patterns = {f"{k}_pattern": cfg[f"lora_{k}_pattern"] for k in ("rank", "alpha") if cfg.get(f"lora_{k}_pattern")}
    cls = type(model).__name__
    task = (
        TaskType.SEQ_CLS
        if "SequenceClassification" in cls
        else TaskType.TOKEN_CLS
        if "TokenClassification" in cls
        else TaskType.CAUSAL_LM
    )
    return LoraConfig(
        r=cfg.get("lora_r"),
        lora_alpha=cfg.get("lora_alpha"),
        target_modules=targets,
        target_parameters=cfg.get("lora_target_parameters") or [],
        layers_to_transform=cfg.get("peft_layers_to_transform"),
        layers_pattern=cfg.get("peft_layers_pattern"),
        lora_dropout=cfg["lora_dropout"],
        fan_in_fan_out=cfg.get("lora_fan_in_fan_out"),
        modules_to_save=cfg.get("lora_modules_to_save") or None,
        exclude_modules=cfg.get("lora_exclude_modules") or None,
        bias="none",
        task_type=task,
        **patterns,
    )


def _axolotl_linear_names(model) -> list[str]:
    """``lora_target_linear: true``: the leaf name of every module that is a Linear or has Linear in its class name,
    less the output embedding."""
    import torch

    names = set()
    for name, module in model.named_modules():
        cls = type(module).__name__
        if isinstance(module, torch.nn.Linear) or ("Linear" in cls and cls != "LlamaLinearScalingRotaryEmbedding"):
            names.add(name.split(".")[-1])
    model_type = model.config.model_type
    output = {"gpt_neox": "embed_out", "falcon": "lm_head"}.get(model_type, "lm_head")
    names.discard(output)
    return list(names)


# --- LLaMA-Factory 0.9.6.dev0 (ff6d4d1): src/llamafactory/hparams/finetuning_args.py (split_arg, defaults),
# src/llamafactory/model/adapter.py (_setup_lora_tuning), model_utils/misc.py (find_all_linear_modules),
# model_utils/visual.py (COMPOSITE_MODELS, get_forbidden_modules, patch_target_modules) ---

# the registered multimodal types the tests and the catalog build: (vision keys, projector keys, conflict keys)
LLAMA_FACTORY_COMPOSITE = {
    "llava": (["vision_tower"], ["multi_modal_projector"], []),
    "gemma3": (["vision_tower"], ["multi_modal_projector"], []),
    "paligemma": (["vision_tower"], ["multi_modal_projector"], []),
    "gemma4": (
        ["vision_tower", "audio_tower"],
        ["model.embed_vision", "model.embed_audio"],
        ["per_layer_projection_norm"],
    ),
    "mistral3": (["vision_tower"], ["model.multi_modal_projector"], []),
    "mllama": (["vision_model"], ["multi_modal_projector"], []),
    "qwen2_vl": (["visual.patch_embed", "visual.blocks"], ["visual.merger"], ["patch_embed"]),
    "qwen2_5_vl": (["visual.patch_embed", "visual.blocks"], ["visual.merger"], ["patch_embed"]),
}


def llama_factory(text: str, model) -> LoraConfig:
    args = yaml.safe_load(text)
    assert args.get("finetuning_type", "lora") == "lora"
    rank = args.get("lora_rank", 8)
    targets = [item.strip() for item in str(args.get("lora_target", "all")).split(",")]
    freeze_vision = args.get("freeze_vision_tower", True)
    freeze_projector = args.get("freeze_multi_modal_projector", True)
    model_type = model.config.model_type
    composite = LLAMA_FACTORY_COMPOSITE.get(model_type)
    if targets == ["all"]:
        forbidden = {"lm_head"}
        if composite:
            forbidden |= set(composite[1]) | (set(composite[0]) if freeze_vision else set())
        targets = list(
            {
                name.split(".")[-1]
                for name, module in model.named_modules()
                if not any(f in name for f in forbidden)
                and "Linear" in type(module).__name__
                and "Embedding" not in type(module).__name__
            }
        )
    if composite:
        forbidden = set(composite[2])
        forbidden |= set(composite[0]) if freeze_vision else set()
        forbidden |= set(composite[1]) if freeze_projector else set()
        targets = [
            name
            for name, _ in model.named_modules()
            if any(t in name for t in targets) and not any(f in name for f in forbidden)
        ]
    extra = args.get("additional_target")
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        inference_mode=False,
        r=rank,
        target_modules=targets,
        lora_alpha=args.get("lora_alpha") or rank * 2,
        lora_dropout=args.get("lora_dropout", 0.0),
        use_rslora=False,
        use_dora=False,
        modules_to_save=[item.strip() for item in extra.split(",")] if extra else None,
    )


# --- TRL: its own parser and get_peft_config (trl >= 1.16, in the test extra) ---


def trl(text: str, model) -> LoraConfig:
    from trl import ModelConfig, TrlParser, get_peft_config

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sft.yaml"
        path.write_text(text)
        (model_args,) = TrlParser((ModelConfig,)).parse_args_and_config(["--config", str(path)])
    return get_peft_config(model_args)


# --- Unsloth 2026.8.19 (015bdef): unsloth/models/llama.py (FastLlamaModel.get_peft_model, the fast path behind
# FastLanguageModel), unsloth/models/vision.py (FastBaseModel.get_peft_model, behind FastModel),
# unsloth/models/_utils.py (get_moe_target_parameters: None target_parameters on an MoE model are filled in) ---


def _moe(model) -> bool:
    config = model.config.get_text_config()
    return any(getattr(config, a, None) for a in ("num_experts", "n_routed_experts", "num_local_experts"))


_UNSLOTH_DEFAULT = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _unsloth_fast_path(
    model, r=16, target_modules=_UNSLOTH_DEFAULT, lora_alpha=16, lora_dropout=0.0, bias="none", **kwargs
):
    saved = list(kwargs.pop("modules_to_save", None) or []) or None
    final = []
    for module in target_modules:  # a string is iterated one character at a time
        if module == "embed_tokens":
            saved = [*(saved or []), "embed_tokens"]
        else:
            final.append(module)
    for module in saved or []:
        if module not in ("lm_head", "embed_tokens"):
            raise TypeError(f"Unsloth: Module = {module} is not allowed. Only 'lm_head' and 'embed_tokens' is allowed.")
    if kwargs.get("target_parameters") is None and _moe(model):
        raise NotImplementedError("Unsloth would fill target_parameters with the experts; not mirrored")
    task = TaskType.SEQ_CLS if "Classification" in str(type(model)) else TaskType.CAUSAL_LM
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        target_modules=final,
        lora_dropout=lora_dropout,
        bias=bias,
        task_type=task,
        modules_to_save=list(set(saved)) if saved else None,
        **kwargs,
    )


def _unsloth_fast_model(model, r=16, target_modules=None, lora_alpha=16, **kwargs):
    if target_modules is None or target_modules == "all-linear":
        raise NotImplementedError("Unsloth builds a regex with get_peft_regex here; not mirrored")
    if kwargs.get("target_parameters") is None and _moe(model):
        raise NotImplementedError("Unsloth would fill target_parameters with the experts; not mirrored")
    kwargs.setdefault("task_type", TaskType.CAUSAL_LM)
    return LoraConfig(r=r, target_modules=target_modules, lora_alpha=lora_alpha, **kwargs)


def unsloth(text: str, model) -> LoraConfig:
    """Runs the snippet against a stand-in ``unsloth`` module whose ``get_peft_model`` returns the LoraConfig."""
    stand_in = types.ModuleType("unsloth")
    stand_in.FastLanguageModel = types.SimpleNamespace(get_peft_model=_unsloth_fast_path)  # type: ignore[attr-defined]
    stand_in.FastModel = types.SimpleNamespace(get_peft_model=_unsloth_fast_model)  # type: ignore[attr-defined]
    previous = sys.modules.get("unsloth")
    sys.modules["unsloth"] = stand_in
    try:
        namespace = {"model": model}
        exec(compile(text, "<unsloth snippet>", "exec"), namespace)
    finally:
        if previous is None:
            sys.modules.pop("unsloth")
        else:
            sys.modules["unsloth"] = previous
    return namespace["model"]


# --- ms-swift 4.4.3: swift/arguments/tuner_args.py (TunerArguments: defaults, target_regex replaces
# target_modules), swift/pipelines/train/tuner.py (get_target_modules, prepare_adapter with the peft backend) ---


def swift(text: str, model) -> LoraConfig:
    lines = [line.rstrip().removesuffix("\\") for line in text.splitlines() if not line.lstrip().startswith("#")]
    words = shlex.split(" ".join(lines))
    assert words[:2] == ["swift", "sft"], words[:2]
    args: dict[str, list[str]] = {}
    for word in words[2:]:
        if word.startswith("--"):
            key = word[2:]
            args[key] = []
        else:
            args[key].append(word)
    assert args.get("tuner_type", ["lora"]) == ["lora"]
    targets: list[str] | str = args.get("target_regex", [None])[0] or args.get("target_modules", ["all-linear"])
    if isinstance(targets, list) and ("all-linear" in targets or "all-embedding" in targets):
        raise NotImplementedError("ms-swift expands all-linear with find_all_linears; not mirrored")
    kwargs = {}
    if "target_parameters" in args:
        kwargs["target_parameters"] = args["target_parameters"]
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=int(args.get("lora_rank", ["8"])[0]),
        target_modules=targets,
        lora_alpha=int(args.get("lora_alpha", ["32"])[0]),
        lora_dropout=float(args.get("lora_dropout", ["0.05"])[0]),
        bias=args.get("lora_bias", ["none"])[0],
        modules_to_save=args.get("modules_to_save", []),
        use_rslora=False,
        use_dora=False,
        **kwargs,
    )


# --- torchtune 0.7.0 (bd2a0fc): torchtune/models/<family>/_component_builders.py (lora_<family>: LoRA on
# lora_attn_modules, a non-empty subset of q_proj, k_proj, v_proj, output_proj; w1, w2, w3 with apply_lora_to_mlp;
# output with apply_lora_to_output), torchtune/models/convert_weights.py (_FROM_HF: the Hugging Face names) ---

_TORCHTUNE_TO_HF = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
_TORCHTUNE_FAMILY = {
    "llama2": "llama",
    "llama3_1": "llama",
    "llama3_2": "llama",
    "mistral": "mistral",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "qwen2": "qwen2",
    "qwen2_5": "qwen2",
    "qwen3": "qwen3",
}


def torchtune(text: str, model) -> LoraConfig:
    section = yaml.safe_load(text)["model"]
    if "_component_" in section:
        family = section["_component_"].split(".")[2]
        assert _TORCHTUNE_FAMILY[family] == model.config.model_type, section["_component_"]
    attention = section["lora_attn_modules"]
    if not attention or not set(attention) <= set(_TORCHTUNE_TO_HF):
        raise ValueError(f"Must pass one or more of {list(_TORCHTUNE_TO_HF)} as lora_modules")
    names = [_TORCHTUNE_TO_HF[m] for m in attention]
    names += ["gate_proj", "up_proj", "down_proj"] if section.get("apply_lora_to_mlp") else []
    names += ["lm_head"] if section.get("apply_lora_to_output") else []
    return LoraConfig(
        r=section["lora_rank"],
        lora_alpha=section["lora_alpha"],
        lora_dropout=section.get("lora_dropout", 0.0),
        use_dora=section.get("use_dora", False),
        target_modules=names,
    )


READERS = {
    "peft": peft,
    "json": json_document,
    "axolotl": axolotl,
    "llama-factory": llama_factory,
    "trl": trl,
    "unsloth": unsloth,
    "swift": swift,
    "torchtune": torchtune,
}
