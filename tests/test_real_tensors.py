"""Real tensors are the final truth: every option `check` supports, injected with PEFT into a tiny REAL
CPU model of each family, must train exactly what `modscope.count` reports.

Targets come from modscope's own analysis (the leaf names of the language attention and MLP roles, the
3-D expert parameters, the head), never typed in; the numbers come from PEFT on the real model. Where
PEFT on the meta device and PEFT on real tensors disagree, a test below pins the difference exactly as
``modscope.inject`` describes it, so it fails the day PEFT changes and the correction must go.
"""

import copy
import json
import re
from functools import cache

import pytest
import torch
from tiny import TINY, tiny_config

import modscope
from modscope.build import _mapping
from modscope.check import verify_count
from modscope.inject import inject, wrapped_layers

OPTIONS = (
    "lora",
    "all-linear",
    "embeddings",
    "dora",
    "bias all",
    "bias lora_only",
    "modules_to_save",
    "rank_pattern",
    "layers_to_transform",
    "2-D weight as parameter",
    "experts 3-D",
    "adalora",
    "seq_cls",
)
SEQ_CLS = "sequence-classification"


@cache
def family(model_type, task=None):
    """modscope's analysis (meta) and the same class built with real CPU tensors, once per family and task."""
    import transformers

    analysis = modscope.analyze(tiny_config(model_type), task=task)
    torch.manual_seed(0)
    real = getattr(transformers, analysis.architecture)._from_config(analysis.resolved.config)
    return analysis, real


def _leaves(analysis, group):
    return sorted(
        {l.leaf for l in analysis.layers if l.group == group and l.part == "language" and l.parameter is None}
    )


def lora_values(option, analysis):
    """The LoraConfig fields for ``option`` on this family, derived from modscope's analysis; skip where the
    option does not apply."""
    attention = _leaves(analysis, "attention")
    values = dict(target_modules=attention, r=4, lora_alpha=8)
    if any(l.kind == "conv1d" for l in analysis.layers if l.leaf in attention):
        values["fan_in_fan_out"] = True
    if option in ("lora", "seq_cls"):
        values["target_modules"] = attention + [m for m in _leaves(analysis, "mlp") if m not in attention]
        if option == "seq_cls":
            values["task_type"] = "SEQ_CLS"
    elif option == "all-linear":
        values["target_modules"] = "all-linear"
    elif option == "embeddings":  # Embedding and Conv2d layers, the vision towers' patch embeddings included
        values["target_modules"] = sorted({l.leaf for l in analysis.layers if l.kind in ("embedding", "conv2d")})
    elif option == "dora":
        values["use_dora"] = True
    elif option.startswith("bias"):
        values["bias"] = option.split()[1]
    elif option == "modules_to_save":
        head = next(l for l in analysis.layers if l.role == "lm_head")
        values["modules_to_save"] = [head.module]
    elif option == "rank_pattern":  # a leaf name, and one layer by its full path
        one = next(l for l in analysis.layers if l.leaf == attention[-1])
        values["rank_pattern"] = {attention[0]: 8, re.escape(one.name): 2}
    elif option == "layers_to_transform":
        values["layers_to_transform"] = [1]
    elif option == "2-D weight as parameter":  # a Linear (or Conv1D) weight through target_parameters
        one = next(l for l in analysis.layers if l.leaf == attention[0] and l.parameter is None)
        values.update(target_modules=[], target_parameters=[f"{one.name}.weight"], fan_in_fan_out=False)
    elif option == "experts 3-D":
        experts = sorted({".".join(l.name.split(".")[-2:]) for l in analysis.layers if l.experts})
        if not experts:
            pytest.skip(f"{analysis.model_type} is dense: no 3-D expert parameters")
        values.update(target_parameters=experts, lora_dropout=0.0)
    elif option == "adalora":
        values = dict(
            peft_type="ADALORA",
            target_modules=attention,
            init_r=4,
            total_step=100,
            fan_in_fan_out=values.get("fan_in_fan_out", False),
        )
    return values


def peft_config(values):
    from peft import AdaLoraConfig, LoraConfig

    values = dict(values)
    return (AdaLoraConfig if values.pop("peft_type", "LORA") == "ADALORA" else LoraConfig)(**values)


def peft_on_real(model, values):
    """PEFT's (trainable, all) and wrapped layers after ``get_peft_model`` on a copy of the real model."""
    from peft import get_peft_model

    peft_model = get_peft_model(copy.deepcopy(model), peft_config(values))
    return peft_model.get_nb_trainable_parameters(), wrapped_layers(peft_model)


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("model_type", sorted(TINY))
def test_count_equals_peft_on_the_real_model(model_type, option):
    task = None
    if option == "seq_cls":
        if model_type not in _mapping(SEQ_CLS):
            pytest.skip(f"transformers has no sequence-classification class for {model_type}")
        task = SEQ_CLS
    analysis, real = family(model_type, task)
    assert sum(p.numel() for p in real.parameters()) == analysis.total_params  # the same model, tied weights once
    values = lora_values(option, analysis)
    report = modscope.count(analysis, values)
    assert not report.problems, report.problems
    (trainable, total), wrapped = peft_on_real(real, values)
    assert (report.trainable, report.total) == (trainable, total)
    assert report.wrapped == wrapped
    verified = verify_count(report)  # the meta injection, with the real model's rules applied
    assert (verified.peft, verified.peft_all) == (trainable, total), verified.summary


@pytest.mark.parametrize("model_type", ["bert", "gpt2"])
def test_meta_differs_from_real_adalora_ranknum(model_type):
    """The difference modscope.inject corrects, exactly as its notes describe: AdaLoRA's ranknum (one per
    layer) is frozen on real tensors and trainable on meta, totals equal. Fails the day PEFT changes it."""
    from peft import get_peft_model

    analysis, real = family(model_type)
    values = lora_values("adalora", analysis)
    on_real = get_peft_model(copy.deepcopy(real), peft_config(values))
    on_meta = get_peft_model(analysis.fresh_model(), peft_config(values), low_cpu_mem_usage=True)

    def ranknum_grads(peft_model):
        return [p.requires_grad for name, p in peft_model.named_parameters() if ".ranknum." in name]

    layers = len(wrapped_layers(on_real))
    assert ranknum_grads(on_real) == [False] * layers and ranknum_grads(on_meta) == [True] * layers
    (real_trainable, real_total), (meta_trainable, meta_total) = (
        on_real.get_nb_trainable_parameters(),
        on_meta.get_nb_trainable_parameters(),
    )
    assert (meta_trainable - real_trainable, meta_total) == (layers, real_total)
    # modscope's meta injection applies the real rule, and its count is the real one
    assert inject(analysis.fresh_model(), peft_config(values))[1] == (real_trainable, real_total)
    assert modscope.count(analysis, values).trainable == real_trainable


def test_bert_base_adalora_equals_peft_on_the_real_model():
    """The issue's case: bert-base-uncased from the catalog, AdaLoRA on query/key/value/dense at r=8, against
    PEFT on the real CPU model built from that config (~110M parameters, random init)."""
    import transformers
    from peft import get_peft_model

    values = dict(peft_type="ADALORA", target_modules=["query", "key", "value", "dense"], init_r=8, total_step=1000)
    report = modscope.count("bert-base-uncased", values)
    torch.manual_seed(0)
    real = getattr(transformers, report.analysis.architecture)._from_config(report.analysis.resolved.config)
    peft_model = get_peft_model(real, peft_config(values))
    assert (report.trainable, report.total) == peft_model.get_nb_trainable_parameters()
    assert report.wrapped == wrapped_layers(peft_model)
    verified = verify_count(report)
    assert verified.match and verified.peft_all == report.total, verified.summary


def test_fan_in_fan_out_with_target_parameters_is_a_problem_and_peft_refuses_it():
    """Found by this suite on GPT-2: a Conv1D weight in target_parameters counts, but fan_in_fan_out=True
    (which its Conv1D layers need as target_modules) is refused there, on the real model as on meta."""
    analysis, real = family("gpt2")
    values = dict(lora_values("2-D weight as parameter", analysis), fan_in_fan_out=True)
    report = modscope.count(analysis, values)
    assert any("fan_in_fan_out" in p for p in report.problems), report.problems
    with pytest.raises(ValueError, match="fan_in_fan_out"):
        peft_on_real(real, values)
    assert "fan_in_fan_out" in verify_count(report).error


def test_layer_replication_total_differs_under_low_cpu_mem_usage():
    """The second difference in ``modscope.inject``: PEFT's fast path counts the shared weights of repeated
    blocks twice in the total; the real model (PEFT's default path) does not, and modscope reports the real."""
    from peft import LoraConfig, get_peft_model

    values = dict(target_modules=["q_proj", "v_proj"], r=4, layer_replication=[[0, 2], [1, 2]])
    analysis, real = family("llama")
    real_counts = get_peft_model(copy.deepcopy(real), LoraConfig(**values)).get_nb_trainable_parameters()
    fast = inject(analysis.fresh_model(), LoraConfig(**values))[1]
    assert fast[0] == real_counts[0] and fast[1] > real_counts[1]
    report = modscope.count(analysis, values)
    assert (report.trainable, report.total) == real_counts
    verified = verify_count(report)
    assert verified.match and verified.peft_all == real_counts[1]


def _saved_untied(model, folder, drop_tie_key):
    """Save ``model`` (its output layer apart from the input embeddings) as a checkpoint whose config.json
    says what the published file says: tie_word_embeddings false, or nothing at the top level."""
    model.save_pretrained(folder)
    raw = json.loads((folder / "config.json").read_text())
    if drop_tie_key:
        del raw["tie_word_embeddings"]
    else:
        raw["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(raw))


def _counted_as_loaded(folder, auto_class, preset):
    """modscope's total and count on ``folder`` equal the loaded model's and PEFT's on it (the preset's targets
    and the output layer saved whole); the notes say why."""
    loaded = auto_class.from_pretrained(folder)
    assert loaded.get_output_embeddings().weight is not loaded.get_input_embeddings().weight
    analysis = modscope.analyze(folder)
    values = {"r": 8, "target_modules": analysis.suggest(preset).target_modules, "modules_to_save": ["lm_head"]}
    assert analysis.total_params == sum(p.numel() for p in loaded.parameters())
    assert analysis.resolved.untied_output and any("counted untied" in n for n in analysis.notes)
    (trainable, total), _ = peft_on_real(loaded, values)
    report = modscope.count(analysis, values)
    assert (report.trainable, report.total) == (trainable, total)


def test_a_t5_checkpoint_transformers_would_tie_is_counted_as_it_loads(tmp_path):
    """flan-t5 and mT0 say tie_word_embeddings=false; transformers 5's T5Config ties whatever the file says,
    but loading the checkpoint, which holds its own lm_head, keeps it apart."""
    from transformers import AutoModelForSeq2SeqLM, T5Config

    config = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(config)
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight))  # trained apart
    _saved_untied(model, tmp_path, drop_tie_key=False)
    _counted_as_loaded(tmp_path, AutoModelForSeq2SeqLM, "qv")


def test_an_untied_checkpoint_behind_a_tied_class_default_is_counted_as_it_loads(tmp_path):
    """Mistral Small 3.1's config.json leaves tie_word_embeddings out: transformers 5's Mistral3Config
    defaults it to true and builds a tied model, but the checkpoint holds its own output layer and loading
    it keeps the two apart."""
    from transformers import AutoModelForImageTextToText, Mistral3Config

    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, head_dim=8)
    text = dict(model_type="mistral", num_key_value_heads=2, vocab_size=128, tie_word_embeddings=False, **small)
    vision = dict(model_type="pixtral", image_size=32, patch_size=16, **small)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(
        Mistral3Config(text_config=text, vision_config=vision, tie_word_embeddings=False)
    )
    _saved_untied(model, tmp_path, drop_tie_key=True)
    _counted_as_loaded(tmp_path, AutoModelForImageTextToText, "all-linear")
