"""Convolutional models: torch's Conv1d/Conv2d/Conv3d are layers with their own count (r·Cin·k + Cout·r/groups,
as PEFT's lora.Conv*d builds them), and the 'conv' preset adapts the convolutions of models whose work is done by
them; PEFT, injected on meta and on the real model, is the oracle, the printed code what is injected."""

import copy

import pytest
import torch
from test_scan import analysis

import modscope
from modscope.inject import compare
from modscope.render.readback import taken_away

CONV_MODELS = ("resnet", "efficientnet", "mobilenet_v2", "bit", "poolformer", "hgnet_v2", "regnet", "dac", "encodec")


@pytest.mark.parametrize("model_type", CONV_MODELS)
def test_conv_preset_equals_peft(model_type):
    a = analysis(model_type)
    plan = a.suggest("conv")
    assert plan.layers and all(l.kind in ("torch_conv1d", "conv2d", "conv3d") and l.groups == 1 for l in plan.layers)
    for r in (4, 8):
        report = compare(
            a.fresh_model(),
            taken_away(plan, r),
            label="conv",
            r=r,
            predicted=plan.trainable_params(r),
            expected=plan.wrapped,
        )
        assert report.match, report.summary


def test_conv_count_on_the_real_model():
    from peft import get_peft_model
    from transformers import AutoModel

    a = analysis("resnet")
    plan = a.suggest("conv")
    torch.manual_seed(0)
    real = AutoModel.from_config(copy.deepcopy(a.resolved.config))
    trainable, total = get_peft_model(real, plan.lora_config(8)).get_nb_trainable_parameters()
    assert trainable == plan.trainable_params(8) and total == a.total_params + trainable


def test_grouped_convs_are_told_apart_and_left_out():
    """ConvNeXt's depthwise convs (groups = channels) need a rank divisible by their groups: role conv_dw."""
    a = analysis("convnext")
    grouped = [l for l in a.layers if l.role == "conv_dw"]
    assert grouped and all(l.groups > 1 for l in grouped)
    merge = [l for l in a.layers if l.role == "patch_merge"]  # its stride-2 conv between stages
    assert merge and all(l.groups == 1 for l in merge)
    with pytest.raises(modscope.OptionError, match="selects no layer"):  # its MLP is Linear: 'mlp' adapts it
        a.suggest("conv")


def test_a_mixers_causal_conv_is_the_mixers():
    a = analysis("mamba")
    conv = [l for l in a.layers if l.leaf == "conv1d"]
    assert conv and all((l.group, l.role) == ("mixer", "conv") for l in conv)
    with pytest.raises(modscope.OptionError, match="selects no layer"):
        a.suggest("conv")


def test_transformers_have_no_conv_preset_but_say_why():
    with pytest.raises(modscope.OptionError, match=r"preset 'conv' selects no layer of llama"):
        analysis("llama").suggest("conv")
    assert "conv" not in analysis("llama").plans()


def test_conv_targets_stay_short():
    """RegNet's ungrouped layer.0/layer.3 convs sit beside the grouped layer.1 (and EnCodec's convs beside its
    ConvTranspose1d upsamplers, under the same leaf names): a regex with \\d+ would take those too, so they are
    spelled as the shortest dotted suffixes (or a regex with the indices written out), not one path per layer;
    test_conv_preset_equals_peft proves PEFT wraps exactly these layers."""
    for model_type in CONV_MODELS:
        targets = analysis(model_type).suggest("conv").target_modules
        assert isinstance(targets, str) or len(targets) <= 12, (model_type, targets)
    assert analysis("regnet").suggest("conv").target_modules == (
        "embedder.convolution",
        "layer.0.convolution",
        "attention.0",
        "attention.2",
        "layer.3.convolution",
        "shortcut.convolution",
    )
    assert analysis("mobilenet_v1").suggest("conv").target_modules == (
        r"(?:conv_stem\.convolution|layer\.(?:1|3|5|7|9|11|13|15|17|19|21|23|25)\.convolution)"
    )


def test_a_channel_mlp_of_1x1_convs_is_the_mlp_and_the_conv_preset_adapts_it():
    """PoolFormerOutput: conv1 (1x1, C -> 4C) -> act -> conv2 (4C -> C). Its role is the MLP's; 'mlp' and
    'all-linear' adapt Linear-like layers as PEFT's all-linear does, and say that 'conv' takes these."""
    a = analysis("poolformer")
    assert {(l.leaf, l.role) for l in a.layers if l.group == "mlp"} == {("conv1", "up"), ("conv2", "down")}
    assert a.suggest("conv").target_modules == ("conv1", "conv2")
    for preset in ("mlp", "all-linear"):
        with pytest.raises(modscope.OptionError, match=r"its MLP is made of convolutions \(conv1, conv2\).*'conv'"):
            a.suggest(preset)
