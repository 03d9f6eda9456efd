"""A user's own PEFT config, from a ``peft.LoraConfig``/``AdaLoraConfig`` (or another method's config) or the
fields of a saved adapter_config.json, loaded the way PEFT loads a saved adapter; what loading it says, in plain
words."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from modscope.errors import ConfigError, OptionError, first_line
from modscope.methods import METHODS, counted, refusal
from modscope.peft_rules import CHECKED_FIELDS, check_values


def load(lora_config: Any) -> tuple[Any, list[str]]:
    """The PEFT config, and what loading it says, in plain words.

    A dict goes through PEFT's own loader, as ``PeftConfig.from_pretrained`` does with a saved adapter_config.json:
    ``check_kwargs``, then ``from_peft_type``, which drops the keys this PEFT does not know (older or newer
    versions' keys) with a warning; that warning becomes one line."""
    import warnings

    import peft
    from peft import AdaLoraConfig, LoraConfig, PeftConfig
    from peft.config import _check_and_remove_unused_kwargs

    notes: list[str] = []
    config: Any
    if isinstance(lora_config, (LoraConfig, AdaLoraConfig)):
        config = copy.deepcopy(lora_config)
        check_values(
            {f: getattr(config, f) for f in CHECKED_FIELDS if hasattr(config, f)}, isinstance(config, AdaLoraConfig)
        )
    elif isinstance(lora_config, PeftConfig):
        if not counted(lora_config.peft_type):
            raise OptionError(refusal(str(getattr(lora_config.peft_type, "value", lora_config.peft_type))))
        config = copy.deepcopy(lora_config)
    elif isinstance(lora_config, dict):
        values = dict(lora_config)
        cls = _config_class(values.setdefault("peft_type", "LORA"))
        if cls in (LoraConfig, AdaLoraConfig):
            check_values(values, cls is AdaLoraConfig)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                kwargs = cls.check_kwargs(**values)
                config = PeftConfig.from_peft_type(**kwargs)
            except Exception as exc:  # PEFT's own checks of this input (ValueError, TypeError, ImportError, …)
                raise OptionError(f"PEFT {peft.__version__} rejects this {cls.__name__}: {first_line(exc)}") from None
        for warning in caught:
            if str(warning.message).startswith("Unexpected keyword arguments"):
                ignored = sorted(_check_and_remove_unused_kwargs(cls, dict(kwargs))[1])
                many = len(ignored) > 1
                notes.append(
                    f"{'keys' if many else 'key'} {', '.join(ignored)} {'are' if many else 'is'} unknown "
                    f"to PEFT {peft.__version__} and ignored, as PEFT ignores {'them' if many else 'it'} "
                    "when it loads this config"
                )
            elif issubclass(warning.category, (UserWarning, FutureWarning)):
                notes.append(f"PEFT says: {first_line(warning.message)}")
    else:
        raise OptionError(
            f"expected a PEFT config (LoraConfig, IA3Config, …) or a dict of its fields, "
            f"not {type(lora_config).__name__}"
        )
    if config.inference_mode:  # save_pretrained writes true; training resumes with is_trainable=True
        config.inference_mode = False
        notes.append(
            "inference_mode=true, as PEFT saves it: counted as trained, as "
            "PeftModel.from_pretrained(..., is_trainable=True) loads it (without that flag nothing trains)"
        )
    for option, what in _NOT_COUNTED.items():
        if getattr(config, option, None):
            raise OptionError(
                f"{option} adds {what}, which modscope does not count yet: check the config "
                "without it (the rest counts the same)"
            )
    if isinstance(config, AdaLoraConfig) and config.rank_pattern:
        kept = sum(sum(map(bool, mask)) for mask in config.rank_pattern.values())
        notes.append(
            f"rank_pattern holds AdaLoRA's learned budget ({kept} ranks kept in "
            f"{len(config.rank_pattern)} layers): get_peft_model starts again at init_r={config.init_r}, "
            "as counted here; PeftModel.from_pretrained resizes the layers to it"
        )
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

    checked = "modscope counts " + ", ".join(METHODS.values())
    if not isinstance(peft_type, str) or peft_type not in classes:
        spelled = [t.value for t in classes if str(peft_type).upper().rpartition(".")[2] == t.value]
        fix = f"write peft_type {spelled[0]!r}" if spelled else checked
        raise OptionError(f"peft_type {peft_type!r} is not one PEFT {peft.__version__} knows: {fix}")
    cls = next(c for t, c in classes.items() if t == peft_type)  # PeftType is a str enum
    if cls not in (LoraConfig, AdaLoraConfig) and not counted(peft_type):
        raise OptionError(refusal(peft_type))
    return cls


def read_adapter_config(path: str) -> dict[str, Any]:
    """The fields in ``--config``: an adapter_config.json (or its adapter directory) read by PEFT's own
    ``PeftConfig.from_json_file``, or YAML."""
    import warnings

    import yaml
    from peft import PeftConfig

    file = Path(path)
    if file.is_dir():
        file = file / "adapter_config.json"
    kind = "YAML" if file.suffix in (".yaml", ".yml") else "JSON"
    try:
        if kind == "YAML":
            values = yaml.safe_load(file.read_text())
        else:
            with warnings.catch_warnings():  # it drops runtime_config, which PEFT never saves and nothing counts
                warnings.simplefilter("ignore")
                values = PeftConfig.from_json_file(str(file))
    except OSError as exc:
        raise ConfigError(f"cannot read --config {file}: {exc.strerror or first_line(exc)}") from None
    except (ValueError, yaml.YAMLError) as exc:  # JSON's errors and undecodable bytes are ValueErrors
        raise ConfigError(
            f"--config {file} is not valid {kind}: {' '.join(str(exc).split())}; give an "
            "adapter_config.json or a .yaml file of LoraConfig fields"
        ) from None
    except TypeError:  # from_json_file looks for a key in a JSON number or null
        values = None
    if not isinstance(values, dict):
        raise ConfigError(
            f"--config {file} holds {type(values).__name__ if values is not None else 'null'}, not "
            'a mapping of LoraConfig fields such as {"r": 8, "target_modules": ["q_proj"]}'
        )
    return values
