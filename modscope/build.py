"""Config -> model on the meta device: no real tensor is ever allocated, whatever the size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modscope.errors import BuildError, OptionError, first_line

# task name -> (transformers Auto class, its model mapping)
TASKS: dict[str, tuple[str, str]] = {
    "seq2seq-lm": ("AutoModelForSeq2SeqLM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"),
    "image-text-to-text": ("AutoModelForImageTextToText", "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES"),
    "speech-seq2seq": ("AutoModelForSpeechSeq2Seq", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES"),
    # encoders (BERT, RoBERTa, ...) also have a causal-LM class; their usual head is masked LM
    "masked-lm": ("AutoModelForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES"),
    "causal-lm": ("AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    "sequence-classification": (
        "AutoModelForSequenceClassification",
        "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    ),
    "base": ("AutoModel", "MODEL_MAPPING_NAMES"),
    # after "base": a vision config without architectures still builds its bare model
    "image-classification": ("AutoModelForImageClassification", "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"),
}


@dataclass(frozen=True)
class BuiltModel:
    model: Any  # torch.nn.Module on the meta device
    architecture: str
    task: str
    asked: str | None = None  # the task build was asked for; None built the config's architectures


def _mapping(task: str) -> dict[str, Any]:
    from transformers.models.auto import modeling_auto

    return getattr(modeling_auto, TASKS[task][1])


def task_of(architecture: str, model_type: str) -> str:
    """The task whose Auto mapping serves this architecture (or this model type, failing that)."""
    for task in TASKS:
        names = _mapping(task).get(model_type)
        if architecture in (names if isinstance(names, (list, tuple)) else [names]):
            return task
    for task in TASKS:
        if model_type in _mapping(task):
            return task
    return "base"


def build(
    config: Any, task: str | None = None, *, trust_remote_code: bool = False, untied_output: bool = False
) -> BuiltModel:
    """Build the model on the meta device, from ``config.architectures`` or from ``task``; with
    ``untied_output``, its output layer apart from the input embeddings, as loading the checkpoint leaves it."""
    import torch
    import transformers

    if task is not None and task not in TASKS:
        raise OptionError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    model_type = config.model_type
    arch = next(iter(getattr(config, "architectures", None) or []), None)
    cls = getattr(transformers, arch, None) if (arch and task is None and not trust_remote_code) else None
    if cls is None:
        tasks = [task] if task else [t for t in TASKS if model_type in _mapping(t)] or ["causal-lm"]
        if trust_remote_code and task is None:
            tasks = ["causal-lm", "seq2seq-lm", "base"]
        cls = getattr(transformers, TASKS[tasks[0]][0])
        if task and not trust_remote_code and model_type not in _mapping(task):
            raise OptionError(
                f"{model_type} has no {task} model in transformers: try one of "
                + ", ".join(t for t in TASKS if model_type in _mapping(t))
            )
    try:
        with torch.device("meta"):
            if cls.__name__.startswith("Auto"):
                kwargs = {"trust_remote_code": True} if trust_remote_code else {}
                model = cls.from_config(config, **kwargs)
            else:
                model = cls._from_config(config)
    except ImportError as exc:
        raise BuildError(f"building {model_type} needs a package that is not installed: {first_line(exc)}") from None
    except Exception as exc:
        raise BuildError(
            f"transformers could not build {model_type} from its config: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    if untied_output:
        untie_output(model)
    architecture = type(model).__name__
    return BuiltModel(model, architecture, task or task_of(architecture, model_type), task)


def build_resolved(resolved: Any, task: str | None = None) -> BuiltModel:
    """``build`` for a ``resolve.ResolvedConfig``: with its own code if it needs it, untied as it loads."""
    return build(
        resolved.config, task, trust_remote_code=resolved.trust_remote_code, untied_output=resolved.untied_output
    )


def untie_output(model: Any) -> None:
    """What transformers' loading does when a checkpoint holds an output layer different from the input
    embeddings it was to be tied to: the output layer keeps its own weight, and the pair leaves the model's
    tied keys (so a later ``tie_weights()`` does not tie them again). The config is left as it was."""
    import torch

    from modscope.graph import output_embeddings_name

    name = output_embeddings_name(model)
    try:
        emb = model.get_input_embeddings()
    except NotImplementedError:
        return
    out = model.get_submodule(name) if name is not None else None
    if out is None or emb is None or out.weight is not emb.weight:
        return
    out.weight = torch.nn.Parameter(torch.empty_like(out.weight))
    tied = getattr(model, "all_tied_weights_keys", None)
    if isinstance(tied, dict):
        tied.pop(f"{name}.weight", None)
