"""Values from the page or /edit turned into a run's inputs: image order, the painted mask, the uploaded mask, types."""

import numpy as np
import pytest
from PIL import Image

from playground import ui
from playground.inputs import EDITOR_IMAGE, InputError, build_inputs, coerce_params
from playground.params import DEFAULTS, PARAMS
from playground.presets import PRESET_FIELDS, load_presets


def editor(background, painted_box=None):
    layer = Image.new("RGBA", background.size, (0, 0, 0, 0))
    if painted_box:
        layer.paste((255, 0, 255, 255), painted_box)
    return {"background": background.convert("RGBA"), "layers": [layer], "composite": None}


def inputs(editor_value=None, refs=(), urls="", mask_file=None, colour="auto", invert=False, keep=False):
    editor_value = editor_value or {}
    return build_inputs(prompt="edit", params=DEFAULTS, first_image=editor_value.get("background"),
                        layers=editor_value.get("layers"), files=[str(p) for p in refs], image_urls=urls,
                        mask_file=mask_file, mask_colour=colour, invert=invert, keep_outside=keep)


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
    assert [name for _, name in run.images] == [EDITOR_IMAGE, "ref1.png"]


def test_an_image_dropped_into_the_editor_comes_first_and_every_reference_follows(refs):
    run = inputs(editor(Image.new("RGB", (64, 48), "white")), refs, urls="https://example.com/a.png\n\n")
    assert [name for _, name in run.images] == [EDITOR_IMAGE, "ref0.png", "ref1.png"]
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
    with pytest.raises(InputError, match="needs an uploaded first image"):
        inputs(None, mask_file=str(path))


def test_slider_values_reach_the_run_as_integers():
    run = build_inputs(prompt="p", params={"output_compression": 80.0}, image_urls="https://example.com/a.png")
    assert run.params == {**DEFAULTS, "output_compression": 80} and isinstance(run.params["output_compression"], int)


def test_parameters_are_taken_by_name_whatever_their_order():
    values = {p.name: p.choices[-1] if p.choices else 42 for p in reversed(PARAMS)}
    assert build_inputs(prompt="p", params=values).params == {p.name: values[p.name] for p in PARAMS}


@pytest.mark.parametrize("value", ["abc", None, float("nan"), float("inf"), "", [3]])
def test_a_compression_that_is_not_a_number_gets_a_message(value):
    params, problems = coerce_params({"output_compression": value})
    assert "output_compression" not in params or problems or params["output_compression"] is not value
    with pytest.raises(InputError, match="Output compression must be a whole number"):
        build_inputs(prompt="p", params={"output_compression": value})


@pytest.mark.parametrize("urls", [5, {"a": 1}, [1, 2], ["https://a.example/x.png", None]])
def test_image_urls_that_are_not_a_list_of_text_get_a_message(urls):
    with pytest.raises(InputError, match="image_urls must be a list of http"):
        build_inputs(prompt="p", params=DEFAULTS, image_urls=urls)


def test_an_uploaded_mask_that_edits_nothing_is_not_sent_and_says_so(tmp_path):
    path = tmp_path / "black.png"
    Image.new("L", (64, 48), 0).save(path)
    run = inputs(editor(Image.new("RGB", (64, 48))), mask_file=str(path), colour="white")
    assert run.mask is None and any("no mask is sent" in n for n in run.notes)


def test_a_mask_in_the_api_convention_keeps_its_transparency(tmp_path):
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 16, 48))
    path = tmp_path / "api.png"
    mask.save(path)
    alpha = np.asarray(inputs(editor(Image.new("RGB", (64, 48))), mask_file=str(path)).mask.getchannel("A"))
    assert alpha[:, :16].max() == 0 and alpha[:, 16:].min() == 255


def test_a_mask_that_edits_everything_carries_a_warning(tmp_path):
    path = tmp_path / "all.png"
    Image.new("RGBA", (64, 48), (0, 0, 0, 0)).save(path)
    run = inputs(editor(Image.new("RGB", (64, 48))), mask_file=str(path))
    assert any("whole image may change" in n for n in run.notes)


def test_a_file_that_is_not_an_image_as_mask_gets_a_message(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(ui.masks.MaskError, match=r"notes\.png is not an image"):
        inputs(editor(Image.new("RGB", (64, 48))), mask_file=str(path))


@pytest.mark.parametrize("preset", load_presets(), ids=lambda p: p.label)
def test_a_preset_sets_its_five_controls_and_shows_its_advice(preset):
    *values, advice = ui.apply_preset(preset)
    assert dict(zip(PRESET_FIELDS, values, strict=True)) == preset.params
    assert preset.advice in advice
