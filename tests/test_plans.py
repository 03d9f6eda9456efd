"""The API never hands over what PEFT will refuse: an empty preset and a LoraConfig PEFT rejects are
ModscopeErrors that say why; PEFT, injected for real, refuses the same configs."""

import dataclasses

import pytest
from test_scan import analysis

import modscope
from modscope.inject import inject


def test_an_empty_preset_says_what_exists_and_what_would_work():
    with pytest.raises(modscope.OptionError) as caught:
        analysis("mamba").suggest("mlp")
    message = str(caught.value)
    assert "\n" not in message and "selects no layer" in message and "in_proj" in message
    assert "mixer" in message and "another preset ('all-linear')" in message
    with pytest.raises(modscope.OptionError, match="it has no attention: its token mixers are state-space"):
        analysis("mamba").suggest("qv")
    with pytest.raises(
        modscope.OptionError, match=r"adaptable layers: language conv: convolution; try another preset \('conv'\)"
    ):
        analysis("resnet").suggest("all-linear")
    assert list(analysis("resnet").plans()) == ["conv"]
    with pytest.raises(modscope.OptionError, match=r"name layers yourself: `modscope check"):
        analysis("ibert").suggest("all-linear")  # its QuantLinear layers are not PEFT's to wrap


REFUSED = {
    "dropout on experts": dict(lora_dropout=0.1),
    "DoRA on experts": dict(use_dora=True),
    "a regex that does not compile": dict(target_modules="(q_proj"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_lora_config_refuses_what_peft_refuses(case):
    from peft import LoraConfig

    plan = analysis("deepseek_v3").suggest("mlp")
    with pytest.raises(modscope.OptionError):
        plan.lora_config(8, **REFUSED[case])
    values = {**plan.lora_config_kwargs(8), **REFUSED[case]}
    with pytest.raises(Exception) as peft_error:  # PEFT itself, on a real injection
        inject(analysis("deepseek_v3").fresh_model(), LoraConfig(**values))
    assert not isinstance(peft_error.value, modscope.ModscopeError)


@pytest.mark.parametrize("values", [dict(r=0), dict(r=2.5), dict(r=8, lora_alpha="16"), dict(r=8, bias="some")])
def test_lora_config_refuses_ill_typed_values(values):
    with pytest.raises(modscope.OptionError):
        analysis("llama").suggest("qv").lora_config(**values)


def test_accepted_configs_are_pefts_own():
    plan = analysis("llama").suggest("qv")
    config = plan.lora_config(16, lora_alpha=8, lora_dropout=0.05)
    assert dataclasses.asdict(config)["r"] == 16 and config.lora_dropout == 0.05
    _, (trainable, _) = inject(analysis("llama").fresh_model(), config)
    assert trainable == plan.trainable_params(16)
