"""modscope/peft_rules.py held to PEFT: each mirrored rule against PEFT's own function or a real injection,
on every sampled model type, so a PEFT upgrade that changes a rule fails here."""

import pytest
from test_scan import SAMPLE, analysis

import modscope
from modscope import scan
from modscope.cli import main
from modscope.peft_rules import MAMBA_REFUSED, MAMBA_TYPES, matches, model_refusal, saved_modules
from modscope.reduced import reduced_config

# model types whose default config builds but which PEFT refuses whatever the targets (transformers 5.24)
REFUSED_TYPES = ("pp_formulanet", "pp_doclayout_v3", "pp_doclayout_v4", "granite_speech5_ctc")
KNOWN = set(scan.all_model_types())


def _peft_refuses(model):
    from peft.utils.other import _get_module_names_tied_with_embedding

    try:
        _get_module_names_tied_with_embedding(model)
    except NotImplementedError:
        return True
    return False


@pytest.mark.parametrize("model_type", [*SAMPLE, *(t for t in REFUSED_TYPES if t in KNOWN)])
def test_model_refusal_is_pefts(model_type):
    a = analysis(model_type)
    assert (model_refusal(a.model()) is not None) == _peft_refuses(a.model())


@pytest.mark.parametrize("model_type", [t for t in REFUSED_TYPES if t in KNOWN])
def test_a_model_peft_refuses_is_an_error_from_api_and_cli_not_a_plan(model_type, tmp_path, capsys):
    from peft import LoraConfig

    from modscope.inject import inject

    a = analysis(model_type)
    assert a.peft_refusal and "PEFT cannot adapt" in a.peft_refusal
    with pytest.raises(ValueError, match="PEFT cannot adapt"):  # an OptionError is a ValueError
        a.suggest("all-linear")
    with pytest.raises(modscope.OptionError):
        a.plans()
    name = next(l.leaf for l in a.layers if l.kind == "linear")
    report = modscope.count(a, {"target_modules": [name], "r": 4})
    assert a.peft_refusal in report.problems
    with pytest.raises(NotImplementedError):  # PEFT itself, injected for real
        inject(a.fresh_model(), LoraConfig(r=4, target_modules=[name]))
    reduced_config(model_type).save_pretrained(tmp_path)
    assert main(["show", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PEFT cannot adapt" in err


@pytest.mark.parametrize("model_type", sorted(MAMBA_TYPES & KNOWN))
def test_mamba_refusals_are_pefts(model_type):
    from peft import LoraConfig

    from modscope.inject import inject

    a = analysis(model_type)
    for leaf in sorted(MAMBA_REFUSED & {l.leaf for l in a.layers}):
        with pytest.raises(ValueError, match="Incompatible modules"):
            inject(a.fresh_model(), LoraConfig(r=4, target_modules=[leaf]))
    allowed = sorted({l.leaf for l in a.layers if l.kind == "linear"} - MAMBA_REFUSED)
    assert allowed
    inject(a.fresh_model(), LoraConfig(r=4, target_modules=allowed))  # no refusal for the others


def test_mamba_refusal_is_only_for_those_types():
    from peft import LoraConfig

    from modscope.inject import inject

    a = analysis("bart")  # has out_proj, and is not a Mamba type
    assert "out_proj" in {l.leaf for l in a.layers}
    inject(a.fresh_model(), LoraConfig(r=4, target_modules=["out_proj"]))


def _targets(a):
    """What users give: each preset's compiled targets (leaf lists, full paths, regexes), every leaf name alone,
    and a regex of its own."""
    found = [p.target_modules_list for p in (a.plans().values() if not a.peft_refusal else ())]
    found += [[leaf] for leaf in sorted({l.leaf for l in a.layers})]
    return [*found, r".*\.(q_proj|query|c_attn|dense)", ".*"]


@pytest.mark.parametrize("model_type", SAMPLE)
def test_matches_is_check_target_module_exists(model_type):
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists

    a = analysis(model_type)
    for targets in _targets(a):
        config = LoraConfig(target_modules=targets)
        for name in a.module_names:
            assert matches(targets, name) == bool(check_target_module_exists(config, name)), (targets, name)


@pytest.mark.parametrize("model_type", SAMPLE)
def test_saved_modules_is_set_trainable(model_type):
    """The copies PEFT makes for modules_to_save, injected for real, are the modules modscope names (PEFT also
    wraps modules nested in a copied one, which train nothing more: the counts in test_check hold that)."""
    from peft import LoraConfig
    from peft.utils.other import ModulesToSaveWrapper

    from modscope.inject import inject

    a = analysis(model_type)
    if a.peft_refusal:
        pytest.skip(a.peft_refusal)
    target = next(l.leaf for l in a.layers if l.group in ("attention", "mlp") and l.parameter is None)
    for wanted in {l.leaf for l in a.layers if l.group in ("head", "embedding")} - {target} or {"norm"}:
        model, _ = inject(a.fresh_model(), LoraConfig(r=2, target_modules=[target], modules_to_save=[wanted]))
        copies = {
            name.removeprefix("base_model.model.")
            for name, m in model.named_modules()
            if isinstance(m, ModulesToSaveWrapper)
        }
        outermost = {c for c in copies if not any(c.startswith(o + ".") for o in copies)}
        assert set(saved_modules(a.module_names, [wanted])) == outermost, wanted


def test_builds_conv_is_what_peft_can_rebuild():
    """peft_rules.builds_conv against PEFT's own LoRA conv wrapper, on torch's class and on a subclass with an
    __init__ of its own (as NemotronAsr's causal conv has)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from modscope.peft_rules import builds_conv

    class CausalConv(torch.nn.Conv2d):
        def __init__(self, channels, kernel):
            super().__init__(channels, channels, kernel)

    for conv in (torch.nn.Conv2d(4, 4, 3), CausalConv(4, 3)):
        model = torch.nn.Sequential(conv)
        try:
            get_peft_model(model, LoraConfig(r=2, target_modules=["0"]))
            peft_builds = True
        except TypeError:
            peft_builds = False
        assert builds_conv(type(conv)) == peft_builds
    assert builds_conv(torch.nn.Conv1d) and not builds_conv(CausalConv)
