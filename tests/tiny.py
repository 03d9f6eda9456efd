"""Tiny configs of each family, built on the meta device in milliseconds (no network, no weights)."""

from __future__ import annotations

from transformers import AutoConfig

_DECODER = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4)

TINY: dict[str, dict] = {
    "llama": dict(_DECODER, num_key_value_heads=2),
    "qwen2": dict(_DECODER, num_key_value_heads=2, tie_word_embeddings=True),
    "mistral": dict(_DECODER, num_key_value_heads=2),
    "gemma2": dict(_DECODER, num_key_value_heads=2, head_dim=16),
    "phi": dict(_DECODER),
    "phi3": dict(_DECODER, num_key_value_heads=2, pad_token_id=0),
    "falcon": dict(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4),
    "bloom": dict(vocab_size=128, hidden_size=64, n_layer=2, n_head=4),
    "gpt_neox": dict(_DECODER),
    "gptj": dict(vocab_size=128, n_embd=64, n_layer=2, n_head=4, rotary_dim=8),
    "gpt_neo": dict(
        vocab_size=128, hidden_size=64, num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]]
    ),
    "gpt2": dict(vocab_size=128, n_embd=64, n_layer=2, n_head=4),
    "gpt_bigcode": dict(vocab_size=128, n_embd=64, n_layer=2, n_head=4),
    "opt": dict(
        vocab_size=128, hidden_size=64, ffn_dim=96, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=64
    ),
    "codegen": dict(vocab_size=128, n_embd=64, n_layer=2, n_head=4, rotary_dim=8),
    "mpt": dict(vocab_size=128, d_model=64, n_layers=2, n_heads=4),
    "t5": dict(vocab_size=128, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu"),
    "mt5": dict(vocab_size=128, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_heads=4),
    "bart": dict(
        vocab_size=128,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=96,
        decoder_ffn_dim=96,
    ),
    "bert": dict(_DECODER),
    "roberta": dict(_DECODER),
    "electra": dict(_DECODER, embedding_size=32),
    "deberta": dict(_DECODER),
    "deberta-v2": dict(_DECODER),
    "layoutlm": dict(_DECODER),
    "mixtral": dict(_DECODER, num_key_value_heads=2, num_local_experts=4),
    "qwen2_moe": dict(
        _DECODER, num_key_value_heads=2, num_experts=4, moe_intermediate_size=32, shared_expert_intermediate_size=48
    ),
    "qwen3_moe": dict(_DECODER, num_key_value_heads=2, num_experts=4, moe_intermediate_size=32, mlp_only_layers=[0]),
    "deepseek_v3": dict(
        _DECODER,
        num_key_value_heads=4,
        n_routed_experts=4,
        moe_intermediate_size=32,
        first_k_dense_replace=1,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
        n_group=1,
        topk_group=1,
    ),
    "whisper": dict(
        vocab_size=128,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=96,
        decoder_ffn_dim=96,
        num_mel_bins=16,
        max_source_positions=32,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    ),
    "llava": dict(
        text_config=dict(model_type="llama", **_DECODER),
        vision_config=dict(
            model_type="clip_vision_model",
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        ),
    ),
    "qwen2_vl": dict(
        text_config=dict(_DECODER, model_type="qwen2_vl_text", num_key_value_heads=2),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2),
    ),
    "blip-2": dict(
        text_config=dict(
            model_type="opt",
            vocab_size=128,
            hidden_size=64,
            ffn_dim=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            word_embed_proj_dim=64,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        qformer_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=48,
            encoder_hidden_size=32,
            vocab_size=128,
        ),
        num_query_tokens=4,
    ),
}

ARCHITECTURES = {
    "llava": "LlavaForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "blip-2": "Blip2ForConditionalGeneration",
    "whisper": "WhisperForConditionalGeneration",
    "t5": "T5ForConditionalGeneration",
    "mt5": "MT5ForConditionalGeneration",
    "bart": "BartForConditionalGeneration",
}


def tiny_config(model_type: str, **overrides):
    values = dict(TINY[model_type], **overrides)
    if model_type in ARCHITECTURES:
        values.setdefault("architectures", [ARCHITECTURES[model_type]])
    return AutoConfig.for_model(model_type, **values)


def tiny_vit(architecture: str = "ViTForImageClassification"):
    """A vision model on its own: ViT's image classifier (its blocks under `vit.`), or the bare ViTModel."""
    return AutoConfig.for_model(
        "vit", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
        patch_size=16, num_labels=3, architectures=[architecture],
    )  # fmt: skip
