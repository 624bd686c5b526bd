"""The page's values turned into a run: image order, the painted mask, the uploaded mask, presets."""

import numpy as np
import pytest
from PIL import Image

from playground import ui
from playground.params import DEFAULTS, PARAMS
from playground.presets import PRESET_FIELDS, load_presets

PARAM_VALUES = [p.default for p in PARAMS]


def editor(background, painted_box=None):
    layer = Image.new("RGBA", background.size, (0, 0, 0, 0))
    if painted_box:
        layer.paste((255, 0, 255, 255), painted_box)
    return {"background": background.convert("RGBA"), "layers": [layer], "composite": None}


def inputs(editor_value=None, refs=(), urls="", mask_file=None, colour="auto", invert=False, keep=False):
    return ui.ui_inputs("edit", editor_value, [(str(p), None) for p in refs], urls, mask_file, colour, invert, keep,
                        PARAM_VALUES)


@pytest.fixture
def refs(tmp_path):
    paths = []
    for i, size in enumerate([(64, 48), (32, 32)]):
        path = tmp_path / f"ref{i}.png"
        Image.new("RGB", size, (60 * i, 100, 200)).save(path)
        paths.append(path)
    return paths


def test_the_first_reference_loaded_into_the_editor_is_sent_once(refs):
    background = Image.open(refs[0]).convert("RGB")
    run = inputs(editor(background), refs)
    assert [name for _, name in run.images] == [ui.EDITOR_IMAGE, "ref1.png"]


def test_an_image_dropped_into_the_editor_comes_first_and_every_reference_follows(refs):
    run = inputs(editor(Image.new("RGB", (64, 48), "white")), refs, urls="https://example.com/a.png\n\n")
    assert [name for _, name in run.images] == [ui.EDITOR_IMAGE, "ref0.png", "ref1.png"]
    assert run.image_urls == ["https://example.com/a.png"]


def test_without_an_editor_image_the_references_are_the_images(refs):
    run = inputs(None, refs)
    assert [name for _, name in run.images] == ["ref0.png", "ref1.png"] and run.mask is None


def test_the_painted_area_becomes_alpha_zero(refs):
    run = inputs(editor(Image.new("RGB", (64, 48)), (10, 10, 20, 30)))
    alpha = np.asarray(run.mask.getchannel("A"))
    assert alpha[10:30, 10:20].max() == 0 and (alpha == 0).sum() == 200 and run.mask.size == (64, 48)


def test_strokes_on_an_empty_editor_are_not_an_image(refs):
    blank = {"background": Image.new("RGBA", (800, 800), (0, 0, 0, 0)),
             "layers": [Image.new("RGBA", (800, 800), (255, 0, 255, 255))], "composite": None}
    run = inputs(blank, refs)
    assert [name for _, name in run.images] == ["ref0.png", "ref1.png"] and run.mask is None


def test_nothing_painted_sends_no_mask():
    assert inputs(editor(Image.new("RGB", (64, 48)))).mask is None


def test_an_uploaded_mask_replaces_the_painted_one_and_can_be_inverted(tmp_path):
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))
    path = tmp_path / "m.png"
    mask.save(path)
    run = inputs(editor(Image.new("RGB", (64, 48)), (40, 0, 64, 48)), mask_file=str(path), colour="white",
                 invert=True, keep=True)
    alpha = np.asarray(run.mask.getchannel("A"))
    assert alpha[:, :32].min() == 255 and alpha[:, 32:].max() == 0 and run.keep_outside


def test_an_uploaded_mask_without_an_editor_image_is_refused(tmp_path):
    path = tmp_path / "m.png"
    Image.new("L", (8, 8)).save(path)
    with pytest.raises(ui.InputError, match="needs an uploaded first image"):
        inputs(None, mask_file=str(path))


def test_slider_values_reach_the_run_as_integers():
    values = [80.0 if p.name == "output_compression" else p.default for p in PARAMS]
    run = ui.ui_inputs("p", None, [], "https://example.com/a.png", None, "auto", False, False, values)
    assert run.params == {**DEFAULTS, "output_compression": 80} and isinstance(run.params["output_compression"], int)


@pytest.mark.parametrize("preset", load_presets(), ids=lambda p: p.label)
def test_a_preset_sets_its_five_controls_and_shows_its_advice(preset):
    *values, advice = ui.apply_preset(preset)
    assert dict(zip(PRESET_FIELDS, values, strict=True)) == preset.params
    assert preset.advice in advice
