"""What a module's name and place suggest: which part of a multimodal model it sits in, which head it
is, and what its leaf name hints at. Roles (``roles.py``) weigh these against shapes and structure."""

from __future__ import annotations

import re

# the vocabulary: one set of role, group and part names everywhere (graph, JSON, presets, tables)
ATTENTION_ROLES = ("q", "q_a", "q_b", "k", "v", "kv", "kv_a", "kv_b", "qkv", "o", "attn_other")
MLP_ROLES = ("gate", "up", "gate_up", "down")
MIXER_ROLES = ("in", "x", "dt", "out")  # with q, k, v and gate where a recurrence has them
# what no preset adapts: a vision block's position-bias MLP and patch merging, patch embeddings, a sparse-attention
# indexer (DeepSeek-V3.2's, trained apart from the attention it selects for)
AUX_ROLES = ("pos_bias", "patch_merge", "patch_embed", "indexer")
CONV_ROLES = ("conv", "conv_dw")
ROLE_ORDER = (
    *ATTENTION_ROLES,
    *MLP_ROLES,
    *MIXER_ROLES,
    *CONV_ROLES,
    "router",
    "embed",
    *AUX_ROLES,
    "lm_head",
    "head",
    "other",
)
GROUPS = (
    "attention",
    "cross_attention",
    "mixer",
    "conv",
    "mlp",
    "shared_experts",
    "experts",
    "router",
    "embedding",
    "head",
    "other",
)
PARTS = ("language", "vision", "audio", "projector")

_PROJECTOR = {
    "multi_modal_projector",
    "mm_projector",
    "projector",
    "merger",
    "language_projection",
    "qformer",
    "connector",
    "vision_projection",
    "aligner",
    "mm_input_projection",
}
_VISION = {
    "vision_tower",
    "vision_model",
    "visual",
    "vision_encoder",
    "image_encoder",
    "vision",
    "vit",
    "vision_embed_tokens",
    "img_encoder",
    "vpm",
    "image_tower",
    "vision_backbone",
    "visual_projection",  # the vision tower's own head (CLIP)
}
_AUDIO = {"audio_tower", "audio_encoder", "audio_model", "audio", "speech_encoder"}
HEAD_NAMES = {
    "lm_head",
    "classifier",
    "score",
    "qa_outputs",
    "pooler",
    "cls",
    "head",
    "heads",
    "predictions",
    "lm_loss",
    "generator_lm_head",
    "seq_relationship",
    "discriminator_predictions",
    "pre_classifier",
    "classification_head",
    "sequence_summary",
    "proj_out",
    "generator_predictions",
    "lm_head_fn",
    "output_layer",
    "vocab_transform",  # DistilBERT's masked-LM head transform
    "visual_projection",  # CLIP-style towers' heads into the joint embedding space
    "text_projection",
}
CROSS_RE = re.compile(r"cross|encoder_attn|encdecattention|crossattention", re.I)
ATTN_RE = re.compile(r"attn|attention", re.I)
# recurrent mixers without a convolution to tell them by (RWKV's time mixing, xLSTM's mLSTM/sLSTM layers)
RECURRENT_RE = re.compile(r"rwkv\w*selfattention|xlstmlayer|[ms]lstm|lightningattention", re.I)
MLP_RE = re.compile(r"mlp|ffn|feed_?forward|densereludense|intermediate|moe|expert", re.I)
SHARED_RE = re.compile(r"shared_?expert|shared_mlp", re.I)
POSITION_BIAS_RE = re.compile(
    r"position_bias|cpb_mlp|rel(ative)?_pos|relative_attention_bias", re.I
)  # Swin-v2's continuous position bias
PATCH_MERGE_RE = re.compile(r"downsampl|patch_?merg|\.reduction$", re.I)  # Swin's patch merging
PATCH_EMBED_RE = re.compile(r"patch_?embed", re.I)


def part_of(path: str) -> str:
    parts = path.split(".")
    if any(p in _PROJECTOR for p in parts):
        return "projector"
    for p in parts:
        if p in _VISION:
            return "vision"
        if p in _AUDIO:
            return "audio"
    return "language"


def name_hint(leaf: str) -> str | None:
    """What the leaf name suggests; shapes and place confirm or overrule it."""
    low = leaf.lower()
    for pattern, hint in (("q_a", "q_a"), ("q_b", "q_b"), ("kv_a", "kv_a"), ("kv_b", "kv_b"), ("gate_up", "gate_up")):
        if pattern in low:
            return hint
    if "qkv" in low or low in {"c_attn", "query_key_value", "w_pack", "in_proj", "att_proj", "c_attn_proj"}:
        return "qkv"
    tokens = set(re.split(r"[_.\-]", low))
    if tokens & {"q", "query", "wq", "q_lin"} or low in {"q_lin", "to_q"}:
        return "q"
    if tokens & {"k", "key", "wk"} or low in {"k_lin", "to_k"}:
        return "k"
    if tokens & {"v", "value", "wv"} or low in {"v_lin", "to_v"}:
        return "v"
    if tokens & {"kv"}:
        return "kv"
    if tokens & {"gate", "w1", "wi_0"} or low in {"wi_0", "w1", "gate_proj", "fc_gate", "receptance"}:
        return "gate"
    if low in {"wi_1", "w3", "up", "up_proj", "wi", "fc1", "fc_in", "c_fc", "dense_h_to_4h", "lin1", "w_in"}:
        return "up"
    if low in {"w2", "down", "down_proj", "fc2", "fc_out", "dense_4h_to_h", "lin2", "w_out"}:
        return "down"
    if tokens & {"o", "out", "output", "wo", "dense", "proj", "c_proj", "out_proj", "o_proj", "out_lin", "to_out"} or (
        low == "projection"  # BLIP's vision attention output
    ):
        return "o"
    return None


def block_of(path: str) -> str:
    """The innermost repeated block (a numbered ModuleList child) holding ``path``, or ''."""
    parts = path.split(".")
    for i in range(len(parts) - 2, 0, -1):
        if parts[i].isdigit():
            return ".".join(parts[: i + 1])
    return ""


def aux_role(path: str, kind: str) -> tuple[str, str] | None:
    """The layers beside the blocks' main work, by where they sit (see AUX_ROLES)."""
    low = path.lower()
    if PATCH_EMBED_RE.search(low):  # a conv, or unfold + Linear (Llama 4's vision patch embedding)
        return "patch_embed", "embedding"
    if kind in ("torch_conv1d", "conv2d", "conv3d"):  # ConvNeXt's stride-2 conv between stages, not a shortcut
        return ("patch_merge", "other") if re.search(r"downsampling_layer|patch_?merg", low) else None
    if POSITION_BIAS_RE.search(low):
        return "pos_bias", "other"
    if PATCH_MERGE_RE.search(low):
        return "patch_merge", "other"
    if ".indexer." in f".{low}":
        return "indexer", "other"
    return None
