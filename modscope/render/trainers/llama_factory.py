"""LLaMA-Factory's YAML (``llamafactory-cli train``).

How LLaMA-Factory 0.9.6 reads it (``hparams/finetuning_args.py``, ``model/adapter.py``,
``model/model_utils/visual.py``): ``lora_target`` is split on commas and handed to PEFT as a list (no regex;
PEFT matches each entry as the module's name or a ``.suffix`` of it); there is no ``target_parameters`` and no
``rank_pattern``. On the multimodal types it registers (``COMPOSITE_MODELS``), every module whose path *contains*
an entry is targeted, except those under the vision tower and the projector while ``freeze_vision_tower`` and
``freeze_multi_modal_projector`` are true (their default; ``lora_target: all`` skips them too), and under its
``lora_conflict_keys``.

So a plan needing a regex is written as the shortest unique suffixes; the 3-D experts of the MoE types PEFT
converts are reached through their transformers-4 names (``gate_proj``, ``up_proj``, ``down_proj``), which
PEFT rewrites into the experts, at the rank its conversion gives; what no entry can reach is a stated difference.
"""

from __future__ import annotations

from typing import Any

from modscope.errors import OptionError
from modscope.peft_rules import matches
from modscope.presets import peft_rewritten_names
from modscope.render.trainers._shared import (
    Difference,
    Target,
    comment,
    differences,
    heading,
    peft_conversion,
    yaml_lines,
)
from modscope.targets import shortest_suffixes

_DEFAULT = (("vision_tower",), ("multi_modal_projector",), ())
# model_type -> (vision keys, projector keys, conflict keys), as visual.py registers them (ff6d4d1, 2026-08-18)
COMPOSITE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    **dict.fromkeys(
        ("gemma3", "internvl", "interns1", "kimi_vl", "llava", "llava_next", "llava_next_video", "paligemma"),
        _DEFAULT,
    ),
    "video_llava": _DEFAULT,
    "dots_ocr": (("vision_tower",), ("vision_tower.merger",), ("merger",)),
    "gemma3n": (
        ("vision_tower", "audio_tower"),
        ("multi_modal_projector",),
        ("timm_model", "subsample_conv_projection"),
    ),
    "gemma4": (
        ("vision_tower", "audio_tower"),
        ("model.embed_vision", "model.embed_audio"),
        ("per_layer_projection_norm",),
    ),
    **dict.fromkeys(
        ("glm4v", "glm4v_moe", "glm_ocr", "qwen2_vl", "qwen2_5_vl"),
        (("visual.patch_embed", "visual.blocks"), ("visual.merger",), ("patch_embed",)),
    ),
    "Keye": (
        ("visual.vision_model.patch_embedding", "visual.vision_model.encoder"),
        ("mlp_AR",),
        ("patch_embedding",),
    ),
    "llama4": (("vision_model",), ("multi_modal_projector",), ()),
    "mllama": (("vision_model",), ("multi_modal_projector",), ()),
    "minicpmv": (("vpm",), ("resampler",), ()),
    "minicpmv4_6": (("model.vision_tower",), ("model.merger",), ()),
    "minicpmo": (
        ("vpm", "apm", "audio_avg_pooler", "audio_projection_layer", "tts"),
        ("resampler",),
        ("audio_projection_layer",),
    ),
    "mistral3": (("vision_tower",), ("model.multi_modal_projector",), ()),
    "moss_vl": (
        ("model.visual.pos_embed", "model.visual.patch_embed", "model.visual.blocks"),
        ("model.visual.merger", "model.separator_token"),
        ("patch_embed",),
    ),
    "qwen2_audio": (("audio_tower",), ("multi_modal_projector",), ()),
    "qwen2_5_omni_thinker": (
        ("visual.patch_embed", "visual.blocks", "audio_tower"),
        ("visual.merger", "audio_tower.proj"),
        ("patch_embed",),
    ),
    **dict.fromkeys(
        ("qwen3_vl", "qwen3_vl_moe"),
        (
            ("visual.pos_embed", "visual.patch_embed", "visual.blocks", "visual.deepstack_merger_list"),
            ("visual.merger",),
            ("patch_embed",),
        ),
    ),
    "qwen3_omni_moe_thinker": (
        ("visual.pos_embed", "visual.patch_embed", "visual.blocks", "visual.deepstack_merger_list", "audio_tower"),
        ("visual.merger", "audio_tower.proj"),
        ("patch_embed",),
    ),
    **dict.fromkeys(
        ("qwen3_5", "qwen3_5_moe"),
        (("visual.pos_embed", "visual.patch_embed", "visual.blocks"), ("model.visual.merger",), ("patch_embed",)),
    ),
}

_WHY = {
    "extra": "lora_target entries are module names, not a regex, and no list of them selects only this set",
    "rank": "LLaMA-Factory has no rank_pattern; the rank is the one PEFT's MoE conversion gives",
}
_UNREACHABLE = {
    True: "on {model_type} PEFT rewrites every target named gate_proj, up_proj or down_proj into the MoE experts, "
    "and LLaMA-Factory has no target_parameters to name these weights instead",
    False: "LLaMA-Factory has no target_parameters for 3-D expert weights",
}


def selected(entries: list[str], model_type: str, module_names: tuple[str, ...], flags: dict[str, bool]) -> list[str]:
    """``target_modules`` as LLaMA-Factory hands them to PEFT: the entries, or on its multimodal types every
    module path containing one (``patch_target_modules``), less the frozen towers and conflict keys."""
    if model_type not in COMPOSITE:
        return entries
    vision, projector, conflict = COMPOSITE[model_type]
    forbidden = list(conflict)
    forbidden += vision if flags.get("freeze_vision_tower", True) else ()
    forbidden += projector if flags.get("freeze_multi_modal_projector", True) else ()
    return [n for n in module_names if any(e in n for e in entries) and not any(f in n for f in forbidden)]


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    analysis, model_type = target.analysis, target.analysis.model_type
    parts = {l.part for l in target.plan.layers}
    flags = {}
    if model_type in COMPOSITE and parts & {"vision", "audio"}:
        flags["freeze_vision_tower"] = False
    if model_type in COMPOSITE and "projector" in parts:
        flags["freeze_multi_modal_projector"] = False
    converted, _ = peft_conversion(target, fused_only=False)
    why = {**_WHY, "missing": _UNREACHABLE[bool(peft_rewritten_names(model_type))].format(model_type=model_type)}
    wanted = set(target.modules)
    if model_type in COMPOSITE:  # entries are substrings of paths: leaf names, else the paths themselves
        spellings = [list(dict.fromkeys(n.rpartition(".")[2] for n in target.modules)), target.modules]
    else:
        spellings = [list(shortest_suffixes(target.modules, analysis.module_names, at_index=True))]
    names = analysis.module_names
    found_exact = (
        s for s in spellings if {n for n in names if matches(selected(s, model_type, names, flags), n)} == wanted
    )
    chosen = next(found_exact, None)
    entries = list(chosen if chosen is not None else spellings[-1])
    entries += [n for n in converted if n not in entries]
    if not entries:
        raise OptionError(f"LLaMA-Factory cannot name any layer of this set: {why['missing']}")
    kwargs: dict[str, Any] = {"r": target.r, "lora_alpha": target.alpha}
    kwargs["target_modules"] = selected(entries, model_type, names, flags)
    params = any(l.kind == "param" for l in target.plan.layers)
    found = differences(target, kwargs, "LLaMA-Factory", why) if params or chosen is None else ()
    body = yaml_lines({"finetuning_type": "lora", "lora_rank": target.r, "lora_alpha": target.alpha})
    if converted:
        body.append(f"# {', '.join(converted)}: PEFT rewrites these into the MoE experts' 3-D weights on {model_type}")
    body += yaml_lines({"lora_target": ",".join(entries), **flags})
    return comment(heading(target, "LLaMA-Factory", found)) + "\n".join(body) + "\n", found
