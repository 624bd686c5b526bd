import io

import numpy as np
import pytest
from PIL import Image

from playground.mask import (
    CHANGE_THRESHOLD,
    FULL_WARNING_PCT,
    MaskError,
    change_heatmap,
    coverage_warnings,
    invert_mask,
    mask_from_layers,
    mask_from_upload,
    painted_share,
    paste_back,
    preview,
    scale_mask,
    to_png_bytes,
)


def alpha_of(mask):
    return np.asarray(mask.getchannel("A"))


def api_mask(edit):
    """An API-form mask (alpha 0 = edit) from a boolean edit map."""
    rgba = np.zeros((*edit.shape, 4), np.uint8)
    rgba[..., 3] = np.where(edit, 0, 255)
    return Image.fromarray(rgba, "RGBA")


def box(size, left, top, right, bottom):
    edit = np.zeros((size[1], size[0]), bool)
    edit[top:bottom, left:right] = True
    return edit


def painted_layer(size, rect, colour=(255, 0, 255, 255)):
    layer = np.zeros((size[1], size[0], 4), np.uint8)
    left, top, right, bottom = rect
    layer[top:bottom, left:right] = colour
    return Image.fromarray(layer, "RGBA")


def bw_image(edit, edit_white=True, mode="L"):
    values = np.where(edit == edit_white, 255, 0).astype(np.uint8)
    return Image.fromarray(values, "L").convert(mode)


def noise(size, seed):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def test_layers_with_nothing_painted_give_no_mask():
    assert mask_from_layers((64, 48), []) is None
    assert mask_from_layers((64, 48), [Image.new("RGBA", (64, 48), (255, 0, 255, 0))]) is None


def test_painted_rectangle_is_exactly_the_edit_area():
    mask = mask_from_layers((64, 48), [painted_layer((64, 48), (10, 5, 30, 20))])
    assert mask.mode == "RGBA" and mask.size == (64, 48)
    assert np.array_equal(alpha_of(mask) == 0, box((64, 48), 10, 5, 30, 20))
    assert set(np.unique(alpha_of(mask))) == {0, 255}
    assert not np.asarray(mask.convert("RGB")).any()


def test_every_layer_counts_and_layers_of_another_size_are_scaled():
    small = painted_layer((32, 24), (0, 0, 8, 6))
    full = painted_layer((64, 48), (40, 30, 50, 40))
    mask = mask_from_layers((64, 48), [small, full])
    assert mask.size == (64, 48)
    assert np.array_equal(alpha_of(mask) == 0, box((64, 48), 0, 0, 16, 12) | box((64, 48), 40, 30, 50, 40))


def test_upload_with_alpha_is_already_in_api_form():
    edit = box((40, 30), 5, 5, 20, 15)
    rgba = np.full((30, 40, 4), 255, np.uint8)
    rgba[..., 3] = np.where(edit, 60, 255)
    mask, notes = mask_from_upload(Image.fromarray(rgba, "RGBA"), (40, 30))
    assert np.array_equal(alpha_of(mask) == 0, edit)
    assert set(np.unique(alpha_of(mask))) == {0, 255}
    assert notes == []


def test_upload_with_unused_alpha_is_read_as_black_and_white():
    edit = box((40, 30), 0, 0, 10, 10)
    mask, _ = mask_from_upload(bw_image(edit, mode="RGBA"), (40, 30), "white")
    assert np.array_equal(alpha_of(mask) == 0, edit)


@pytest.mark.parametrize("edit_colour", ["white", "black"])
def test_upload_black_and_white_with_the_edit_colour_named(edit_colour):
    edit = box((40, 30), 0, 0, 30, 25)
    img = bw_image(edit, edit_white=edit_colour == "white", mode="RGB")
    mask, notes = mask_from_upload(img, (40, 30), edit_colour)
    assert np.array_equal(alpha_of(mask) == 0, edit)
    assert notes == []


@pytest.mark.parametrize("edit_white", [True, False])
def test_auto_takes_the_smaller_colour_as_the_edit_area(edit_white):
    edit = box((40, 30), 10, 10, 20, 20)
    mask, notes = mask_from_upload(bw_image(edit, edit_white), (40, 30))
    assert np.array_equal(alpha_of(mask) == 0, edit)
    colour, other = ("white", "black") if edit_white else ("black", "white")
    assert len(notes) == 1
    assert f"{colour} marks the area to edit" in notes[0] and f"choose {other}" in notes[0]


@pytest.mark.parametrize("value", [0, 255])
def test_auto_cannot_tell_on_a_one_colour_mask(value):
    with pytest.raises(MaskError, match=r"all (white|black)"):
        mask_from_upload(Image.new("L", (40, 30), value), (40, 30))


def test_upload_of_another_size_is_scaled_with_a_note():
    edit = box((512, 512), 0, 0, 256, 512)
    mask, notes = mask_from_upload(bw_image(edit), (1024, 768), "white")
    assert mask.size == (1024, 768)
    assert np.array_equal(alpha_of(mask) == 0, box((1024, 768), 0, 0, 512, 768))
    assert any("was 512×512 and was scaled to 1024×768" in note for note in notes)


def test_invert_round_trip():
    mask = api_mask(box((30, 20), 3, 3, 9, 9))
    inverted = invert_mask(mask)
    assert np.array_equal(alpha_of(inverted), 255 - alpha_of(mask))
    assert np.array_equal(alpha_of(invert_mask(inverted)), alpha_of(mask))


def test_painted_share_and_coverage_warnings():
    assert painted_share(None) == 0.0
    quarter = api_mask(box((100, 100), 0, 0, 50, 50))
    assert painted_share(quarter) == pytest.approx(25.0)
    assert coverage_warnings(quarter) == []
    assert "Nothing is painted" in coverage_warnings(None)[0]
    assert "Nothing is painted" in coverage_warnings(api_mask(np.zeros((10, 10), bool)))[0]
    nearly = api_mask(box((100, 100), 0, 0, 100, 96))
    assert painted_share(nearly) >= FULL_WARNING_PCT
    assert coverage_warnings(nearly) == ["Nearly all of the image is painted (96%): the whole image may change."]


def test_scale_mask_stays_binary_and_png_is_rgba():
    mask = scale_mask(api_mask(box((37, 23), 5, 5, 20, 17)), (100, 61))
    assert mask.size == (100, 61)
    assert set(np.unique(alpha_of(mask))) == {0, 255}
    with Image.open(io.BytesIO(to_png_bytes(mask))) as sent:
        assert sent.format == "PNG" and sent.mode == "RGBA" and sent.size == (100, 61)
        assert np.array_equal(alpha_of(sent), alpha_of(mask))


def test_preview_tints_the_edit_area_and_dims_the_rest():
    image = Image.new("RGB", (60, 40), (100, 150, 200))
    assert preview(image, None).tobytes() == image.tobytes()
    shown = preview(image, api_mask(box((60, 40), 0, 0, 20, 40)))
    assert shown.size == image.size
    r, g, b = shown.getpixel((5, 5))
    assert r > 150 and b > 200 and g < 100
    assert shown.getpixel((50, 20)) == (80, 120, 160)


def test_paste_back_keeps_the_original_beyond_the_seam_and_the_edit_inside():
    original, edited = noise((1500, 1000), 1), noise((1024, 1024), 2)
    edit = box((1500, 1000), 500, 300, 900, 650)
    feather = 8
    result = paste_back(original, edited, api_mask(edit), feather)
    assert result.size == original.size and result.mode == "RGB"
    out, before = np.asarray(result), np.asarray(original)
    after = np.asarray(edited.resize(original.size, Image.Resampling.LANCZOS))
    margin = 2 * feather + 1
    near = box((1500, 1000), 500 - margin, 300 - margin, 900 + margin, 650 + margin)
    assert np.array_equal(out[~near], before[~near])
    assert np.array_equal(out[edit], after[edit])
    seam = near & ~edit
    assert not np.array_equal(out[seam], before[seam])


def test_paste_back_scales_the_mask_and_keeps_rgba():
    original = Image.new("RGBA", (200, 100), (10, 20, 30, 128))
    edited = Image.new("RGB", (64, 64), (250, 240, 230))
    result = paste_back(original, edited, api_mask(box((100, 50), 0, 0, 50, 50)), feather_px=0)
    assert result.mode == "RGBA"
    assert result.getpixel((10, 10)) == (250, 240, 230, 255)
    assert result.getpixel((150, 50)) == (10, 20, 30, 128)


def test_heatmap_shows_no_change_outside_when_only_the_inside_changed():
    original = noise((300, 200), 3)
    edit = box((300, 200), 100, 50, 200, 150)
    edited = np.asarray(original).copy()
    edited[edit] = 255 - edited[edit]
    heat, changed = change_heatmap(original, Image.fromarray(edited), api_mask(edit))
    assert heat.size == original.size and heat.mode == "RGB"
    assert changed == 0.0


def test_heatmap_measures_a_block_changed_outside():
    original = Image.new("RGB", (200, 100), (90, 90, 90))
    edit = box((200, 100), 0, 0, 100, 100)
    edited = np.asarray(original).copy()
    edited[:50, 100:150] += CHANGE_THRESHOLD + 20
    edited[50:, 150:] += CHANGE_THRESHOLD // 2
    heat, changed = change_heatmap(original, Image.fromarray(edited).resize((100, 50)), api_mask(edit))
    assert changed == pytest.approx(25.0, abs=2.0)
    hot, calm = np.asarray(heat)[10, 120], np.asarray(heat)[80, 190]
    assert hot[0] > 100 and hot[0] > calm[0] + 50


def test_upload_notes_explain_what_was_assumed():
    rgba = np.full((30, 40, 4), 255, np.uint8)
    rgba[:10, :10, 3] = 0
    _, notes = mask_from_upload(Image.fromarray(rgba, "RGBA"), (40, 30), "white")
    assert len(notes) == 1 and "transparent part is the edit area" in notes[0]
    grey = np.full((30, 40), 90, np.uint8)
    grey[:, :10] = 250
    mask, notes = mask_from_upload(Image.fromarray(grey, "L"), (40, 30), "white")
    assert np.array_equal(alpha_of(mask) == 0, box((40, 30), 0, 0, 10, 30))
    assert any("not purely black and white" in note for note in notes)
