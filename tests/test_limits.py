"""Uploads are decoded within a budget: refused from the header above the limits, otherwise only as large as sent."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, JpegImagePlugin
from test_images import png_header

from playground import images
from playground.config import MB, load_settings
from playground.images import FullSize, ImageTooLarge, decode_as_stored, image_size, load_image
from playground.inputs import EDITOR_IMAGE, build_inputs
from playground.mask import MaskError
from playground.params import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
HUGE_MESSAGE = ("huge.png is too large: 9400×9400 pixels (88.4 MP); the limit is 65 MP. "
                "Scale it down or crop it, then upload it again.")
# The peak of one load, in a fresh interpreter: VmHWM, since ru_maxrss carries the parent's peak across exec.
PEAK_SCRIPT = """
import sys
from playground import images

def mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024

images.limits()
start = mb("VmHWM")
try:
    loaded = images.load_image(sys.argv[1])
    print(start, mb("VmHWM"), *loaded.image.size)
except images.ImageTooLarge:
    print(start, mb("VmHWM"), 0, 0)
"""


def save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_png(width: int, height: int, grey: int = 128) -> bytes:
    """A valid one-grey PNG, written row by row so the test never holds its pixels."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    row = b"\x00" + bytes((grey,)) * (3 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None, None]
    return Image.fromarray(np.concatenate(np.broadcast_arrays(x, y, 255 - x), axis=2))


def rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    return exif.tobytes()


def peak_of_loading(path: Path) -> tuple[float, float, tuple[int, int]]:
    """(RSS after imports, peak RSS) in MB and the size loaded, from a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=True)
    start, peak, width, height = done.stdout.split()
    return float(start), float(peak), (int(width), int(height))


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    path.write_bytes(flat_png(9400, 9400))
    return path


@pytest.fixture(scope="module")
def phone_jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("phone") / "IMG_0001.jpg"
    gradient(4000, 3000).save(path, "JPEG", quality=90, exif=rotated_exif())
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")


# --- refused from the header -----------------------------------------------------------------------------


def test_a_9400_square_png_is_refused_from_its_header_with_its_size(huge_png, no_decoding):
    assert huge_png.stat().st_size < 300_000
    for source in (huge_png, str(huge_png), huge_png.read_bytes()):
        with pytest.raises(ImageTooLarge) as caught:
            load_image(source, "huge.png")
        assert str(caught.value) == HUGE_MESSAGE
    with pytest.raises(ImageTooLarge, match="9400×9400 pixels"):
        image_size(huge_png)


@needs_proc
def test_refusing_the_9400_square_png_takes_almost_no_memory(huge_png):
    start, peak, _ = peak_of_loading(huge_png)
    assert peak - start < 30  # decoding it took ~675 MB


def test_a_decompression_bomb_is_refused_with_its_size_before_decoding(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(100_000, 100_000))
    with pytest.raises(ImageTooLarge, match=r"^bomb\.png is too large: 100000×100000 pixels \(10,000 MP\); the "
                                            r"limit is 65 MP\. Scale it down"):
        load_image(path)


def test_pillows_bomb_limit_stays_the_ceiling(monkeypatch):
    assert images.limits().max_pixels == 65_000_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert images.limits().max_pixels == 1000


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_FILE_MB", "1")
    path = tmp_path / "scan.png"
    path.write_bytes(png_header(64, 64) + b"\x00" * (2 * MB))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the file was read"))
    message = r"^scan\.png is too large: 2\.0 MB; files up to 1 MB are accepted\. Save it as a JPEG"
    with pytest.raises(ImageTooLarge, match=message):
        load_image(path)
    with pytest.raises(ImageTooLarge, match=message):
        load_image(png_header(64, 64) + b"\x00" * (2 * MB), "scan.png")


def test_the_limits_are_settings_with_bounds():
    settings = load_settings({})
    assert (settings.max_megapixels, settings.max_pixels, settings.max_file_mb) == (65.0, 65_000_000, 50.0)
    assert settings.max_file_bytes == 50 * 1024 * 1024  # what Gradio's launch(max_file_size="50mb") allows
    custom = load_settings({"PLAYGROUND_MAX_MEGAPIXELS": "24.5", "PLAYGROUND_MAX_FILE_MB": "20"})
    assert (custom.max_pixels, custom.max_file_bytes) == (24_500_000, 20 * MB)
    for name, value in (("PLAYGROUND_MAX_MEGAPIXELS", "90"), ("PLAYGROUND_MAX_MEGAPIXELS", "0"),
                        ("PLAYGROUND_MAX_FILE_MB", "lots")):
        with pytest.raises(ValueError, match=name):
            load_settings({name: value})


# --- decoded only as large as sent ------------------------------------------------------------------------


def test_a_12_mp_phone_jpeg_comes_out_upright_at_max_side(phone_jpeg):
    loaded = load_image(phone_jpeg)
    assert loaded.image.size == (1536, 2048) and loaded.image.mode == "RGB"
    assert loaded.original_size == (3000, 4000)
    assert loaded.notes == ("IMG_0001.jpg was scaled from 3000×4000 to 1536×2048 before sending.",)
    assert image_size(phone_jpeg) == (1536, 2048)
    top_left = loaded.image.getpixel((4, 4))  # stored bottom-left: dark red, bright green, light blue
    assert top_left[0] < 30 and top_left[1] > 220 and top_left[2] > 220


@needs_proc
def test_loading_a_12_mp_jpeg_stays_within_a_memory_bound(phone_jpeg):
    start, peak, size = peak_of_loading(phone_jpeg)
    assert size == (1536, 2048)
    assert peak < 400 and peak - start < 150  # the decode alone is 48 MB (Pillow keeps RGB in 4 bytes a pixel)


def test_a_4000_by_3000_png_within_the_cap_is_reduced_as_lanczos_would(tmp_path):
    original = gradient(4000, 3000)
    path = tmp_path / "scan.png"
    original.save(path, compress_level=1)
    loaded = load_image(path)
    assert loaded.image.size == (2048, 1536) and loaded.original_size == (4000, 3000)
    expected = original.resize((2048, 1536), Image.Resampling.LANCZOS)
    assert images.psnr(loaded.image, expected) > 50


def test_a_large_jpeg_is_decoded_straight_at_a_reduced_scale(monkeypatch):
    data = save(gradient(2400, 1200), "JPEG", quality=95)
    decoded = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    loaded = load_image(data, "wide.jpg", max_side=300)
    assert decoded == [(600, 300)]  # a quarter of each side: at least twice the 300×150 sent
    assert loaded.image.size == (300, 150) and loaded.original_size == (2400, 1200)
    expected = gradient(2400, 1200).resize((300, 150), Image.Resampling.LANCZOS)
    assert images.psnr(loaded.image, expected) > 35


@pytest.mark.parametrize(
    ("mode", "make", "expected"),
    [
        ("RGB", lambda: Image.new("RGB", (9000, 300), (10, 200, 30)), (10, 200, 30)),
        ("RGBA", lambda: Image.new("RGBA", (9000, 300), (10, 200, 30, 100)), (10, 200, 30, 100)),
        ("LA", lambda: Image.new("LA", (9000, 300), (90, 60)), (90, 90, 90, 60)),
        ("P", lambda: Image.new("RGB", (9000, 300), (10, 200, 30)).quantize(4), (10, 200, 30)),
        ("1", lambda: Image.new("1", (9000, 300), 1), (255, 255, 255)),
        ("I;16", lambda: Image.new("I;16", (9000, 300), 257 * 40), (40, 40, 40)),
        ("CMYK", lambda: Image.new("CMYK", (9000, 300), (0, 0, 0, 0)), (255, 255, 255)),
    ],
)
def test_wide_images_of_every_mode_are_shrunk_band_by_band(mode, make, expected):
    img = make()
    assert img.mode == mode
    loaded = load_image(save(img, "TIFF" if mode == "CMYK" else "PNG"), f"wide-{mode}")
    assert loaded.image.size == (2048, 68)
    pixel = loaded.image.getpixel((1000, 34))
    assert len(pixel) == len(expected)
    assert all(abs(a - b) <= 2 for a, b in zip(pixel, expected, strict=True))  # premultiplied alpha rounds


def test_a_palette_image_keeps_its_transparent_colour():
    img = Image.new("P", (9000, 300), 1)
    img.putpalette([0, 0, 0, 250, 20, 20] + [0] * 762)
    img.paste(0, (0, 0, 4500, 300))
    out = load_image(save(img, "PNG", transparency=0), "half.png").image
    assert out.mode == "RGBA" and out.size == (2048, 68)
    assert out.getpixel((100, 34))[3] == 0 and out.getpixel((2000, 34)) == (250, 20, 20, 255)


def test_the_size_is_known_before_decoding_even_for_an_orientation_after_the_pixels():
    data = save(gradient(3000, 1000), "PNG", compress_level=1, exif=rotated_exif())
    parts, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        parts.append(data[pos:pos + 12 + length])
        pos += 12 + length
    exif = [p for p in parts if p[4:8] == b"eXIf"]
    rest = [p for p in parts if p[4:8] not in (b"eXIf", b"IEND")]
    late = data[:8] + b"".join(rest + exif + [parts[-1]])  # eXIf after the pixels, as some tools write it
    for png in (data, late):
        assert image_size(png) == load_image(png).image.size == (683, 2048)
        assert image_size(png, full=True) == (1000, 3000)


# --- masks, the editor's image, the paste-back ----------------------------------------------------------


def test_a_huge_mask_is_refused_with_the_same_message(tmp_path, huge_png, no_decoding):
    image = tmp_path / "photo.png"
    image.write_bytes(png_header(600, 400))
    with pytest.raises(MaskError, match=r"^The mask huge\.png is too large: 9400×9400 pixels \(88\.4 MP\); the "
                                        r"limit is 65 MP\."):
        build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(huge_png))


def test_a_mask_bomb_is_refused_with_its_size(tmp_path):
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    gradient(60, 40).save(image)
    mask.write_bytes(png_header(100_000, 100_000))
    with pytest.raises(MaskError, match=r"100000×100000 pixels \(10,000 MP\)"):
        build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(mask))


def test_a_large_mask_is_decoded_only_as_large_as_the_image_needs(tmp_path):
    image, path = tmp_path / "photo.png", tmp_path / "mask.png"
    gradient(600, 400).save(image)
    mask = Image.new("L", (6000, 4000), 0)
    mask.paste(255, (0, 0, 3000, 4000))
    mask.save(path)
    decoded, stored = decode_as_stored(path, at_least=(600, 400))
    assert (decoded.size, stored) == ((600, 400), (6000, 4000))
    run = build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(path), mask_colour="white")
    alpha = np.asarray(run.mask.getchannel("A"))
    assert run.mask.size == (600, 400) and alpha[:, :300].max() == 0 and alpha[:, 300:].min() == 255
    assert not any("scaled" in note for note in run.notes)


def test_a_mask_of_another_shape_is_still_stretched_and_said(tmp_path):
    image, path = tmp_path / "photo.png", tmp_path / "mask.png"
    gradient(600, 400).save(image)
    Image.new("RGBA", (500, 500), (0, 0, 0, 0)).save(path)
    run = build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(path))
    assert run.mask.size == (600, 400)
    assert any("was 500×500 and was scaled to 600×400" in note and "stretched" in note for note in run.notes)


def test_keep_outside_keeps_the_first_image_and_its_mask_at_full_resolution(tmp_path):
    image, path = tmp_path / "photo.png", tmp_path / "mask.png"
    gradient(3000, 2000).save(image, compress_level=1)
    mask = Image.new("RGBA", (3000, 2000), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (1500, 1000, 3000, 2000))
    mask.save(path)
    kept = build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(path), keep_outside=True)
    source, name = kept.images[0]
    assert isinstance(source, FullSize) and name == "photo.png" and kept.mask.size == (3000, 2000)
    assert load_image(source, name).image.size == (3000, 2000)
    sent = build_inputs(prompt="edit", params=DEFAULTS, files=[str(image)], mask_file=str(path))
    assert sent.images[0][0] == str(image) and sent.mask.size == (2048, 1365)
    assert load_image(*sent.images[0]).image.size == (2048, 1365)


def test_the_editors_image_over_the_limit_is_refused_before_its_mask_is_made(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_MEGAPIXELS", "1")
    background = Image.new("RGBA", (1100, 1000), (9, 9, 9, 255))
    layer = Image.new("RGBA", (1100, 1000), (255, 0, 255, 255))
    monkeypatch.setattr("playground.mask.mask_from_layers", lambda *a: pytest.fail("the mask was made"))
    with pytest.raises(ImageTooLarge, match=rf"^{EDITOR_IMAGE} is too large: 1100×1000 pixels \(1\.1 MP\); the "
                                            r"limit is 1 MP\."):
        build_inputs(prompt="edit", params=DEFAULTS, first_image=background, layers=[layer])


def test_a_scaled_reference_loaded_into_the_editor_is_still_sent_once(tmp_path):
    path = tmp_path / "ref.png"
    gradient(3000, 2000).save(path, compress_level=1)
    background = load_image(path).image.convert("RGBA")  # what the page puts into the editor
    assert background.size == (2048, 1365)
    run = build_inputs(prompt="edit", params=DEFAULTS, first_image=background, files=[str(path)])
    assert [name for _, name in run.images] == [EDITOR_IMAGE]
