"""Every preset of every family: the layers modscope says it wraps are the layers PEFT wraps,
and the predicted count equals PEFT's after a real injection (on the meta device)."""

import pytest
from tiny import TINY, tiny_config, tiny_vit

import modscope
from modscope.presets import PRESETS

_ANALYSES = {}


def analysis(model_type):
    if model_type not in _ANALYSES:
        _ANALYSES[model_type] = modscope.analyze(tiny_config(model_type))
    return _ANALYSES[model_type]


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "conv"])  # no family here is convolutional: test_conv
@pytest.mark.parametrize("model_type", sorted(TINY))
def test_preset_matches_peft(model_type, preset):
    a = analysis(model_type)
    plan = a.suggest(preset)
    assert plan.layers, f"{preset} selects nothing on {model_type}"
    for r in (2, 16):
        report = modscope.verify(a, plan, r=r)
        assert report.error is None, report.error
        assert not report.missing and not report.extra, report.summary
        assert report.peft == report.predicted == plan.trainable_params(r)
        assert report.peft_all == a.total_params + report.peft


def _encoder_regex(prefix):
    """BERT-style encoders: `dense` is also in the pooler and the MLM head, so the layers need a regex."""
    return (
        rf"{prefix}\.encoder\.layer\.\d+\.(?:attention\.self\.query|attention\.self\.key"
        r"|attention\.self\.value|attention\.output\.dense|intermediate\.dense|output\.dense)"
    )


PINNED = {
    # model_type: (qv, all-linear target_modules, all-linear target_parameters)
    "llama": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], []),
    "qwen2": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], []),
    "mistral": (
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        [],
    ),
    "gemma2": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], []),
    "phi": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"], []),
    "phi3": (["qkv_proj"], ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], []),
    "falcon": (["query_key_value"], ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], []),
    "bloom": (["query_key_value"], ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], []),
    "gpt_neox": (["query_key_value"], ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], []),
    "gptj": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"], []),
    "gpt_neo": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"], []),
    "gpt2": (["c_attn"], ["c_attn", "c_proj", "c_fc"], []),
    "gpt_bigcode": (["c_attn"], ["c_attn", "c_proj", "c_fc"], []),
    "opt": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"], []),
    "codegen": (["qkv_proj"], ["qkv_proj", "out_proj", "fc_in", "fc_out"], []),
    "mpt": (["Wqkv"], ["Wqkv", "out_proj", "up_proj", "down_proj"], []),
    "t5": (["q", "v"], ["q", "k", "v", "o", "wi_0", "wi_1", "wo"], []),
    "mt5": (["q", "v"], ["q", "k", "v", "o", "wi_0", "wi_1", "wo"], []),
    "bart": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"], []),
    "whisper": (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"], []),
    "bert": (["query", "value"], _encoder_regex("bert"), []),
    "roberta": (["query", "value"], _encoder_regex("roberta"), []),
    "electra": (["query", "value"], _encoder_regex("electra"), []),
    "layoutlm": (["query", "value"], _encoder_regex("layoutlm"), []),
    "deberta-v2": (
        ["query_proj", "value_proj"],
        r"deberta\.encoder\.layer\.\d+\.(?:attention\.self\.query_proj|attention\.self\.key_proj"
        r"|attention\.self\.value_proj|attention\.output\.dense|intermediate\.dense|output\.dense)",
        [],
    ),
    "deberta": (
        ["in_proj"],
        r"deberta\.encoder\.layer\.\d+\.(?:attention\.self\.in_proj|attention\.output\.dense"
        r"|intermediate\.dense|output\.dense)",
        [],
    ),
    "blip-2": (
        ["q_proj", "v_proj"],
        r"language_model\.model\.decoder\.layers\.\d+\.(?:self_attn\.q_proj|self_attn\.k_proj"
        r"|self_attn\.v_proj|self_attn\.out_proj|fc1|fc2)",
        [],
    ),
    "mixtral": (
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        ["experts.gate_up_proj", "experts.down_proj"],
    ),
    "qwen2_moe": (
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ["experts.gate_up_proj", "experts.down_proj"],
    ),
    "qwen3_moe": (
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        ["experts.gate_up_proj", "experts.down_proj", "gate_proj.weight", "up_proj.weight", "down_proj.weight"],
    ),
    "deepseek_v3": (
        ["q_b_proj", "kv_b_proj"],
        ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"],
        ["experts.gate_up_proj", "experts.down_proj", "gate_proj.weight", "up_proj.weight", "down_proj.weight"],
    ),
    "llava": (
        r"model\.language_model\.layers\.\d+\.self_attn\.(?:q_proj|v_proj)",
        r"model\.language_model\.layers\.\d+\.(?:self_attn\.q_proj|self_attn\.k_proj|self_attn\.v_proj"
        r"|self_attn\.o_proj|mlp\.gate_proj|mlp\.up_proj|mlp\.down_proj)",
        [],
    ),
    "qwen2_vl": (
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        [],
    ),
}


@pytest.mark.parametrize("model_type", sorted(PINNED))
def test_pinned_targets(model_type):
    qv, all_linear, params = PINNED[model_type]
    a = analysis(model_type)
    assert a.suggest("qv").target_modules_list == qv
    plan = a.suggest("all-linear")
    assert plan.target_modules_list == all_linear
    assert list(plan.target_parameters) == params


def test_bert_dense_ambiguity_resolved_by_place():
    a = analysis("bert")
    roles = {l.name: (l.group, l.role) for l in a.layers}
    assert roles["bert.encoder.layer.0.attention.output.dense"] == ("attention", "o")
    assert roles["bert.encoder.layer.0.intermediate.dense"] == ("mlp", "up")
    assert roles["bert.encoder.layer.0.output.dense"] == ("mlp", "down")
    assert roles["cls.predictions.transform.dense"][0] == "head"
    wrapped = a.suggest("all-linear").wrapped
    assert not any("pooler" in n or n.startswith("cls.") for n in wrapped)


def test_gpt2_conv1d_needs_fan_in_fan_out():
    plan = analysis("gpt2").suggest("all-linear")
    assert plan.fan_in_fan_out and plan.lora_config(r=8).fan_in_fan_out


def test_t5_cross_attention_is_part_of_attention():
    a = analysis("t5")
    cross = [l for l in a.layers if l.group == "cross_attention"]
    assert cross and all("EncDecAttention" in l.name for l in cross)
    assert {l.name for l in cross} <= a.suggest("attention").wrapped
    gated = {l.role for l in a.layers if l.group == "mlp"}
    assert gated == {"gate", "up", "down"}


def test_moe_experts_router_and_rank_convention():
    a = analysis("deepseek_v3")
    plan = a.suggest("all-linear")
    experts = [l for l in plan.layers if l.group == "experts"]
    assert {l.role for l in experts} == {"gate_up", "down"}
    gate_up = next(l for l in experts if l.role == "gate_up")
    assert plan.rank_of(gate_up, 8) == 16  # fused gate_up at 2r, as PEFT converts it
    assert not any(l.group == "router" for l in plan.layers)
    dense = [l for l in plan.layers if l.group in ("mlp", "shared_experts")]
    assert dense, "dense MLP layers and shared experts belong to all-linear"
    with_router = a.suggest("all-linear", router=True)
    assert any(l.group == "router" for l in with_router.layers)
    report = modscope.verify(a, with_router, r=4)
    assert report.match, report.summary


def test_vision_tower_and_projector_only_on_request():
    a = analysis("llava")
    plan = a.suggest("all-linear")
    assert {l.part for l in plan.layers} == {"language"}
    wide = a.suggest("all-linear", vision=True, projector=True)
    assert {l.part for l in wide.layers} == {"language", "vision", "projector"}
    report = modscope.verify(a, wide, r=4)
    assert report.match, report.summary


@pytest.mark.parametrize("architecture", ["ViTForImageClassification", "ViTModel"])
def test_a_vision_model_alone_is_its_own_body(architecture):
    """ViT's image classifier keeps its blocks under `vit.`, a vision tower's name: they are the model itself, so
    the presets adapt them as the bare ViTModel's; PEFT on a real tiny classifier trains what modscope counts.
    Each injection gets the same class again, built from the config's architectures as the first was."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageClassification

    config = tiny_vit(architecture)
    a = modscope.analyze(config)
    assert [type(a.fresh_model()).__name__ for _ in range(2)] == [architecture] * 2  # rebuilt as built
    assert a.task == ("image-classification" if "Classification" in architecture else "base")
    plan = a.suggest("all-linear")
    assert {l.part for l in a.layers} == {"language"} and len(plan.layers) == 2 * 6
    assert not any(l.group == "head" for l in plan.layers)
    report = modscope.verify(a, plan, r=4)
    assert report.match, report.summary
    if architecture == "ViTForImageClassification":
        torch.manual_seed(0)
        real = AutoModelForImageClassification.from_config(config)
        peft_model = get_peft_model(copy.deepcopy(real), LoraConfig(**plan.lora_config_kwargs(4)))
        assert peft_model.get_nb_trainable_parameters() == (plan.trainable_params(4), a.total_params + report.peft)
