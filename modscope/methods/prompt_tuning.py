"""Prompt tuning: one trainable embedding row per virtual token, of the model's hidden size (``token_dim``), as
``peft.tuners.prompt_tuning.model.PromptEmbedding`` creates it; an encoder-decoder trained as SEQ_2_SEQ_LM gets
the virtual tokens twice (``num_transformer_submodules=2``). The model itself stays frozen."""

from __future__ import annotations

from typing import Any

from modscope.counts import Trained
from modscope.errors import OptionError
from modscope.methods.base import Method, prepared


def word_embeddings(model: Any) -> tuple[str, Any]:
    """The module PEFT takes as the word embeddings, found as ``PeftModel._setup_prompt_encoder`` finds it:
    ``embeddings.word_embeddings``, else the first weight with vocab_size rows in the first PreTrainedModel child
    (or the model itself)."""
    from transformers import PreTrainedModel

    try:
        return "embeddings.word_embeddings", model.get_submodule("embeddings.word_embeddings")
    except AttributeError:
        pass
    backbone = next((m for _, m in model.named_children() if isinstance(m, PreTrainedModel)), model)
    vocab = model.config.get_text_config().vocab_size
    for name, value in backbone.named_parameters():
        if value.shape[0] == vocab:
            path = name.replace(".weight", "")
            return path, backbone.get_submodule(path)
    return "", None


def _prompt(analysis: Any, config: Any, warnings: list[str]) -> tuple[Trained, ...]:
    c = prepared(analysis, config)
    tokens = c.num_virtual_tokens * c.num_transformer_submodules
    init = str(getattr(c.prompt_tuning_init, "value", c.prompt_tuning_init))
    if init != "RANDOM" and not c.inference_mode:
        # PromptEmbedding then replaces its weight with rows of the word embeddings, at their width
        name, found = word_embeddings(analysis.model())
        if not hasattr(found, "num_embeddings"):
            raise OptionError(
                f"PEFT cannot initialise prompt tuning from the vocabulary of {analysis.model_type}: the vocab-sized "
                f"weight it finds is {name or 'none'}, not an Embedding; use prompt_tuning_init='RANDOM'"
            )
        if found.embedding_dim != c.token_dim:
            warnings.append(
                f"prompt_tuning_init={init}: PEFT copies rows of {name}, which are "
                f"{found.embedding_dim} wide, not token_dim={c.token_dim}; the prompt embedding takes their width"
            )
            c.token_dim = found.embedding_dim
    twice = f" × {c.num_transformer_submodules} submodules" if c.num_transformer_submodules > 1 else ""
    if c.num_transformer_submodules > 1:
        warnings.append("task_type SEQ_2_SEQ_LM: PEFT gives the encoder and the decoder their own virtual tokens")
    return (Trained("prompt embedding", tokens * c.token_dim, f"{c.num_virtual_tokens} tokens{twice} × {c.token_dim}"),)


METHOD = Method(
    peft_type="PROMPT_TUNING",
    name="prompt tuning",
    config_class="PromptTuningConfig",
    knob="num_virtual_tokens",
    sizes=(10, 20, 50, 100),
    prompt=_prompt,
)
