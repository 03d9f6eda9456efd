"""ms-swift's command line, ``swift sft``.

How ms-swift 4.4 reads it (``swift/arguments/tuner_args.py``, ``prepare_adapter`` in
``swift/pipelines/train/tuner.py``): ``--target_modules`` is a list of names (default ``all-linear``, which is
expanded), ``--target_regex`` replaces it with one regex, ``--target_parameters`` is passed on, and
``--lora_dropout`` defaults to 0.05, which PEFT refuses beside parameter targets. There is no
``rank_pattern``; the fused MoE experts are reached as for TRL (``trl.targets``).
"""

from __future__ import annotations

import shlex

from modscope.render.trainers._shared import Difference, Target, comment, heading
from modscope.render.trainers.trl import targets

_WHY = {
    "missing": "ms-swift's options cannot name these",
    "extra": "ms-swift's options cannot leave these out",
    "rank": "ms-swift has no rank_pattern, so the fused gate_up_proj experts train at r instead of 2r",
}
_NOTHING = "^$"  # a regex no module path fullmatches


def snippet(target: Target, to: str) -> tuple[str, tuple[Difference, ...]]:
    values, found = targets(target, _WHY, "ms-swift")
    modules = values["target_modules"]
    notes = []
    options = [
        ("--model", [target.analysis.model_id]),
        ("--tuner_type", ["lora"]),
        ("--lora_rank", [str(target.r)]),
        ("--lora_alpha", [str(target.alpha)]),
    ]
    if isinstance(modules, str):
        options.append(("--target_regex", [modules]))
    elif modules:
        options.append(("--target_modules", modules))
    else:
        notes.append(f"--target_regex {_NOTHING}: no module, as the default target_modules all-linear would add them")
        options.append(("--target_regex", [_NOTHING]))
    if "target_parameters" in values:
        options.append(("--target_parameters", values["target_parameters"]))
        options.append(("--lora_dropout", ["0"]))
        notes.append("--lora_dropout 0: the default 0.05 is refused by PEFT beside --target_parameters")
    extra = [m for m in modules if m not in target.plan.target_modules_list] if isinstance(modules, list) else []
    if extra:
        notes.append(f"{' '.join(extra)}: PEFT turns these into the fused MoE experts at 2r")
    command = " \\\n    ".join(["swift sft", *(" ".join([key, *map(shlex.quote, vals)]) for key, vals in options)])
    return comment([*heading(target, "ms-swift", found), *notes]) + command + "\n", found
