"""Awkward uploads, generated here, through loading, scaling and encoding."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from playground.images import (
    MAX_SIDE_DEFAULT,
    MIN_PSNR_DB,
    ImageInputError,
    LoadedImage,
    encode_for_api,
    fit_longest_side,
    has_transparency,
    load_image,
    psnr,
    sniff_format,
    to_data_url,
)


def save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def photo_like(w: int = 384, h: int = 256, seed: int = 1) -> Image.Image:
    """Smooth gradients, a few soft shapes and mild sensor noise: what a camera sees, not random static."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 120 * y / h, 90 + 100 * x / w, 200 - 80 * y / h], axis=-1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse([w // 5, h // 4, w // 2, 3 * h // 4], fill=(180, 120, 60))
    draw.polygon([(3 * w // 5, h // 5), (9 * w // 10, h // 2), (2 * w // 3, 4 * h // 5)], fill=(40, 90, 50))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 2.0, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares the given size but carries almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


# --- loading: orientation and colour modes ---------------------------------------------------------------


def test_exif_orientation_6_rotates_and_moves_the_corner():
    img = Image.new("RGB", (60, 30), (255, 255, 255))
    ImageDraw.Draw(img).rectangle([0, 0, 9, 9], fill=(255, 0, 0))  # marks the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    loaded = load_image(save(img, "JPEG", quality=95, exif=exif.tobytes()), name="phone.jpg")
    out = loaded.image
    assert out.size == (30, 60)
    assert loaded.original_size == (30, 60)
    assert out.mode == "RGB"
    r, g, b = out.getpixel((25, 4))  # the stored top-left ends up top-right
    assert r > 200 and g < 60 and b < 60
    assert out.getpixel((4, 4))[1] > 200  # and the top-left is now white
    assert loaded.image.getexif().get(0x0112) in (None, 1)  # not rotated a second time downstream


def test_cmyk_jpeg_comes_back_close_to_the_original_colour():
    colour = (200, 30, 60)
    data = save(Image.new("RGB", (32, 32), colour).convert("CMYK"), "JPEG", quality=95)
    assert decode(data).mode == "CMYK"
    loaded = load_image(data, name="print.jpg")
    assert loaded.image.mode == "RGB"
    assert all(abs(a - b) <= 6 for a, b in zip(loaded.image.getpixel((16, 16)), colour, strict=True))
    assert any("CMYK" in note for note in loaded.notes)


def test_16_bit_png_gradient_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    data = save(Image.fromarray(ramp), "PNG")
    assert decode(data).mode.startswith("I")
    out = np.asarray(load_image(data).image)
    assert out.shape == (16, 256, 3)
    grey = out[0, :, 0]
    assert grey.min() == 0 and grey.max() == 255
    assert abs(int(grey[128]) - 128) <= 2
    assert np.all(np.diff(grey.astype(int)) >= 0)
    assert (grey == 255).mean() < 0.05


@pytest.mark.parametrize(
    ("values", "mode", "expected"),
    [
        (np.array([[0, 1000, 65535]], dtype=np.int32), "I", [0, 4, 255]),
        (np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F", [0, 128, 255]),
        (np.array([[-5.0, 0.0, 5.0]], dtype=np.float32), "F", [0, 128, 255]),
    ],
)
def test_32_bit_greyscale_is_scaled(values, mode, expected):
    img = Image.fromarray(values)
    assert img.mode == mode
    out = load_image(img).image
    assert [out.getpixel((i, 0))[0] for i in range(3)] == expected


def test_greyscale_l_becomes_rgb():
    img = Image.linear_gradient("L").resize((64, 64))
    out = load_image(save(img, "PNG")).image
    assert out.mode == "RGB"
    assert out.getpixel((3, 40)) == (img.getpixel((3, 40)),) * 3


def test_la_keeps_alpha_only_when_used():
    la = Image.new("LA", (8, 8), (100, 255))
    la.putpixel((0, 0), (100, 0))
    out = load_image(save(la, "PNG")).image
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((5, 5)) == (100, 100, 100, 255)
    opaque = load_image(save(Image.new("LA", (8, 8), (100, 255)), "PNG")).image
    assert opaque.mode == "RGB"


def test_rgba_with_full_alpha_becomes_rgb():
    out = load_image(save(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), "PNG")).image
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (1, 2, 3)


def test_palette_becomes_rgb():
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    out = load_image(save(img, "PNG")).image
    assert out.mode == "RGB" and out.getpixel((4, 4)) == (10, 200, 30)


def test_palette_with_transparency_becomes_rgba_with_the_index_clear():
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 10, 200, 30, 250, 250, 250] + [0] * 759)
    for x in range(4):
        img.putpixel((x, 0), 2)
    data = save(img, "PNG", transparency=2)
    out = load_image(data).image
    assert out.mode == "RGBA"
    assert [out.getpixel((x, 0))[3] for x in range(8)] == [0, 0, 0, 0, 255, 255, 255, 255]
    assert out.getpixel((5, 5)) == (10, 200, 30, 255)


def test_bilevel_becomes_rgb():
    img = Image.new("1", (8, 8), 0)
    img.putpixel((1, 1), 1)
    out = load_image(save(img, "PNG")).image
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (255, 255, 255) and out.getpixel((0, 0)) == (0, 0, 0)


def test_animated_gif_gives_the_first_frame_and_a_note():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(data, name="photo.gif")
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((8, 8)) == (255, 0, 0)
    assert loaded.notes == ("photo.gif is animated; its first frame is used.",)


def test_broken_icc_profile_falls_back_and_srgb_is_left_alone():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not a profile" * 20):
        out = load_image(save(Image.new("RGB", (4, 4), (200, 10, 10)), "PNG", icc_profile=icc)).image
        assert out.getpixel((0, 0)) == (200, 10, 10)


def test_accepts_a_path_and_a_pil_image(tmp_path):
    path = tmp_path / "holiday.png"
    Image.new("RGB", (5, 3), (9, 9, 9)).save(path)
    from_path = load_image(path)
    assert isinstance(from_path, LoadedImage)
    assert from_path.name == "holiday.png" and from_path.image.size == (5, 3)
    assert load_image(str(path), name="shown.png").name == "shown.png"
    pil = Image.new("RGBA", (5, 3), (9, 9, 9, 255))
    from_pil = load_image(pil)
    assert from_pil.image.mode == "RGB" and from_pil.name == "image"
    assert pil.mode == "RGBA"  # the caller's image is left alone


# --- loading: refusals -----------------------------------------------------------------------------------


def test_empty_bytes_are_refused():
    with pytest.raises(ImageInputError, match=r"^empty\.png is empty"):
        load_image(b"", name="empty.png")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "nothing.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"^nothing\.jpg is empty"):
        load_image(path)


def test_missing_file_names_only_the_file(tmp_path):
    with pytest.raises(ImageInputError) as err:
        load_image(tmp_path / "gone.png")
    assert str(err.value).startswith("gone.png ") and str(tmp_path) not in str(err.value)


def test_text_file_is_not_an_image():
    with pytest.raises(ImageInputError, match=r"^notes\.txt is not an image PIL can read \(it is a text file\)"):
        load_image(b"just some notes\nnot a picture\n", name="notes.txt")


def test_truncated_jpeg_is_refused():
    data = save(photo_like(), "JPEG", quality=90)
    with pytest.raises(ImageInputError, match=r"^cut\.jpg looks truncated or damaged"):
        load_image(data[: len(data) // 2], name="cut.jpg")


def test_png_with_a_broken_header_is_damaged_not_unknown():
    with pytest.raises(ImageInputError, match=r"^x\.png looks truncated or damaged"):
        load_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, name="x.png")


def test_damaged_png_is_refused():
    data = bytearray(save(photo_like(64, 64), "PNG"))
    data[200:260] = b"\x00" * 60
    with pytest.raises(ImageInputError, match=r"looks truncated or damaged"):
        load_image(bytes(data), name="bad.png")


def test_decompression_bomb_header_is_refused_with_its_size():
    with pytest.raises(ImageInputError, match=r"^bomb\.png is too large: 100000×100000 pixels \(10,000 MP\); the"):
        load_image(png_header(100_000, 100_000), name="bomb.png")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(40, 40), (80, 80)])  # just over the limit (PIL warns) and twice over (PIL raises)
def test_images_over_the_pixel_limit_are_refused(monkeypatch, size):
    data = save(Image.new("RGB", size, (1, 2, 3)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = rf"^big\.png is too large: {size[0]}×{size[1]} pixels .*; the limit is 0\.001 MP"
    with pytest.raises(ImageInputError, match=message):
        load_image(data, name="big.png")
    with pytest.raises(ImageInputError, match="too large"):
        load_image(Image.new("RGB", size), name="big.png")


# --- scaling ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "expected"), [((6000, 1500), (2048, 512)), ((1000, 5000), (410, 2048))])
def test_huge_images_are_scaled_to_the_limit_keeping_aspect(size, expected):
    out = fit_longest_side(Image.new("RGB", size, (50, 60, 70)))
    assert out.size == expected
    assert max(out.size) == MAX_SIDE_DEFAULT


def test_small_images_are_untouched_and_limit_is_configurable():
    img = Image.new("RGB", (2048, 100))
    assert fit_longest_side(img) is img
    assert fit_longest_side(img, 1024).size == (1024, 50)
    with pytest.raises(ValueError):
        fit_longest_side(img, 0)


# --- encoding --------------------------------------------------------------------------------------------


def test_photo_encodes_as_faithful_jpeg():
    img = photo_like()
    data, mime = encode_for_api(img)
    assert mime == "image/jpeg" and sniff_format(data) == "jpeg"
    assert psnr(img, decode(data)) >= MIN_PSNR_DB
    assert len(data) < len(save(img, "PNG", optimize=True))


def test_opaque_image_no_jpeg_can_keep_falls_back_to_lossless_png():
    rng = np.random.default_rng(0)
    harsh = rng.choice([0, 240], size=(64, 64, 3)) + rng.integers(0, 16, size=(64, 64, 3))  # > 256 colours
    img = Image.fromarray(harsh.astype(np.uint8))
    data, mime = encode_for_api(img)
    assert mime == "image/png"
    assert psnr(img, decode(data)) == float("inf")


def test_transparency_survives_encoding():
    img = photo_like(128, 96).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(img.size)
    img.putalpha(alpha)
    data, mime = encode_for_api(img)
    assert mime in ("image/webp", "image/png")
    back = decode(data)
    assert back.mode == "RGBA"
    assert np.array_equal(np.asarray(back), np.asarray(img))
    assert psnr(img, back) == float("inf")


def test_opaque_rgba_is_sent_as_opaque():
    img = photo_like().convert("RGBA")
    assert not has_transparency(img)
    assert encode_for_api(img)[1] == "image/jpeg"


def test_flat_screenshot_picks_png_when_smaller():
    img = Image.new("RGB", (800, 500), (246, 246, 246))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, 799, 40], fill=(32, 33, 36))
    for y in range(70, 480, 22):
        draw.text((20, y), "Settings  ·  Account  ·  Privacy  ·  Notifications", fill=(20, 20, 20))
    draw.rectangle([600, 100, 760, 140], fill=(26, 115, 232))
    data, mime = encode_for_api(img)
    assert mime == "image/png" and sniff_format(data) == "png"
    assert np.array_equal(np.asarray(decode(data).convert("RGB")), np.asarray(img))
    assert len(data) < len(save(img, "JPEG", quality=90, subsampling=0, optimize=True))


def test_data_url_round_trips():
    data, mime = encode_for_api(photo_like(64, 48))
    url = to_data_url(data, mime)
    head, payload = url.split(",", 1)
    assert head == f"data:{mime};base64"
    assert base64.b64decode(payload) == data


def test_psnr():
    a = Image.new("RGB", (10, 10), (100, 100, 100))
    assert psnr(a, a.copy()) == float("inf")
    assert psnr(a, Image.new("RGB", (10, 10), (101, 101, 101))) == pytest.approx(48.1308, abs=1e-3)
    with pytest.raises(ValueError):
        psnr(a, Image.new("RGB", (10, 11)))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0....", "jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a....", "gif"),
        (b"GIF87a....", "gif"),
        (b"hello", None),
        (b"", None),
    ],
)
def test_sniff_format(data, expected):
    assert sniff_format(data) == expected


def test_a_noisy_photo_still_encodes_faithfully():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 600, 3), dtype=np.uint8), "RGB")
    data, _ = encode_for_api(noise)
    with Image.open(io.BytesIO(data)) as decoded:
        assert psnr(noise, decoded) >= MIN_PSNR_DB


@pytest.mark.parametrize("exif", [b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff", b"Exif\x00\x00garbagegarbage"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_photo_with_damaged_exif_still_loads(exif):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue(), name="odd.jpg").image.size == (40, 30)
