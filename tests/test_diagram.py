"""The block diagram: one block of each stack (each tower) drawn with matplotlib, layers coloured by role, the
preset's layers marked with their counts; written by `show --svg`, read back here as the XML it is."""

import dataclasses
import re
import sys
import xml.etree.ElementTree as ET

import pytest
from tiny import tiny_config

import modscope
from modscope.cli import main
from modscope.render.diagram import _SPARE, COLOURS, colour, svg_text

SVG = "{http://www.w3.org/2000/svg}"


def _read(svg: str) -> tuple[set[str], list[str], set[str]]:
    """(texts, ids of the adapted boxes, ids of the other boxes) of an SVG document."""
    root = ET.fromstring(svg.encode())
    texts = {"".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    ids = [g.get("id", "") for g in root.iter(f"{SVG}g")]
    adapted = [i.split(":", 1)[1] for i in ids if i.startswith("adapted:")]
    return texts, adapted, {i.split(":", 1)[1] for i in ids if i.startswith("layer:")}


def _box_name(layer) -> str:
    return f"{layer.module.rpartition('.')[2]}.{layer.parameter}" if layer.parameter else layer.leaf


CASES = {
    "qwen2": ({}, ["model.layers.0"]),
    "deepseek_v3": ({}, ["model.layers.0", "model.layers.1"]),  # a dense block and a MoE block
    "llava": (
        dict(vision=True, projector=True),
        ["model.vision_tower.encoder.layers.0", "model.language_model.layers.0"],
    ),
}


@pytest.mark.parametrize("model_type", CASES)
def test_one_block_of_each_stack_is_drawn_with_the_preset_marked(model_type, tmp_path):
    extras, blocks = CASES[model_type]
    analysis = modscope.analyze(tiny_config(model_type))
    plan = analysis.suggest("all-linear", **extras)
    path = tmp_path / "block.svg"
    path.write_text(svg_text(analysis.draw("all-linear", **extras)))
    texts, adapted, others = _read(path.read_text())

    def drawn(layer) -> bool:  # in a drawn block, or outside every stack (embeddings, projector, lm_head)
        return layer.module.startswith(tuple(b + "." for b in blocks)) or not re.search(r"\.\d+\.", layer.module)

    # every layer of the drawn blocks is a box, under its own name, the adapted ones marked
    assert {l.name for l in analysis.layers if drawn(l)} == set(adapted) | others
    assert {_box_name(l) for l in analysis.layers if drawn(l)} <= texts
    assert len(adapted) == len(set(adapted)) == len([l for l in plan.layers if drawn(l)])
    counts = {f"LoRA +{plan.layer_params(l, 8):,}" for l in plan.layers if drawn(l)}
    assert counts <= texts
    assert any(t.startswith(f"'all-linear' at r=8: {len(plan.layers)} layers") for t in texts)
    for block in blocks:  # each block's section is titled with what LoRA adds to one such block
        lora = sum(plan.layer_params(l, 8) for l in plan.layers if l.module.startswith(block + "."))
        assert [t for t in texts if block in t and t.endswith(f", LoRA +{lora:,} in each")], block


def test_a_plan_draws_on_its_analysis_or_alone():
    analysis = modscope.analyze(tiny_config("qwen2"))
    plan = analysis.suggest("qv")
    _, adapted, others = _read(svg_text(plan.draw(analysis)))
    assert sorted(adapted) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"]
    assert "model.layers.0.mlp.down_proj" in others
    _, adapted, others = _read(svg_text(plan.draw()))  # the plan's own layers: all of them adapted
    assert sorted(adapted) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"] and not others
    _, adapted, others = _read(svg_text(analysis.draw(None)))  # nothing marked
    assert not adapted and "model.layers.0.self_attn.q_proj" in others


def test_the_picture_is_the_same_every_time_and_shows_in_jupyter():
    analysis = modscope.analyze(tiny_config("qwen2"))
    assert svg_text(analysis.draw()) == svg_text(analysis.draw())
    assert analysis.draw()._repr_svg_().lstrip().startswith("<?xml")


def test_groups_it_does_not_know_get_a_colour_of_their_own():
    assert colour("attention") == COLOURS["attention"] and colour("a_group_from_later") in _SPARE
    assert colour("a_group_from_later") == colour("a_group_from_later")
    analysis = modscope.analyze(tiny_config("qwen2"))
    renamed = tuple(dataclasses.replace(l, group=f"new_{l.group}", role=f"new_{l.role}") for l in analysis.layers)
    texts, _, others = _read(svg_text(dataclasses.replace(analysis, layers=renamed).draw(None)))
    assert "new_q · 64→64" in texts and "new attention" in texts and len(others) == len(renamed) - 7


def test_show_writes_the_svg(tmp_path, capsys):
    tiny_config("qwen2").save_pretrained(tmp_path)
    out = tmp_path / "out.svg"
    assert main(["show", str(tmp_path), "--svg", str(out)]) == 0
    texts, adapted, _ = _read(out.read_text())
    assert len(adapted) == 7 and "q_proj" in texts
    assert main(["show", str(tmp_path), "--no-verify", "--svg", str(tmp_path / "no" / "such" / "dir.svg")]) == 2
    assert "cannot write the picture" in capsys.readouterr().err


def test_without_matplotlib_show_works_and_svg_says_what_to_install(tmp_path, capsys, monkeypatch):
    tiny_config("qwen2").save_pretrained(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = tmp_path / "out.svg"
    assert main(["show", str(tmp_path), "--no-verify"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path), "--no-verify", "--svg", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'modscope[draw]'" in err and not out.exists()
    with pytest.raises(ImportError, match=r"modscope\[draw\]"):
        modscope.analyze(tiny_config("qwen2")).draw()
    with pytest.raises(modscope.MissingExtraError):
        modscope.analyze(tiny_config("qwen2")).suggest().draw()


def test_the_notebook_shows_the_block_of_qwen2_with_the_plan_marked():
    import nbformat
    from test_notebook import NOTEBOOK

    outputs = [o for c in nbformat.read(NOTEBOOK, as_version=4).cells for o in c.get("outputs", [])]
    svg = next(o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {}))
    texts, adapted, _ = _read(svg)
    assert len(adapted) == 7 and "Qwen/Qwen2-0.5B · Qwen2ForCausalLM" in texts and "LoRA +46,080" in texts
