"""QLoRA against real bitsandbytes on CPU (tiny configs, seconds each): the stand-ins hold exactly the bytes
bitsandbytes stores, a real QLoRA step (transformers' BitsAndBytesConfig, PEFT's lora.bnb wrappers) peaks where the
simulated one does, and the option reaches the user. Tests that need bitsandbytes skip without it."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import torch
import transformers
from peft import LoraConfig, get_peft_model
from test_handover import schema
from test_memory import DEEP
from tiny import tiny_config

import modscope
from modscope.build import TASKS
from modscope.cli import main
from modscope.simulate import _one, memory, training_config
from modscope.simulate import step as step_module
from modscope.simulate.quant import _layers, state_tensors
from modscope.simulate.step import DTYPES, Setup, run_step

# weights large against the logits, so the peak falls inside a quantised layer's matmul
WIDE = dict(hidden_size=128, intermediate_size=1024, vocab_size=64, num_attention_heads=4)


@pytest.fixture
def bnb():
    return pytest.importorskip("bitsandbytes")


def _bnb_config(setup: Setup) -> transformers.BitsAndBytesConfig:
    if setup.quant == "int8":
        return transformers.BitsAndBytesConfig(load_in_8bit=True)
    return transformers.BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=getattr(torch, DTYPES[setup.dtype]),
        bnb_4bit_use_double_quant=setup.double_quant,
    )


def _real_model(config, task, setup, path):
    """A real model quantised by transformers and bitsandbytes on CPU, as a user loads it."""
    torch.manual_seed(0)
    cls = getattr(transformers, TASKS[task][0])
    dtype = getattr(torch, DTYPES[setup.dtype])
    cls.from_config(copy.deepcopy(config)).to(dtype).save_pretrained(path)
    model = cls.from_pretrained(
        path, quantization_config=_bnb_config(setup), dtype=dtype, device_map="cpu", attn_implementation=setup.attention
    )
    model.config.use_cache = False  # as modscope.simulate.training_config has it
    return model


def _fake(analysis, config, lora, setup):
    return _one(analysis, training_config(config, setup.attention), lora, setup)


def _rounded_bytes(tensors) -> int:
    storages = {id(t.untyped_storage()): t.untyped_storage().nbytes() for t in tensors}
    return sum(-(-n // 512) * 512 for n in storages.values())


@pytest.mark.parametrize(
    "shape", [(64, 64), (7, 100), (96, 1000), (1024, 129)], ids=["even", "odd-numel", "many-blocks", "odd-blocks"]
)
@pytest.mark.parametrize("double_quant", [True, False])
def test_nf4_stand_in_holds_the_tensors_quantize_4bit_makes(bnb, shape, double_quant):
    weight = torch.randn(shape, dtype=torch.bfloat16)
    packed, state = bnb.functional.quantize_4bit(
        weight, blocksize=64, compress_statistics=double_quant, quant_type="nf4"
    )
    real = {"weight": packed, "code": state.code, "absmax": state.absmax}
    if double_quant:
        real |= {"offset": state.offset, "absmax2": state.state2.absmax, "code2": state.state2.code}
    stand_in = _layers()["nf4"](torch.nn.Linear(shape[1], shape[0], bias=False), torch.bfloat16, double_quant)
    held = dict(stand_in.named_buffers()) | {"weight": stand_in.weight}
    assert {k: (tuple(t.shape), t.dtype) for k, t in held.items()} == {
        k: (tuple(t.shape), t.dtype) for k, t in real.items()
    }


def test_int8_stand_in_holds_the_tensors_int8params_makes(bnb):
    weight = torch.randn(96, 100, dtype=torch.float16)
    cb, scb, _ = bnb.functional.int8_vectorwise_quant(weight)
    stand_in = _layers()["int8"](torch.nn.Linear(100, 96), torch.bfloat16, True)
    assert (stand_in.weight.shape, stand_in.weight.dtype) == (cb.shape, cb.dtype)
    assert (stand_in.SCB.shape, stand_in.SCB.dtype) == (scb.shape, scb.dtype)


# llama: untied; qwen2: tied embeddings (transformers skips both ends); gpt2: Conv1D, transposed into Linear4bit
@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("quant", ["nf4", "nf4-single", "int8"])
def test_stand_in_weights_equal_the_real_quantised_model_bytes(bnb, family, quant, tmp_path):
    kind = quant.split("-")[0]
    setup = Setup(batch=1, seq=8, dtype="bf16", attention="sdpa", quant=kind, double_quant=quant == "nf4")
    config = tiny_config(family)
    analysis = modscope.analyze(config)
    real = _real_model(config, analysis.task, setup, tmp_path)
    kinds = {type(m).__name__ for m in real.modules()}
    assert ("Linear4bit" if setup.quant == "nf4" else "Linear8bitLt") in kinds
    held = [*real.parameters(), *real.buffers(), *state_tensors(real)]
    fake = _fake(analysis, config, analysis.suggest("all-linear").lora_config(8), setup)
    assert fake.persistent["weights"] == _rounded_bytes(held)


def _tracker_that_sees_inside_gemm_4bit(make):
    """On CUDA past 1536 tokens, gemm_4bit dequantises then calls F.linear; on CPU the same happens inside the op,
    where a dispatch mode cannot see. Run its CPU kernel under the tracker so that its temporaries count."""

    def make_tracker(rounding):
        tracker = make(rounding)
        cls = type(tracker)
        dispatch = cls.__torch_dispatch__

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.bitsandbytes.gemm_4bit.default:
                with self:
                    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
                    return func.redispatch(keys, *args, **(kwargs or {}))
            return dispatch(self, func, types, args, kwargs)

        cls.__torch_dispatch__ = __torch_dispatch__
        return tracker

    return make_tracker


QLORA = [
    ("llama", {}, Setup(batch=2, seq=24, dtype="bf16", attention="sdpa", quant="nf4")),
    ("llama", WIDE, Setup(batch=1, seq=8, dtype="bf16", attention="sdpa", quant="nf4")),
    ("llama", WIDE, Setup(batch=1, seq=8, dtype="bf16", attention="sdpa", quant="nf4", double_quant=False)),
    ("llama", WIDE, Setup(batch=1, seq=8, dtype="fp32", attention="eager", quant="nf4", gradient_checkpointing=True)),
    ("gpt2", {}, Setup(batch=2, seq=24, dtype="bf16", attention="eager", quant="nf4")),
    ("qwen2", {}, Setup(batch=2, seq=24, dtype="bf16", attention="sdpa", quant="nf4")),
]


@pytest.mark.parametrize(
    "family, overrides, setup", QLORA, ids=["llama", "wide", "wide-single", "wide-fp32-ckpt", "gpt2", "qwen2-tied"]
)
def test_simulated_qlora_step_equals_the_real_bitsandbytes_step(
    bnb, family, overrides, setup, tmp_path, monkeypatch, lora=None
):
    config = tiny_config(family, **overrides)
    analysis = modscope.analyze(config)
    lora = lora or analysis.suggest("all-linear").lora_config(8)
    # PEFT's lora.bnb wrappers skip the input cast when CUDA's autocast is on; this step's autocast is CPU's
    autocast_on = torch.is_autocast_enabled
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *a: autocast_on(*a) if a else autocast_on("cpu"))
    monkeypatch.setattr(step_module, "make_tracker", _tracker_that_sees_inside_gemm_4bit(step_module.make_tracker))
    model = get_peft_model(_real_model(config, analysis.task, setup, tmp_path), copy.deepcopy(lora))
    assert type(model.get_submodule("base_model.model.lm_head")).__name__ == "Linear"  # not quantised
    if setup.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    real = run_step(model, setup, fake=False)
    monkeypatch.undo()
    fake = _fake(analysis, config, lora, setup)
    assert fake.persistent == real.persistent
    assert fake.peaks["backward"] == real.peaks["backward"]
    assert fake.peaks["optimizer step"] == real.peaks["optimizer step"]
    # the forward is exact but for one fp32 absmax: CUDA's fallback keeps the dequantised absmax beside the offset
    # one until F.linear returns, bitsandbytes' CPU kernel frees it first
    forward, real_forward = fake.peaks["forward"].bytes, real.peaks["forward"].bytes
    absmax = -(-(overrides.get("intermediate_size", 96) * overrides.get("hidden_size", 64) // 64 * 4) // 512) * 512
    assert forward - real_forward in ((0, absmax) if setup.double_quant else (0,))


def test_a_weight_named_in_target_parameters_gets_peft_bnb_wrapper(bnb, tmp_path, monkeypatch):
    """PEFT adapts a quantised Linear named in target_parameters (how DeepSeek-V3's dense MLP is reached) with a
    lora.bnb.Linear4bit, not a ParamWrapper; the simulation wraps it the same way."""
    lora = LoraConfig(r=4, target_modules=["q_proj"], target_parameters=["mlp.gate_proj.weight"])
    setup = Setup(batch=1, seq=8, dtype="bf16", attention="sdpa", quant="nf4")
    test_simulated_qlora_step_equals_the_real_bitsandbytes_step(bnb, "llama", WIDE, setup, tmp_path, monkeypatch, lora)


def test_qlora_depth_extension_equals_the_full_depth_simulation():
    config = transformers.AutoConfig.for_model("llama", **DEEP["llama"])
    analysis = modscope.analyze(config)
    report = memory(analysis, batch=2, seq=16, quant="nf4")
    assert report.depths is not None and len(report.depths.short) == 2
    full = _one(analysis, config, analysis.suggest("all-linear").lora_config(8), report.setup)
    assert report.terms == max(full.peaks.values(), key=lambda p: p.bytes).by_category


def test_cli_quant_nf4_on_a_catalog_model(capsys):
    assert main(["memory", "Qwen/Qwen2-0.5B", "--seq", "256", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["memory", "Qwen/Qwen2-0.5B", "--seq", "256", "--json", "--quant", "nf4"]) == 0
    document = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema("memory")).validate(document)
    assert document["setup"]["quant"] == "nf4" and document["setup"]["double_quant"] is True
    assert any("BitsAndBytesConfig(load_in_4bit=True" in a for a in document["assumptions"])
    # the tied embedding stays in bf16; the blocks' Linear layers drop to 4 bits + 1/8 bit of absmax + its statistics
    total, embedding = modscope.analyze("Qwen/Qwen2-0.5B").total_params, 151936 * 896
    expected = 2 * embedding + (total - embedding) * (0.5 + 1 / 64 + 4 / 64 / 256)
    assert abs(document["terms"]["weights"] - expected) < 0.01 * expected
    assert document["trainable_params"] == plain["trainable_params"]


def test_an_unknown_quantisation_is_refused():
    with pytest.raises(modscope.OptionError, match="unknown quant 'fp8'"):
        memory(tiny_config("llama"), quant="fp8")


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_adamw_8bit_states_and_step_equal_bitsandbytes(family):
    """The stand-in keeps the state bitsandbytes' AdamW8bit keeps (uint8 moments and blockwise absmax from
    4096 elements, fp32 below) and the step's peaks equal a real step with bitsandbytes' optimizer."""
    pytest.importorskip("bitsandbytes")
    from test_memory import _fake_peak, _real_peak

    config = tiny_config(family, vocab_size=4096)  # an embedding-sized adapter above bitsandbytes' 4096 threshold
    analysis = modscope.analyze(config)
    lora = LoraConfig(r=64, target_modules=["q_proj", "v_proj"] if family == "llama" else ["c_attn"])
    lora.fan_in_fan_out = family == "gpt2"
    setup = Setup(batch=2, seq=16, dtype="bf16", optimizer="adamw-8bit")
    real, fake = _real_peak(analysis, config, lora, setup), _fake_peak(analysis, config, lora, setup)
    assert fake.persistent == real.persistent
    for phase in ("forward", "backward"):
        assert fake.peaks[phase].bytes == real.peaks[phase].bytes, phase
