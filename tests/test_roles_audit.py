"""A role audit: the expected (part, group, role) of each adaptable leaf of 93 model types, written from what the
layer does in the model's own ``modeling_*.py`` (transformers 5.2x), compared with modscope's classification.

A table maps a dotted suffix of the module path to ``"group/role"`` (part ``language``: a single-tower model's own
stack, the one the presets adapt), ``"vision:group/role"`` for another part, ``"group/*"`` where the group is fixed
and the role's name is the vocabulary's to choose, or ``PLAIN`` for a convolution that does no attention, MLP,
mixer, embedding or head work. A key ``"anchor suffix"`` also needs ``anchor`` as a path segment. Each layer is
judged by the longest key it ends with; every key must match a layer. Where modscope disagrees today the row is
``wrong(expected, reason)``: it stays the correct value and runs as a strict xfail, so it fails the day it is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from test_scan import analysis
from tiny import TINY

PLAIN = "plain convolution"
# groups and roles a plain convolution must not carry (the transformer block's work, embeddings, heads, vision aux)
_BLOCK_GROUPS = {"attention", "cross_attention", "mixer", "mlp", "shared_experts", "experts", "router", "embedding"}
_NOT_PLAIN_ROLES = {"patch_merge", "patch_embed", "pos_bias", "indexer", "embed", "lm_head", "head"}


@dataclass(frozen=True)
class Wrong:
    """A known disagreement: ``expected`` is what the modeling file says, ``reason`` why."""

    expected: str
    reason: str


def wrong(expected: str, reason: str) -> Wrong:
    return Wrong(expected, reason)


def under(anchor: str, table: dict, part: str = "language") -> dict:
    """``table``'s keys scoped to a path segment, its values moved to ``part``."""

    def moved(v):
        if isinstance(v, Wrong):
            return Wrong(moved(v.expected), v.reason)
        return v if v == PLAIN or part == "language" else f"{part}:{v}"

    return {f"{anchor} {k}": moved(v) for k, v in table.items()}


# --- shared shapes of block ---------------------------------------------------------------------------------
ATTN = {f"self_attn.{x}_proj": f"attention/{x}" for x in "qkvo"}  # LlamaAttention and its copies
SWIGLU = {"mlp.gate_proj": "mlp/gate", "mlp.up_proj": "mlp/up", "mlp.down_proj": "mlp/down"}  # act(gate(x)) * up(x)
DECODER_BODY = {"embed_tokens": "embedding/embed", **ATTN, **SWIGLU}
DECODER = {**DECODER_BODY, "lm_head": "head/lm_head"}
BART_ATTN = {**{f"{x}_proj": f"attention/{x}" for x in "qkv"}, "self_attn.out_proj": "attention/o"}
ENC_DEC = {  # BART, Whisper, Pegasus, M2M100: self_attn, encoder_attn (cross), fc1/fc2 straight in the layer
    **{f"self_attn.{x}_proj": f"attention/{x}" for x in "qkv"},
    "self_attn.out_proj": "attention/o",
    **{f"encoder_attn.{x}_proj": f"cross_attention/{x}" for x in "qkv"},
    "encoder_attn.out_proj": "cross_attention/o",
    "fc1": "mlp/up",
    "fc2": "mlp/down",
    "embed_tokens": "embedding/embed",
    "lm_head": "head/lm_head",
}
CLIP_LAYER = {  # CLIPEncoderLayer / SiglipEncoderLayer: q/k/v/out_proj, mlp.fc1 -> act -> fc2
    **{f"self_attn.{x}_proj": f"attention/{x}" for x in "qkv"},
    "self_attn.out_proj": "attention/o",
    "mlp.fc1": "mlp/up",
    "mlp.fc2": "mlp/down",
}
CLIP_VISION = {
    **CLIP_LAYER,
    "embeddings.patch_embedding": "embedding/patch_embed",
    "embeddings.position_embedding": "embedding/embed",
}
CLIP_TEXT = {**CLIP_LAYER, "embeddings.token_embedding": "embedding/embed", "position_embedding": "embedding/embed"}
BERT_LAYER = {  # BertSelfAttention, BertSelfOutput (attention output), BertIntermediate (up), BertOutput (down)
    "attention.self.query": "attention/q",
    "attention.self.key": "attention/k",
    "attention.self.value": "attention/v",
    "attention.output.dense": "attention/o",
    "intermediate.dense": "mlp/up",
    "output.dense": "mlp/down",
    "word_embeddings": "embedding/embed",
    "position_embeddings": "embedding/embed",
}
MLM_HEAD = {"cls.predictions.transform.dense": "head/head", "cls.predictions.decoder": "head/lm_head"}
T5_LAYER = {
    **{f"SelfAttention.{x}": f"attention/{x}" for x in "qkvo"},
    **{f"EncDecAttention.{x}": f"cross_attention/{x}" for x in "qkvo"},
    # T5Attention.compute_bias: an nn.Embedding of (buckets -> heads) added to the attention scores
    "SelfAttention.relative_attention_bias": "other/pos_bias",
    "shared": "embedding/embed",
    "embed_tokens": "embedding/embed",
    "lm_head": "head/lm_head",
}
MAMBA1 = {  # MambaMixer: in_proj -> (x, z); conv1d; x_proj -> (dt, B, C); dt_proj; out_proj
    "in_proj": "mixer/in",
    "conv1d": "mixer/*",
    "x_proj": "mixer/x",
    "dt_proj": "mixer/dt",
    "out_proj": "mixer/out",
}
MAMBA2 = {"in_proj": "mixer/in", "conv1d": "mixer/*", "out_proj": "mixer/out"}  # Mamba2Mixer: in_proj -> z, xBC, dt
EXPERTS = {  # the 3-D expert parameters and the top-k router of the converted MoE blocks
    "experts.gate_up_proj": "experts/gate_up",
    "experts.down_proj": "experts/down",
    "mlp.gate.weight": "router/router",
}
SHARED = {f"shared_experts.{x}_proj": f"shared_experts/{x}" for x in ("gate", "up", "down")}
MLA = {  # DeepseekV3Attention: low-rank q (q_a -> norm -> q_b) and kv (kv_a -> norm -> kv_b)
    "self_attn.q_a_proj": "attention/q_a",
    "self_attn.q_b_proj": "attention/q_b",
    "self_attn.kv_a_proj_with_mqa": "attention/kv_a",
    "self_attn.kv_b_proj": "attention/kv_b",
    "self_attn.o_proj": "attention/o",
}
PROJECTOR_MLP = (
    "the projector is a two-layer MLP (linear -> act -> linear): its layers are MLP up/down, like idefics2's"
)


EXPECTED: dict[str, dict] = {
    # --- state-space and recurrent mixers ---------------------------------------------------------------------
    "mamba": {**under("mixer", MAMBA1), "embeddings": "embedding/embed", "lm_head": "head/lm_head"},
    "falcon_mamba": {**under("mixer", MAMBA1), "embeddings": "embedding/embed", "lm_head": "head/lm_head"},
    "mamba2": {**under("mixer", MAMBA2), "embeddings": "embedding/embed", "lm_head": "head/lm_head"},
    "jamba": {
        **under("mamba", MAMBA1),
        **ATTN,
        **{f"layers.0.feed_forward.{x}_proj": f"mlp/{x}" for x in ("gate", "up", "down")},
        "feed_forward.router.weight": "router/router",
        "experts.gate_up_proj": "experts/gate_up",
        "experts.down_proj": "experts/down",
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "zamba2": {
        **under("mamba", MAMBA2),
        **{f"shared_transformer.self_attn.{x}_proj": f"attention/{x}" for x in "qkvo"},
        "feed_forward.gate_up_proj": "mlp/gate_up",  # Zamba2MLP: chunk(gate_up_proj(x)) -> act(gate) * up
        "feed_forward.down_proj": "mlp/down",
        # gate_up_proj_adapter_list[i] = Sequential(Linear(h, rank), Linear(rank, 2 * inter)), added to gate_up_proj:
        # both halves of a low-rank delta on gate_up_proj take its role
        "gate_up_proj_adapter_list.0.0": "mlp/gate_up",
        "gate_up_proj_adapter_list.0.1": "mlp/gate_up",
        "layers.1.linear": "other/other",  # Zamba2HybridLayer.linear: shared block's output into the mamba stream
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "bamba": {
        **under("mamba", MAMBA2),
        **{f"feed_forward.{x}_proj": f"mlp/{x}" for x in ("gate", "up", "down")},
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "falcon_h1": {  # FalconH1DecoderLayer: mamba and attention side by side, then feed_forward
        **under("mamba", MAMBA2),
        **ATTN,
        **{f"feed_forward.{x}_proj": f"mlp/{x}" for x in ("gate", "up", "down")},
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "nemotron_h": {  # every block's module is called `mixer`: Mamba2, MoE, attention or a relu^2 MLP
        **under("layers.0", {"mixer.in_proj": "mixer/in", "mixer.conv1d": "mixer/*", "mixer.out_proj": "mixer/out"}),
        "mixer.experts.up_proj": "experts/up",  # NemotronHExperts: non-gated up -> relu^2 -> down
        "mixer.experts.down_proj": "experts/down",
        "mixer.gate.weight": "router/router",
        "shared_experts.up_proj": "shared_experts/up",
        "shared_experts.down_proj": "shared_experts/down",
        **{f"mixer.{x}_proj": f"attention/{x}" for x in "qkvo"},
        "mixer.up_proj": "mlp/up",
        "mixer.down_proj": "mlp/down",
        "embeddings": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "granitemoehybrid": {
        **under("mamba", MAMBA2),
        "block_sparse_moe.router.weight": "router/router",
        "experts.gate_up_proj": "experts/gate_up",
        "experts.down_proj": "experts/down",
        # GraniteMoeHybridMLP: input_linear -> chunk(2) -> act(a) * b -> output_linear; with experts it is added to
        # the MoE output (moe(x) + shared_mlp(x)), i.e. a shared expert
        "shared_mlp.input_linear": "shared_experts/gate_up",  # twice the width output_linear takes: chunked
        "shared_mlp.output_linear": "shared_experts/down",
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "recurrent_gemma": {  # RecurrentGemmaRecurrentBlock: gelu(linear_y(x)) * rg_lru(conv1d(linear_x(x))) -> linear_out
        "temporal_block.linear_y": "mixer/gate",
        "temporal_block.linear_x": "mixer/in",
        "temporal_block.conv_1d": "mixer/*",
        "temporal_block.linear_out": "mixer/out",
        **{f"mlp_block.{x}_proj": f"mlp/{x}" for x in ("gate", "up", "down")},
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "rwkv": {  # RwkvSelfAttention (time mixing): output(sigmoid(receptance) * wkv(key, value))
        "attention.key": "mixer/k",
        "attention.value": "mixer/v",
        "attention.receptance": "mixer/gate",
        "attention.output": "mixer/out",
        # RwkvFeedForward (channel mixing): sigmoid(receptance(x)) * value(relu(key(x)) ** 2)
        "feed_forward.key": "mlp/up",
        "feed_forward.receptance": "mlp/gate",
        "feed_forward.value": "mlp/down",
        "embeddings": "embedding/embed",
        "head": "head/lm_head",
    },
    "xlstm": {  # mLSTMLayer: q, k, v, the i/f/o gate pre-activations, out_proj; FeedForward: act(up_gate) * up -> down
        **{f"mlstm_layer.{x}": f"mixer/{x}" for x in "qkv"},
        **{f"mlstm_layer.{x}gate_preact": "mixer/gate" for x in "ifo"},
        "mlstm_layer.out_proj": "mixer/out",
        "ffn.proj_up_gate": "mlp/gate",
        "ffn.proj_up": "mlp/up",
        "ffn.proj_down": "mlp/down",
        "embeddings": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "qwen3_next": {  # Qwen3NextGatedDeltaNet: in_proj_qkvz (q, k, v and the output gate z), in_proj_ba (beta, alpha)
        "linear_attn.in_proj_qkvz": "mixer/in",
        "linear_attn.in_proj_ba": "mixer/gate",
        "linear_attn.conv1d": "mixer/*",
        "linear_attn.out_proj": "mixer/out",
        **under("layers.1", ATTN),
        **EXPERTS,
        **{f"shared_expert.{x}_proj": f"shared_experts/{x}" for x in ("gate", "up", "down")},
        "mlp.shared_expert_gate": "router/router",  # sigmoid(shared_expert_gate(x)): the shared expert's mixing weight
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "kimi_linear": {  # KimiDeltaAttention (layer 0): q/k/v with short convs, low-rank forget (f_a, f_b) and out (g_a,
        # g_b) gates, beta (b_proj); then MLA attention (layer 1)
        **under("layers.0", {f"self_attn.{x}_proj": f"mixer/{x}" for x in "qkv"}),
        **{f"self_attn.{x}_proj": "mixer/gate" for x in ("b", "g_a", "g_b")},
        "forget_gate.f_a_proj": "mixer/gate",
        "forget_gate.f_b_proj": "mixer/gate",
        "layers.0.self_attn.o_proj": "mixer/out",
        "layers.1.self_attn.q_proj": "attention/q",
        **{k: v for k, v in MLA.items() if "q_" not in k},
        **under("layers.0", SWIGLU),
        **EXPERTS,
        **SHARED,
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "olmo_hybrid": {  # gated delta net (layer 0): q/k/v, a (decay) and b (beta) per head, g (output gate), o
        **under("layers.0", {f"linear_attn.{x}_proj": f"mixer/{x}" for x in "qkv"}),
        **{f"linear_attn.{x}_proj": "mixer/gate" for x in "abg"},
        "linear_attn.o_proj": "mixer/out",
        **under("layers.1", ATTN),
        **SWIGLU,
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "minimax": {
        **under("layers.0", ATTN),
        # MiniMaxLightningAttention (layer 1): linear attention with a decayed recurrent state
        # (state = exp(-slope) * state + k^T v; out = q @ state), gated by sigmoid(output_gate(x)): a recurrent mixer
        # like the delta nets, not softmax attention
        "layers.1.self_attn.qkv_proj": "mixer/in",
        "layers.1.self_attn.output_gate": "mixer/gate",
        "layers.1.self_attn.out_proj": "mixer/out",
        **EXPERTS,
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    # --- vision blocks ------------------------------------------------------------------------------------------
    "swinv2": {
        **{k: v for k, v in BERT_LAYER.items() if "embeddings" not in k},
        # Swinv2SelfAttention.continuous_position_bias_mlp: Linear(2, 512) -> relu -> Linear(512, heads) on coordinates
        "continuous_position_bias_mlp.0": "other/pos_bias",
        "continuous_position_bias_mlp.2": "other/pos_bias",
        "downsample.reduction": "other/patch_merge",  # Swinv2PatchMerging: 2x2 concat -> Linear(4C, 2C)
        "patch_embeddings.projection": "embedding/patch_embed",
    },
    "swin": {
        **{f"attention.{x}_proj": f"attention/{x}" for x in "qkvo"},
        "mlp.fc1": "mlp/up",
        "mlp.fc2": "mlp/down",
        "downsample.reduction": "other/patch_merge",
        "patch_embeddings.projection": "embedding/patch_embed",
    },
    "vit": {
        **{f"attention.{x}_proj": f"attention/{x}" for x in "qkvo"},
        "mlp.fc1": "mlp/up",
        "mlp.fc2": "mlp/down",
        "patch_embeddings.projection": "embedding/patch_embed",
        "pooler.dense": "head/head",
    },
    "convnext": {  # ConvNextLayer: dwconv (7x7 depthwise) -> norm -> pwconv1 (Linear, 4x) -> act -> pwconv2
        "embeddings.patch_embeddings": "embedding/patch_embed",
        "dwconv": PLAIN,
        "pwconv1": "mlp/up",
        "pwconv2": "mlp/down",
        # ConvNextStage.downsampling_layer = [LayerNorm, Conv2d(C, 2C, k=2, s=2)]: Swin's patch merging as a conv
        "downsampling_layer.1": "other/patch_merge",
    },
    "blip": {
        # BlipAttention: qkv -> attention -> projection (the attention output)
        **under("vision_model", {"self_attn.qkv": "attention/qkv", "self_attn.projection": "attention/o"}, "vision"),
        **under("vision_model", {"mlp.fc1": "mlp/up", "mlp.fc2": "mlp/down"}, "vision"),
        "vision_model.embeddings.patch_embedding": "vision:embedding/patch_embed",
        **BERT_LAYER,
        **{f"crossattention.self.{x}": f"cross_attention/{x[0]}" for x in ("query", "key", "value")},
        "crossattention.output.dense": "cross_attention/o",
        "cls.predictions.transform.dense": "head/head",
        # BlipTextLMPredictionHead.decoder: Linear(hidden, vocab), the text decoder's logits
        # (BlipForConditionalGeneration does not report it as its output embeddings, so PEFT's all-linear keeps it)
        "cls.predictions.decoder": "head/lm_head",
    },
    "deepseek_v32": {
        **MLA,
        # DeepseekV32Indexer: scores tokens for the sparse attention (wq_b, wk, weights_proj); not the attention itself
        **{f"indexer.{x}": "other/indexer" for x in ("wq_b", "wk", "weights_proj")},
        **under("layers.0", SWIGLU),
        **EXPERTS,
        **SHARED,
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    # --- convolutional models: conv roles are the vocabulary's to name; the audit pins what the modeling file fixes
    "efficientnet": {
        "embeddings.convolution": PLAIN,
        "depthwise_conv.depthwise_conv": PLAIN,
        "squeeze_excite.reduce": PLAIN,
        "squeeze_excite.expand": PLAIN,
        "top_conv": PLAIN,
    },
    "mobilenet_v1": {"conv_stem.convolution": PLAIN, "layer.0.convolution": PLAIN, "layer.1.convolution": PLAIN},
    "mobilenet_v2": {"first_conv.convolution": PLAIN, "conv_3x3.convolution": PLAIN, "conv_1x1.convolution": PLAIN},
    # BitBottleneckLayer.downsample: the residual shortcut's 1x1 projection (stride 1 in stage 0), no patch merging
    "bit": {"embedder.convolution": PLAIN, "downsample.conv": PLAIN, "conv1": PLAIN, "conv2": PLAIN, "conv3": PLAIN},
    "poolformer": {
        "patch_embeddings.0.projection": "embedding/patch_embed",
        # PoolFormerOutput: conv1 (1x1, C -> 4C) -> act -> conv2 (1x1, 4C -> C): the MetaFormer's channel MLP
        "output.conv1": "mlp/up",
        "output.conv2": "mlp/down",
    },
    "swiftformer": {  # SwiftFormerConvEncoder: depth_wise_conv -> norm -> point_wise_conv1 (C -> 4C) -> act -> conv2
        "blocks.0.depth_wise_conv": PLAIN,
        "blocks.0.point_wise_conv1": "mlp/up",
        "blocks.0.point_wise_conv2": "mlp/down",
        # SwiftFormerLocalRepresentation: its point-wise convs keep C -> C, no MLP
        "local_representation.point_wise_conv1": PLAIN,
    },
    # GlmImageVQVAE: quant_conv / post_quant_conv (1x1) to and from the codebook's width, the encoder beside them
    "glm_image_vqmodel": {"quant_conv": PLAIN, "post_quant_conv": PLAIN},
    "encodec": {"encoder.layers.0.conv": PLAIN, "block.1.conv": PLAIN, "shortcut.conv": PLAIN},  # SEANet convs
    "hgnet_v2": {
        "embedder.stem1.convolution": PLAIN,
        "layers.0.convolution": PLAIN,
        "aggregation.0.convolution": PLAIN,
    },
    "dac": {
        # DacEncoder.conv1 (1 -> 64 channels, the waveform in) and conv2 (the latent out) are plain convolutions; a
        # Conv1d with one input channel is not a depthwise mixer conv
        "encoder.conv1": PLAIN,
        "encoder.conv2": PLAIN,
        "res_unit1.conv1": PLAIN,
        "quantizer.quantizers.0.in_proj": PLAIN,  # 1x1 convs to and from the codebook's width
        "quantizer.quantizers.0.out_proj": PLAIN,
        "quantizer.quantizers.0.codebook": "embedding/embed",
    },
    # --- the pinned decoders ------------------------------------------------------------------------------------
    "llama": DECODER,
    "qwen2": DECODER,
    "mistral": DECODER,
    "gemma": DECODER,
    "gemma2": DECODER,
    "gemma3_text": DECODER,
    "qwen3": DECODER,
    "stablelm": DECODER,
    "granite": DECODER,
    "phi": {  # PhiAttention.dense is the attention output; PhiMLP fc1 -> act -> fc2
        **{k: v for k, v in ATTN.items() if "o_proj" not in k},
        "self_attn.dense": "attention/o",
        "mlp.fc1": "mlp/up",
        "mlp.fc2": "mlp/down",
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "phi3": {
        "self_attn.qkv_proj": "attention/qkv",
        "self_attn.o_proj": "attention/o",
        "mlp.gate_up_proj": "mlp/gate_up",  # Phi3MLP: chunk(gate_up_proj(x)) -> act(gate) * up
        "mlp.down_proj": "mlp/down",
        "embed_tokens": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "starcoder2": {**ATTN, "mlp.c_fc": "mlp/up", "mlp.c_proj": "mlp/down", "lm_head": "head/lm_head"},
    "falcon": {
        "self_attention.query_key_value": "attention/qkv",  # FalconAttention: fused (multi-query) qkv, dense = output
        "self_attention.dense": "attention/o",
        "mlp.dense_h_to_4h": "mlp/up",
        "mlp.dense_4h_to_h": "mlp/down",
        "word_embeddings": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "bloom": {
        "self_attention.query_key_value": "attention/qkv",
        "self_attention.dense": "attention/o",
        "mlp.dense_h_to_4h": "mlp/up",
        "mlp.dense_4h_to_h": "mlp/down",
        "word_embeddings": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "gpt_neox": {
        "attention.query_key_value": "attention/qkv",
        "attention.dense": "attention/o",
        "mlp.dense_h_to_4h": "mlp/up",
        "mlp.dense_4h_to_h": "mlp/down",
        "embed_in": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "gptj": {
        **{f"attn.{x}_proj": f"attention/{x}" for x in "qkv"},
        "attn.out_proj": "attention/o",
        "mlp.fc_in": "mlp/up",
        "mlp.fc_out": "mlp/down",
        "wte": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "codegen": {
        "attn.qkv_proj": "attention/qkv",
        "attn.out_proj": "attention/o",
        "mlp.fc_in": "mlp/up",
        "mlp.fc_out": "mlp/down",
        "wte": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "gpt_neo": {  # GPTNeoSelfAttention sits at attn.attention
        **{f"attn.attention.{x}_proj": f"attention/{x}" for x in "qkv"},
        "attn.attention.out_proj": "attention/o",
        "mlp.c_fc": "mlp/up",
        "mlp.c_proj": "mlp/down",
        "wte": "embedding/embed",
        "wpe": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "gpt2": {  # Conv1D layers: c_attn fused qkv, attn.c_proj output, mlp.c_fc up, mlp.c_proj down
        "attn.c_attn": "attention/qkv",
        "attn.c_proj": "attention/o",
        "mlp.c_fc": "mlp/up",
        "mlp.c_proj": "mlp/down",
        "wte": "embedding/embed",
        "wpe": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "gpt_bigcode": {
        "attn.c_attn": "attention/qkv",  # multi-query: q + one k + one v
        "attn.c_proj": "attention/o",
        "mlp.c_fc": "mlp/up",
        "mlp.c_proj": "mlp/down",
        "wte": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    "opt": {**{k: v for k, v in ENC_DEC.items() if "encoder_attn" not in k}, "embed_positions": "embedding/embed"},
    "mpt": {
        "attn.Wqkv": "attention/qkv",
        "attn.out_proj": "attention/o",
        "ffn.up_proj": "mlp/up",
        "ffn.down_proj": "mlp/down",
        "wte": "embedding/embed",
        "lm_head": "head/lm_head",
    },
    # --- MoE --------------------------------------------------------------------------------------------------
    "mixtral": {**ATTN, **EXPERTS, "embed_tokens": "embedding/embed", "lm_head": "head/lm_head"},
    "qwen2_moe": {
        **ATTN,
        **EXPERTS,
        **{f"shared_expert.{x}_proj": f"shared_experts/{x}" for x in ("gate", "up", "down")},
        "mlp.shared_expert_gate": "router/router",
        "lm_head": "head/lm_head",
    },
    "qwen3_moe": {**ATTN, **EXPERTS, "embed_tokens": "embedding/embed", "lm_head": "head/lm_head"},
    "olmoe": {**ATTN, **EXPERTS, "lm_head": "head/lm_head"},
    "granitemoe": {
        **ATTN,
        "block_sparse_moe.router.weight": "router/router",
        "experts.gate_up_proj": "experts/gate_up",
        "experts.down_proj": "experts/down",
    },
    "phimoe": {
        **ATTN,
        "mlp.router": "router/router",  # PhimoeTopKRouter is an nn.Linear
        "experts.gate_up_proj": "experts/gate_up",
        "experts.down_proj": "experts/down",
    },
    "deepseek_v2": {**MLA, **EXPERTS, **SHARED, "lm_head": "head/lm_head"},
    "deepseek_v3": {**MLA, **under("layers.0", SWIGLU), **EXPERTS, **SHARED, "lm_head": "head/lm_head"},
    # --- encoders and encoder-decoders ---------------------------------------------------------------------------
    "bert": {**BERT_LAYER, "token_type_embeddings": "embedding/embed", **MLM_HEAD},
    "roberta": {**BERT_LAYER, "lm_head.dense": "head/head", "lm_head.decoder": "head/lm_head"},
    "xlm-roberta": {**BERT_LAYER, "lm_head.dense": "head/head", "lm_head.decoder": "head/lm_head"},
    "layoutlm": {
        **BERT_LAYER,
        **{f"{x}_position_embeddings": "embedding/embed" for x in "xyhw"},  # the 2-D layout (box) embeddings
        "pooler.dense": "head/head",
        **MLM_HEAD,
    },
    "electra": {
        **BERT_LAYER,
        "embeddings_project": "other/other",  # ElectraModel: embedding_size -> hidden_size, before the encoder
        "generator_predictions.dense": "head/head",
        "generator_lm_head": "head/lm_head",
    },
    "albert": {
        "attention.query": "attention/q",
        "attention.key": "attention/k",
        "attention.value": "attention/v",
        "attention.dense": "attention/o",  # AlbertSdpaAttention.dense: the attention output
        "albert_layers.0.ffn": "mlp/up",
        "albert_layers.0.ffn_output": "mlp/down",
        "embedding_hidden_mapping_in": "other/other",  # embedding_size -> hidden_size, before the shared layers
        "predictions.dense": "head/head",
        "predictions.decoder": "head/lm_head",
    },
    "distilbert": {
        **{f"attention.{x}_lin": f"attention/{x}" for x in "qkv"},
        "attention.out_lin": "attention/o",
        "ffn.lin1": "mlp/up",
        "ffn.lin2": "mlp/down",
        # DistilBertForMaskedLM: vocab_transform -> gelu -> vocab_layer_norm -> vocab_projector; BERT's
        # cls.predictions.transform.dense, which modscope calls a head
        "vocab_transform": "head/head",
        "vocab_projector": "head/lm_head",
    },
    "modernbert": {  # ModernBertMLP: Wi -> chunk(2) -> act(input) * gate -> Wo
        "attn.Wqkv": "attention/qkv",
        "attn.Wo": "attention/o",
        "mlp.Wi": "mlp/gate_up",
        "mlp.Wo": "mlp/down",
        "tok_embeddings": "embedding/embed",
        "head.dense": "head/head",
        "decoder": "head/lm_head",
    },
    "deberta": {
        "attention.self.in_proj": "attention/qkv",  # DisentangledSelfAttention.in_proj: fused q, k, v
        **{k: v for k, v in BERT_LAYER.items() if "attention.self" not in k},
        **MLM_HEAD,
    },
    "deberta-v2": {
        **{f"attention.self.{x}_proj": f"attention/{x[0]}" for x in ("query", "key", "value")},
        **{k: v for k, v in BERT_LAYER.items() if "attention.self" not in k},
        **MLM_HEAD,
    },
    "t5": {**T5_LAYER, "DenseReluDense.wi": "mlp/up", "DenseReluDense.wo": "mlp/down"},
    "mt5": {  # gated-gelu: wi_0 is the gate, wi_1 the up projection
        **T5_LAYER,
        "DenseReluDense.wi_0": "mlp/gate",
        "DenseReluDense.wi_1": "mlp/up",
        "DenseReluDense.wo": "mlp/down",
    },
    "bart": {**ENC_DEC, "shared": "embedding/embed", "embed_positions": "embedding/embed"},
    "pegasus": {**ENC_DEC, "shared": "embedding/embed", "embed_positions": "embedding/embed"},
    "m2m_100": {**ENC_DEC, "shared": "embedding/embed"},
    "whisper": {
        **{k: v for k, v in ENC_DEC.items() if k != "lm_head"},
        "encoder.conv1": PLAIN,  # WhisperEncoder: two Conv1d over the mel frames, then the layers
        "encoder.conv2": PLAIN,
        "embed_positions": "embedding/embed",
        "proj_out": "head/lm_head",  # WhisperForConditionalGeneration's output embeddings
    },
    "wav2vec2": {
        "feature_projection.projection": "other/other",  # conv features -> hidden size, before the encoder
        **{f"attention.{x}_proj": f"attention/{x}" for x in "qkv"},
        "attention.out_proj": "attention/o",
        "feed_forward.intermediate_dense": "mlp/up",
        "feed_forward.output_dense": "mlp/down",
        # Wav2Vec2FeatureEncoder: a stack of strided convs over the waveform; the first has one input channel
        "conv_layers.0.conv": PLAIN,
        "pos_conv_embed.conv": PLAIN,  # a grouped, weight-normed conv as a relative position embedding
    },
    # --- vision-language and dual encoders ----------------------------------------------------------------------
    "llava": {
        **under("vision_tower", CLIP_VISION, "vision"),
        # LlavaMultiModalProjector: linear_1 -> act -> linear_2
        "multi_modal_projector.linear_1": "projector:mlp/up",
        "multi_modal_projector.linear_2": "projector:mlp/down",
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "paligemma": {
        **under("vision_tower", CLIP_VISION, "vision"),
        "multi_modal_projector.linear": "projector:other/other",  # a single linear projection
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "gemma3": {
        **under("vision_tower", CLIP_VISION, "vision"),
        # SiglipMultiheadAttentionPoolingHead: the vision tower's pooling head
        "vision_tower.head.attention.out_proj": "vision:head/head",
        "vision_tower.head.mlp.fc1": "vision:head/head",
        "vision_tower.head.mlp.fc2": "vision:head/head",
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "qwen2_vl": {
        **under("visual", {"attn.qkv": "attention/qkv", "attn.proj": "attention/o"}, "vision"),
        **under("visual", {"blocks.0.mlp.fc1": "mlp/up", "blocks.0.mlp.fc2": "mlp/down"}, "vision"),
        # PatchMerger: ln_q -> mlp = [Linear(4C, 4C), GELU, Linear(4C, text hidden)]
        "merger.mlp.0": "projector:mlp/up",
        "merger.mlp.2": "projector:mlp/down",
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "qwen2_5_vl": {
        **under("visual", {"attn.qkv": "attention/qkv", "attn.proj": "attention/o"}, "vision"),
        **under("visual", SWIGLU, "vision"),
        "merger.mlp.0": "projector:mlp/up",
        "merger.mlp.2": "projector:mlp/down",
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "idefics2": {
        **under("vision_model", CLIP_VISION, "vision"),
        **under(
            "modality_projection", {"gate_proj": "mlp/gate", "up_proj": "mlp/up", "down_proj": "mlp/down"}, "projector"
        ),
        # Idefics2PerceiverAttention: queries from the latents, keys/values from concat(image features, latents):
        # the resampler's latents cross-attend to the image
        **{f"perceiver_resampler.layers.0.self_attn.{x}_proj": f"projector:cross_attention/{x}" for x in "qkvo"},
        **{f"perceiver_resampler.layers.0.mlp.{x}_proj": f"projector:mlp/{x}" for x in ("gate", "up", "down")},
        **under("text_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "mllama": {
        "vision_model.patch_embedding": "vision:embedding/patch_embed",
        # MllamaPrecomputedPositionEmbedding / AspectRatioEmbedding: position embeddings per tile and aspect ratio
        "gated_positional_embedding.tile_embedding": "vision:embedding/embed",
        "pre_tile_positional_embedding.embedding": "vision:embedding/embed",
        "post_tile_positional_embedding.embedding": "vision:embedding/embed",
        **under("transformer", {**ATTN, "mlp.fc1": "mlp/up", "mlp.fc2": "mlp/down"}, "vision"),
        **under("global_transformer", {**ATTN, "mlp.fc1": "mlp/up", "mlp.fc2": "mlp/down"}, "vision"),
        "model.multi_modal_projector": "projector:other/other",  # a single Linear
        **under("language_model", DECODER_BODY),
        "lm_head": "head/lm_head",
    },
    "llama4": {
        # Llama4UnfoldConvolution: unfold into patches -> linear: the vision tower's patch embedding
        "patch_embedding.linear": "vision:embedding/patch_embed",
        **under("vision_model", {**ATTN, "layers.0.mlp.fc1": "mlp/up", "layers.0.mlp.fc2": "mlp/down"}, "vision"),
        # Llama4VisionPixelShuffleMLP -> Llama4VisionMLP2: fc1 -> gelu -> fc2, inside the vision model
        "vision_adapter.mlp.fc1": "vision:mlp/up",
        "vision_adapter.mlp.fc2": "vision:mlp/down",
        "multi_modal_projector.linear_1": "projector:other/other",  # a single linear projection
        **under("language_model", ATTN),
        "feed_forward.router": "router/router",
        "feed_forward.experts.gate_up_proj": "experts/gate_up",
        "feed_forward.experts.down_proj": "experts/down",
        **{f"shared_expert.{x}_proj": f"shared_experts/{x}" for x in ("gate", "up", "down")},
        "lm_head": "head/lm_head",
    },
    "blip-2": {
        **under("vision_model", {"self_attn.qkv": "attention/qkv", "self_attn.projection": "attention/o"}, "vision"),
        **under("vision_model", {"mlp.fc1": "mlp/up", "mlp.fc2": "mlp/down"}, "vision"),
        # Blip2QFormerLayer: self-attention over the queries, cross-attention to the image, the query MLP
        **{f"qformer attention.attention.{x}": f"projector:attention/{x[0]}" for x in ("query", "key", "value")},
        "qformer attention.output.dense": "projector:attention/o",
        **{f"crossattention.attention.{x}": f"projector:cross_attention/{x[0]}" for x in ("query", "key", "value")},
        "crossattention.output.dense": "projector:cross_attention/o",
        "intermediate_query.dense": "projector:mlp/up",
        "output_query.dense": "projector:mlp/down",
        "language_projection": "projector:other/other",  # a single linear projection into the LM
        **under("language_model", {k: v for k, v in ENC_DEC.items() if "encoder_attn" not in k}),
    },
    "kosmos-2": {
        # Kosmos2ImageToTextProjection: dense(image features); x_attn with queries from the learned latent_query and
        # keys/values from concat(features, latent_query): the latents cross-attend to the image
        "image_to_text_projection.dense": "other/other",
        **{f"x_attn.{x}_proj": f"cross_attention/{x}" for x in "qkv"},
        "x_attn.out_proj": "cross_attention/o",
        **under("text_model", {**BART_ATTN, "ffn.fc1": "mlp/up", "ffn.fc2": "mlp/down"}),
        "text_model.lm_head": "head/lm_head",
    },
    "cohere2_vision": {
        # Cohere2VisionMultiModalProjector: linear_1 -> chunk(2) -> silu(gate) * x -> linear_2 (takes half the width)
        "multi_modal_projector.linear_1": "projector:mlp/gate_up",
        "multi_modal_projector.linear_2": "projector:mlp/down",
        **under("language_model", DECODER_BODY),
    },
    "edgetam_video": {
        # EdgeTamVideoPerceiverEncoderLayer: the latents cross-attend to the features, then attend to themselves
        **{f"spatial_perceiver.layers.0.cross_attention.{x}_proj": f"cross_attention/{x}" for x in "qkvo"},
        **{f"spatial_perceiver.layers.0.self_attention.{x}_proj": f"attention/{x}" for x in "qkvo"},
    },
    "clip": {
        **under("text_model", CLIP_TEXT),
        **under("vision_model", CLIP_VISION, "vision"),
        # CLIPModel: text_projection(pooled text), visual_projection(pooled image) into the joint space: each
        # tower's output head, as SigLIP's text_model.head is; not a projector into a language model
        "visual_projection": "vision:head/head",
        "text_projection": "head/head",
    },
    "siglip": {
        **under("text_model", CLIP_TEXT),
        "text_model.head": "head/head",
        **under("vision_model", CLIP_VISION, "vision"),
        "vision_model.head.attention.out_proj": "vision:head/head",
        "vision_model.head.mlp.fc1": "vision:head/head",
        "vision_model.head.mlp.fc2": "vision:head/head",
    },
}

ISSUE_FAMILIES = (
    *("mamba", "mamba2", "falcon_mamba", "jamba", "zamba2", "bamba", "falcon_h1", "nemotron_h", "recurrent_gemma"),
    *("rwkv", "xlstm", "swinv2", "blip", "deepseek_v32", "efficientnet", "mobilenet_v1", "mobilenet_v2", "bit"),
    *("poolformer", "hgnet_v2", "dac", "encodec"),
)


def _parse(value: str) -> tuple[str, str, str]:
    part, _, rest = value.rpartition(":")
    group, _, role = rest.partition("/")
    return part or "language", group, role


def _matches(name: str, key: str) -> bool:
    anchor, _, suffix = key.rpartition(" ")
    if anchor and f".{anchor}." not in f".{name}.":
        return False
    return name == suffix or name.endswith("." + suffix)


def _agrees(layer, value: str) -> bool:
    if value == PLAIN:
        return layer.group not in _BLOCK_GROUPS and layer.role not in _NOT_PLAIN_ROLES
    part, group, role = _parse(value)
    return (layer.part, layer.group) == (part, group) and role in ("*", layer.role)


def _judged(model_type: str) -> dict[str, list]:
    """The layers each key judges: a layer goes to the longest key it matches."""
    table = EXPECTED[model_type]
    judged: dict[str, list] = {key: [] for key in table}
    for layer in analysis(model_type).layers:
        keys = [key for key in table if _matches(layer.name, key)]
        if keys:
            judged[max(keys, key=len)].append(layer)
    return judged


def _disagreements(layers, value: str) -> list[str]:
    return [f"{l.name}: expected {value}, got {l.part}:{l.group}/{l.role}" for l in layers if not _agrees(l, value)]


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_roles_agree_with_the_modeling_file(model_type):
    table = EXPECTED[model_type]
    judged = _judged(model_type)
    unmatched = [key for key, layers in judged.items() if not layers]
    assert not unmatched, f"keys matching no layer of {model_type}: {unmatched}"
    problems = [
        p for key, value in table.items() if not isinstance(value, Wrong) for p in _disagreements(judged[key], value)
    ]
    assert not problems, "\n".join(problems)


def _known():
    return [
        pytest.param(m, key, id=f"{m}:{key}", marks=pytest.mark.xfail(strict=True, reason=value.reason))
        for m, table in sorted(EXPECTED.items())
        for key, value in table.items()
        if isinstance(value, Wrong)
    ]


@pytest.mark.parametrize(("model_type", "key"), _known())
def test_known_disagreement(model_type, key):
    layers = _judged(model_type)[key]
    assert layers, f"{key} matches no layer of {model_type}"
    problems = _disagreements(layers, EXPECTED[model_type][key].expected)
    assert not problems, "\n".join(problems)


def test_the_audit_covers_the_issue_and_the_pinned_types():
    assert len(EXPECTED) >= 60
    assert set(ISSUE_FAMILIES) <= set(EXPECTED)
    assert set(TINY) <= set(EXPECTED)


def test_zamba2_attention_adapters_are_deltas_on_q_k_v():
    """With use_shared_attention_adapter, Zamba2Attention adds linear_{q,k,v}_adapter_list[i](x) to q/k/v_proj(x);
    q, k and v have one shape, so the list's name settles which each low-rank pair belongs to."""
    import modscope
    from modscope.reduced import reduced_config

    config = reduced_config("zamba2")
    config.use_shared_attention_adapter = True
    adapters = [l for l in modscope.analyze(config).layers if "_adapter_list." in l.name and "self_attn" in l.name]
    assert adapters
    for layer in adapters:
        assert (layer.group, layer.role) == ("attention", layer.name.split("linear_")[1][0]), layer.name
