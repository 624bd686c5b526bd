import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from playground.verify import check_output, looks_like_checkerboard, sniff_format

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


def encode(img, fmt, **options):
    buffer = io.BytesIO()
    img.save(buffer, PIL_FORMATS[fmt], **options)
    return buffer.getvalue()


def asked(output_format="png", background="opaque", size="1024x1024"):
    return {"output_format": output_format, "background": background, "size": size}


def scene(size=(1024, 1024)):
    """An opaque picture: a warm backdrop with a darker disc."""
    img = Image.new("RGB", size, (180, 120, 90))
    ImageDraw.Draw(img).ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(40, 60, 120))
    return img


def checkerboard(size=(1024, 1024), cell=32, tones=(255, 204), subject=True):
    """What a model paints when it fakes transparency: light grey and white squares around the subject."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    light = (x // cell + y // cell) % 2 == 0
    img = Image.fromarray(np.where(light, tones[0], tones[1]).astype(np.uint8), "L").convert("RGB")
    if subject:
        ImageDraw.Draw(img).ellipse((300, 250, 700, 800), fill=(200, 60, 40))
    return img


def cut_out(size=(1024, 1024)):
    """A real transparent result: an opaque subject on a fully transparent background."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((300, 250, 700, 800), fill=(200, 60, 40, 255))
    return img


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif"])
def test_sniff_format(fmt):
    assert sniff_format(encode(scene((32, 32)), fmt)) == fmt


@pytest.mark.parametrize("data", [b"", b"\x00" * 20, b"<html>error</html>", b"RIFF\x00\x00\x00\x00WAVE"])
def test_sniff_format_rejects_what_is_not_an_image(data):
    assert sniff_format(data) is None


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_a_right_output_has_no_problems(fmt):
    check = check_output(encode(scene(), fmt), asked(fmt))
    assert check.problems == ()
    assert check.format == fmt and check.size == (1024, 1024)
    assert check.transparent_share == 0.0


def test_jpeg_bytes_when_png_was_asked():
    check = check_output(encode(scene(), "jpeg"), asked("png"))
    assert check.problems == ("Asked for png, got jpeg bytes.",)


def test_real_transparency_passes():
    check = check_output(encode(cut_out(), "png"), asked("png", "transparent"))
    assert check.problems == ()
    assert check.has_alpha
    assert 50.0 < check.transparent_share < 100.0


def test_real_transparency_in_webp_passes():
    check = check_output(encode(cut_out(), "webp", lossless=True), asked("webp", "transparent"))
    assert check.problems == () and check.has_alpha


def test_transparent_asked_but_opaque_plain_image():
    check = check_output(encode(scene().convert("RGBA"), "png"), asked("png", "transparent"))
    assert check.has_alpha and check.transparent_share == 0.0
    assert len(check.problems) == 1
    assert "no pixel is transparent" in check.problems[0]
    assert "checkerboard" not in check.problems[0]


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_painted_checkerboard_is_named(fmt):
    data = encode(checkerboard(), fmt)
    check = check_output(data, asked(fmt, "transparent"))
    assert any("painted checkerboard, not real transparency" in p for p in check.problems)


def test_soft_uneven_checkerboard_is_still_found():
    y, x = np.mgrid[0:1024, 0:1536].astype(float)
    x = x * 1.03 + 6 * np.sin(y / 90)
    light = (x // 27 + y // 27) % 2 == 0
    rng = np.random.default_rng(0)
    values = np.where(light, 248, 214) + rng.normal(0, 3, light.shape)
    img = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(1))
    assert looks_like_checkerboard(img.convert("RGB"))


@pytest.mark.parametrize(
    "img",
    [
        Image.new("RGB", (1024, 1024), "white"),
        Image.new("RGB", (1024, 1024), (204, 204, 204)),
        scene(),
        checkerboard(tones=(255, 255)),
        checkerboard(tones=(60, 20), subject=False),
    ],
    ids=["white", "grey", "scene", "one-tone", "dark"],
)
def test_plain_images_are_not_taken_for_a_checkerboard(img):
    assert not looks_like_checkerboard(img)


def test_stripes_and_two_tone_noise_are_not_a_checkerboard():
    x = np.arange(1024)
    stripes = np.where((x // 32) % 2 == 0, 255, 204)[None, :].repeat(1024, axis=0)
    halves = np.where(x < 512, 255, 204)[None, :].repeat(1024, axis=0)
    speckle = np.where(np.random.default_rng(1).random((1024, 1024)) < 0.5, 255, 204)
    for values in (stripes, halves, speckle):
        assert not looks_like_checkerboard(Image.fromarray(values.astype(np.uint8), "L"))


def test_wrong_fixed_size():
    check = check_output(encode(scene(), "png"), asked(size="1024x1536"))
    assert check.problems == ("Asked for 1024x1536, got 1024x1024.",)


@pytest.mark.parametrize("size", [(1024, 1024), (1536, 1024), (1024, 1536)])
def test_auto_accepts_each_of_the_three_sizes(size):
    assert check_output(encode(scene(size), "png"), asked(size="auto")).problems == ()


def test_auto_notes_any_other_size():
    check = check_output(encode(scene((1000, 800)), "png"), asked(size="auto"))
    assert len(check.problems) == 1
    assert check.problems[0].startswith("Note:") and "1000x800" in check.problems[0]


def test_garbage_bytes_are_a_problem_not_an_exception():
    check = check_output(b"<html><body>502 Bad Gateway</body></html>", asked())
    assert check.format is None and check.size is None
    assert len(check.problems) == 1 and "not an image" in check.problems[0]
    assert "empty" in check_output(b"", asked()).problems[0]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_truncated_bytes_are_a_problem_not_an_exception(fmt):
    data = encode(scene((256, 256)), fmt)
    check = check_output(data[: len(data) // 2], asked(fmt, size="auto"))
    assert check.format == fmt and check.size is None
    assert any("damaged or cut short" in p for p in check.problems)
