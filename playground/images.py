"""Turn whatever users upload into the smallest faithful image payload for the API.

Uploads are decoded within a budget: a file over the size limit, or an image over the pixel limit, is refused
before any pixel is decoded (Image.open reads only the header), and the rest are decoded only as large as they
are sent: JPEGs straight at a reduced scale, other formats shrunk band by band as soon as they are decoded.
"""

from __future__ import annotations

import base64
import io
import math
import os
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageCms, UnidentifiedImageError

MAX_SIDE_DEFAULT = 2048
MIN_PSNR_DB = 40.0
# Shrink by whole factors to no less than this many times the size sent, then resample the rest with Lanczos:
# the default of Pillow's thumbnail(), whose result is indistinguishable from resampling the full image.
REDUCING_GAP = 2.0

# Never below 90: PSNR alone misses banding in smooth skies. The 92 step matters on detailed photos, where 90
# falls just short of 40 dB and 94 overshoots by ~2 dB at a quarter more bytes.
JPEG_QUALITIES = (90, 92, 94, 97)
# A fast PNG more than this many times larger than the other candidate is not worth optimising: on images with
# more than 256 colours zlib's best level saves 10-25% over its fastest (few-colour images take the palette path).
_PNG_HOPELESS_FACTOR = 3.0
# Optimise anyway unless the sampled estimate of the optimised PNG exceeds the other candidate by this margin.
_PNG_ESTIMATE_MARGIN = 1.1
# No PNG at all when a fast PNG of sampled bands promises this many times the other candidate: past the hopeless
# factor no PNG is chosen anyway, and the estimate is within a fifth of the real size on photos, text and gradients.
_PNG_SKIP_FACTOR = 1.25 * _PNG_HOPELESS_FACTOR
_SQUARES = tuple(v * v for v in range(256))
_DEFAULT_NAME = "image"
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
# Everything PIL may raise while decoding damaged data.
_DECODE_ERRORS = (OSError, EOFError, ValueError, SyntaxError, struct.error, zlib.error, IndexError)
_ORIENTATION = 0x0112
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
_SIDEWAYS = frozenset({5, 6, 7, 8})
# Where an orientation can hide in image.info; dropped once the pixels are upright, so nothing rotates them twice.
_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")
# PNG chunks that may come after the pixel data, so that only decoding tells the orientation.
_PNG_LATE_METADATA = {"exif": b"eXIf", "Raw profile type exif": b"Raw profile type exif",
                      "XML:com.adobe.xmp": b"XML:com.adobe.xmp"}
_UNPREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}
_BAND_PIXELS = 1 << 22  # rows shrunk at a time: the full-size pixels are never copied whole
# Decoding is CPU-bound and Pillow lets go of the GIL: more decodes at once than cores add memory, not speed.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
DECODE_SLOTS = min(4, CORES)
_DECODE_SLOTS = threading.BoundedSemaphore(DECODE_SLOTS)
# Resampling or test-coding a large image is split into bands of rows, one a core (Pillow lets go of the GIL while
# it resamples, encodes and decodes).
_BAND_WORKERS = ThreadPoolExecutor(max_workers=CORES, thread_name_prefix="image-band")
_BAND_MIN_PIXELS = 1 << 20  # a band at least this large: below that, a thread costs more than it saves


class ImageInputError(ValueError):
    """An upload that cannot be used; the message names the file, the problem and what to do."""


class ImageTooLarge(ImageInputError):
    """An upload over the file-size or pixel limit."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded upload, normalised to RGB or RGBA with its EXIF orientation applied.

    `original_size` is the upright size before any scaling; `image` may be smaller (see `load_image`).
    """

    image: Image.Image
    name: str
    notes: tuple[str, ...]
    original_size: tuple[int, int]


@dataclass(frozen=True)
class Limits:
    """What an upload may be: the longest side it is decoded at, its pixels and its file size."""

    max_side: int
    max_pixels: int
    max_file_bytes: int


@dataclass(frozen=True)
class FullSize:
    """A path whose image is wanted at full resolution (within the pixel limit), not only as large as it is sent:
    the first image when "keep everything outside the mask" pastes the original back."""

    path: str

    def __fspath__(self) -> str:
        return self.path


def limits() -> Limits:
    """The limits in force, read from the settings at call time. Pillow's decompression-bomb limit
    (Image.MAX_IMAGE_PIXELS) stays a ceiling on the pixel limit."""
    from .config import load_settings  # config imports segmind, which imports this module

    settings = load_settings()
    pixels = settings.max_pixels
    if Image.MAX_IMAGE_PIXELS:
        pixels = min(pixels, int(Image.MAX_IMAGE_PIXELS))
    return Limits(max_side=settings.max_side, max_pixels=pixels, max_file_bytes=settings.max_file_bytes)


def sniff_format(data: bytes) -> str | None:
    """The image format named by the magic bytes: "png", "jpeg", "webp", "gif", or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def load_image(source: bytes | str | os.PathLike | Image.Image, name: str | None = None, *,
               max_side: int | None = None, full: bool = False) -> LoadedImage:
    """Decode an upload (bytes, a path or a PIL image) into an RGB or RGBA image.

    EXIF orientation is applied, animations give their first frame, exotic modes (CMYK, 16-bit,
    palette, greyscale) are converted, and alpha is kept only when some pixel uses it.

    Bytes and paths are decoded within the limits (`limits()`): a file or image over them is refused before any
    pixel is decoded, and the image comes back only as large as it is sent, its longest side at most `max_side`
    (SEGMIND_MAX_SIDE when not given), with a note when it was scaled. `full=True`, or a `FullSize` source, keeps
    the full resolution. A PIL image (Gradio decodes the editor's itself) is already in memory: it is checked
    against the pixel limit and used at its size.
    Raises ImageInputError with a user-facing message for anything unusable (ImageTooLarge over the limits).
    """
    budget = limits()
    if isinstance(source, Image.Image):
        name = name or _display_name(getattr(source, "filename", "") or "")
        check_pixels(source.size, name, budget.max_pixels)
        with _DECODE_SLOTS:
            return _normalise(source, name, owned=False)
    full = full or isinstance(source, FullSize)
    data, name = _read(source, name, budget.max_file_bytes)
    img = _open(data, name, budget.max_pixels)
    with _DECODE_SLOTS:
        return _normalise(img, name, owned=True, max_side=None if full else max_side or budget.max_side)


def image_size(source: bytes | str | os.PathLike | Image.Image, name: str | None = None, *,
               max_side: int | None = None, full: bool = False) -> tuple[int, int]:
    """The size of `load_image(source, name, max_side=max_side, full=full).image`, read from the header without
    decoding the pixels, with the same refusals."""
    budget = limits()
    if isinstance(source, Image.Image):
        check_pixels(source.size, name or _DEFAULT_NAME, budget.max_pixels)
        return source.size
    full = full or isinstance(source, FullSize)
    data, name = _read(source, name, budget.max_file_bytes)
    with _open(data, name, budget.max_pixels) as img:
        if img.format == "PNG" and any(key not in img.info and marker in data
                                       for key, marker in _PNG_LATE_METADATA.items()):
            return load_image(data, name, max_side=max_side, full=full).image.size
        try:
            # The base class's getexif: PNG's own would decode the pixels to look for metadata after them.
            orientation = int(Image.Image.getexif(img).get(_ORIENTATION, 1))
        except (*_DECODE_ERRORS, KeyError, TypeError):
            orientation = 1
        side = None if full else max_side or budget.max_side
        size = fitted_size(img.size, side) if side else img.size
    return (size[1], size[0]) if orientation in _SIDEWAYS else size


def decode_as_stored(source: str | os.PathLike | bytes, name: str | None = None, *,
                     at_least: tuple[int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """`source` decoded as stored (no orientation or mode changes: a mask keeps its alpha or levels) and its
    stored size. Within the limits like `load_image`; with `at_least`, it is shrunk by a whole factor, nearest
    neighbour so a mask stays binary, while staying at least that large both ways."""
    budget = limits()
    data, name = _read(source, name, budget.max_file_bytes)
    img = _open(data, name, budget.max_pixels)
    stored = img.size
    _first_frame(img, name)
    if at_least and img.format in ("JPEG", "MPO"):
        img.draft(None, at_least)
    with _DECODE_SLOTS:
        _decode(img, name, stored)
        factor = int(min(img.width / at_least[0], img.height / at_least[1])) if at_least else 1
        if factor < 2:
            return img, stored
        small = img.resize((math.ceil(img.width / factor), math.ceil(img.height / factor)),
                           Image.Resampling.NEAREST)
        img.close()
    return small, stored


def check_pixels(size: tuple[int, int], name: str, max_pixels: int | None = None) -> None:
    """Raise ImageTooLarge when an image of `size` is over the pixel limit (`limits()` when not given)."""
    limit = limits().max_pixels if max_pixels is None else max_pixels
    if size[0] * size[1] > limit:
        raise _too_large(name, size, limit)


def fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down so its longest side is at most `max_side`, keeping the aspect ratio."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1 (got {max_side})")
    w, h = size
    if max(w, h) <= max_side:
        return (w, h)
    scale = max_side / max(w, h)
    return (max_side, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), max_side)


def _read(source: bytes | str | os.PathLike, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or _DEFAULT_NAME
    elif isinstance(source, (str, os.PathLike)):
        name = name or _display_name(source)
        try:
            if (size := os.stat(source).st_size) > max_bytes:
                raise _file_too_large(name, size, max_bytes)
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise ImageInputError(f"{name} could not be found; upload it again.") from None
        except OSError as exc:
            raise ImageInputError(f"{name} could not be read ({exc.strerror or exc}); upload it again.") from None
    else:
        raise TypeError(f"load_image takes bytes, a path or a PIL image, not {type(source).__name__}")
    if not data:
        raise ImageInputError(f"{name} is empty (0 bytes); choose a file that contains an image.")
    if len(data) > max_bytes:
        raise _file_too_large(name, len(data), max_bytes)
    return data, name


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """The image, opened lazily: only its header has been read, so its size can be refused before decoding."""
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(name, _declared_size(data), max_pixels) from None
    except UnidentifiedImageError:
        if sniff_format(data):
            raise _damaged(name) from None
        raise ImageInputError(
            f"{name} is not an image PIL can read ({_describe_unreadable(data)}); upload a PNG, JPEG, WebP or GIF."
        ) from None
    except _DECODE_ERRORS:
        raise _damaged(name) from None
    try:
        check_pixels(img.size, name, max_pixels)
    except ImageTooLarge:
        img.close()
        raise
    return img


def _display_name(path: str | os.PathLike) -> str:
    return os.path.basename(os.fspath(path)) or _DEFAULT_NAME


def _megapixels(pixels: float) -> str:
    mp = pixels / 1_000_000
    return f"{mp:,.0f}" if mp >= 100 else f"{mp:.3g}"


def _too_large(name: str, size: tuple[int, int] | None, limit: int) -> ImageTooLarge:
    what = f"{size[0]}×{size[1]} pixels ({_megapixels(size[0] * size[1])} MP)" if size else "its declared size"
    return ImageTooLarge(
        f"{name} is too large: {what}; the limit is {_megapixels(limit)} MP. "
        "Scale it down or crop it, then upload it again."
    )


def _file_too_large(name: str, size: int, limit: int) -> ImageTooLarge:
    mb = 1024 * 1024
    return ImageTooLarge(
        f"{name} is too large: {size / mb:,.1f} MB; files up to {limit / mb:,.0f} MB are accepted. "
        "Save it as a JPEG or scale it down, then upload it again."
    )


def _damaged(name: str) -> ImageInputError:
    return ImageInputError(f"{name} looks truncated or damaged; export or download it again and re-upload.")


def _declared_size(data: bytes) -> tuple[int, int] | None:
    # Image.open refuses huge images before handing them back, so ask the format plugins directly for the
    # header's size (they do not apply the pixel limit) to put the dimensions in the message.
    Image.init()
    prefix = data[:16]
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept and not accept(prefix):
                continue
            with factory(io.BytesIO(data), "") as im:
                return im.size
        except (*_DECODE_ERRORS, KeyError, TypeError, AttributeError):  # any plugin failure means "not this format"
            continue
    return None


def _describe_unreadable(data: bytes) -> str:
    head = data[:64]
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif"):
        return "it is HEIC/AVIF, which is not supported here"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "it is SVG/XML, a vector format"
    sample = data[:4096].decode("utf-8", errors="replace")
    if "\x00" not in sample and sample.count("\ufffd") <= 2:
        return "it is a text file"
    return "unrecognised file format"


def _first_frame(img: Image.Image, name: str) -> bool:
    """Select the first frame; True when there are others."""
    try:
        if getattr(img, "n_frames", 1) <= 1:
            return False
        img.seek(0)
    except _DECODE_ERRORS:
        raise _damaged(name) from None
    return True


def _decode(img: Image.Image, name: str, size: tuple[int, int]) -> None:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(name, size, limits().max_pixels) from None
    except _DECODE_ERRORS:
        raise _damaged(name) from None


def _normalise(img: Image.Image, name: str, *, owned: bool, max_side: int | None = None) -> LoadedImage:
    """`img` decoded, shrunk to fit `max_side`, upright, in RGB or RGBA. When `owned` (opened here, lazily), each
    full-size stage is closed as soon as the next exists; a caller's image is left as it is."""
    notes: list[str] = []
    if _first_frame(img, name):
        notes.append(f"{name} is animated; its first frame is used.")
    stored = img.size
    target = fitted_size(stored, max_side) if owned and max_side else stored
    extent = stored
    if target != stored and img.format in ("JPEG", "MPO"):
        drafted = img.draft(None, (math.ceil(target[0] * REDUCING_GAP), math.ceil(target[1] * REDUCING_GAP)))
        if drafted:
            extent = drafted[1][2:]
    _decode(img, name, stored)
    try:
        orientation = int(img.getexif().get(_ORIENTATION, 1))
    except (*_DECODE_ERRORS, KeyError, TypeError):  # malformed EXIF must not cost the user their image
        orientation = 1
        notes.append(f"{name} has unreadable EXIF data; it is used as stored, without rotation.")
    if target != img.size or extent != img.size:
        img = _shrink(img, target, extent)
    mode = img.mode
    if orientation in _UPRIGHT:
        upright = img.transpose(_UPRIGHT[orientation])
        for key in _ORIENTATION_KEYS:
            upright.info.pop(key, None)
        if owned:
            img.close()
    else:
        upright = img
    if mode == "CMYK":
        notes.append(f"{name} is a CMYK image; it was converted to RGB, colours may shift slightly.")
    try:
        out = _to_rgb_or_rgba(upright)
    except ValueError:
        raise ImageInputError(
            f"{name} uses the {mode} colour mode, which cannot be converted; save it as an RGB PNG or JPEG."
        ) from None
    if out is not upright and (owned or upright is not img):
        upright.close()
    original = (stored[1], stored[0]) if orientation in _SIDEWAYS else stored
    if out.size != original:
        notes.insert(0, f"{name} was scaled from {original[0]}×{original[1]} to {out.width}×{out.height} "
                        "before sending.")
    return LoadedImage(image=out, name=name, notes=tuple(notes), original_size=original)


def _shrink(img: Image.Image, target: tuple[int, int], extent: tuple[float, float]) -> Image.Image:
    """`img` (decoded here) resampled to exactly `target`; `extent` is the picture's extent in its pixels (a JPEG
    draft rounds up). It is first reduced by a whole factor band by band, then closed; Lanczos does the rest."""
    factor = max(1, int(min(extent[0] / target[0], extent[1] / target[1]) / REDUCING_GAP))
    mode = _resample_mode(img)
    if factor > 1:
        small = _reduce_in_bands(img, factor, mode)
        extent = (extent[0] / factor, extent[1] / factor)
    else:
        small = _converted(img, mode)
    if small is not img:
        img.close()
    if small.size != target or extent != target:
        resized = lanczos(small, target, box=(0, 0, *extent))
        small.close()
        small = resized
    return small.convert(_UNPREMULTIPLIED[small.mode]) if small.mode in _UNPREMULTIPLIED else small


def _resample_mode(img: Image.Image) -> str:
    """The mode to shrink `img` in: palette and bilevel images would be sampled, not averaged, a transparent
    colour key would be blurred away, and alpha is premultiplied once for both steps (twice loses the colour of
    nearly transparent pixels)."""
    if img.mode in ("RGBA", "LA"):
        return img.mode[0:-1] + "a"
    if img.mode == "PA" or (img.mode in ("P", "L", "RGB") and img.has_transparency_data):
        return "RGBa"
    if img.mode == "P":
        return "RGB"
    if img.mode == "1":
        return "L"
    if img.mode.startswith("I;16"):
        return "I;16"
    return img.mode


def _converted(img: Image.Image, mode: str) -> Image.Image:
    if img.mode == mode:
        return img
    if mode in _UNPREMULTIPLIED and img.mode != _UNPREMULTIPLIED[mode]:
        img = img.convert(_UNPREMULTIPLIED[mode])  # Pillow premultiplies from RGBA and LA only
    return img.convert(mode)


def _reduce_in_bands(img: Image.Image, factor: int, mode: str) -> Image.Image:
    width, height = img.size
    rows = factor * max(1, _BAND_PIXELS // (width * factor))
    out = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, rows):
        band = img.crop((0, top, width, min(height, top + rows)))
        if mode == "I;16":  # reduce() takes 32-bit integers, not 16-bit ones
            small = band.convert("I").reduce(factor).convert("I;16")
        else:
            small = _converted(band, mode).reduce(factor)
        out.paste(small, (0, top // factor))
    out.info = {k: v for k, v in img.info.items() if k != "transparency" or mode == img.mode}
    return out


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB, or RGBA when some pixel is not fully opaque. Raises ValueError if impossible."""
    icc = img.info.get("icc_profile")
    if img.mode in _WIDE_GREY_MODES:
        img = _wide_grey_to_l(img)
    if img.mode == "P":
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif img.mode != "RGBA" and (img.mode in _ALPHA_MODES or "transparency" in img.info):
        img = img.convert("RGBA")
    if icc:
        img = _colour_managed(img, icc)
    elif img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")
    if img.mode == "RGBA" and not has_transparency(img):
        img = img.convert("RGB")
    return img


def _colour_managed(img: Image.Image, icc: bytes) -> Image.Image:
    # The payload carries no colour profile, so pixels must already be sRGB; without this a CMYK print
    # profile or a Display P3 photo would arrive with wrong colours. A broken profile falls back to PIL's maths.
    target = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if img.mode == target and "srgb" in ImageCms.getProfileDescription(src).lower():
            return img
        out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode=target)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        out = None
    return out if out is not None else img.convert(target)


def _wide_grey_to_l(img: Image.Image) -> Image.Image:
    # PIL's own conversion clips everything above 255 to white; scale instead. 16-bit data maps by its full
    # range (so a dark 16-bit image stays dark), 0..1 floats by 255, anything else is stretched to fit.
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        scaled = a.astype(np.float64) / 257.0
    else:
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if img.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = a * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            scaled = a
        elif lo >= 0.0 and hi <= 65535.0:
            scaled = a / 257.0
        else:
            scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    out = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}
    return out


def has_transparency(img: Image.Image) -> bool:
    """True when at least one pixel is not fully opaque (alpha < 255)."""
    if img.mode == "P" or (img.mode in ("L", "RGB") and "transparency" in img.info):
        if not img.has_transparency_data:
            return False
        img = img.convert("RGBA")
    if img.mode not in _ALPHA_MODES:
        return False
    return img.getchannel("A").getextrema()[0] < 255


def fit_longest_side(img: Image.Image, max_side: int = MAX_SIDE_DEFAULT) -> Image.Image:
    """Scale `img` down with LANCZOS so its longest side is at most `max_side`, keeping the aspect ratio.

    An image that already fits is returned as is (the same object).
    """
    size = fitted_size(img.size, max_side)
    return img if size == img.size else lanczos(img, size)


def lanczos(img: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float] | None = None
            ) -> Image.Image:
    """`img.resize(size, LANCZOS, box=box)`, a large one in bands of rows resampled side by side on the cores.

    Each band is the same resampling of the rows it covers (the box only places the band: the filter reads the
    rows around it from the whole image), so the bands pasted together are the image resampled in one go.
    """
    box = box or (0, 0, *img.size)
    width, height = size
    bands = min(CORES, width * height // _BAND_MIN_PIXELS)
    if bands < 2:
        return img.resize(size, Image.Resampling.LANCZOS, box=box)
    rows_per_unit = (box[3] - box[1]) / height
    edges = [height * i // bands for i in range(bands + 1)]

    def band(i: int) -> Image.Image:
        top, bottom = edges[i], edges[i + 1]
        return img.resize((width, bottom - top), Image.Resampling.LANCZOS,
                          box=(box[0], box[1] + top * rows_per_unit, box[2], box[1] + bottom * rows_per_unit))

    out = Image.new(img.mode, size)
    for top, part in zip(edges, _BAND_WORKERS.map(band, range(bands)), strict=False):
        out.paste(part, (0, top))
    out.info = dict(img.info)
    return out


def encode_for_api(img: Image.Image) -> tuple[bytes, str]:
    """The smallest faithful encoding of `img` as (bytes, mime type).

    Opaque images: the lowest JPEG quality on the ladder reaching MIN_PSNR_DB (4:4:4), or PNG when it is
    smaller or no JPEG is faithful. Images with transparency: lossless WebP or PNG, whichever is smaller.
    """
    img = _to_rgb_or_rgba(img) if img.mode not in ("RGB", "RGBA") else img
    if img.mode == "RGBA" and not has_transparency(img):
        img = img.convert("RGB")
    candidates: list[tuple[bytes, str]] = []
    if img.mode == "RGBA":
        candidates.append((_save(img, "WEBP", lossless=True, exact=True), "image/webp"))
    else:
        jpeg = _faithful_jpeg(img)
        if jpeg is not None:
            candidates.append((jpeg, "image/jpeg"))
    png = _smallest_png(img, min((len(c[0]) for c in candidates), default=None))
    if png is not None:
        candidates.append((png, "image/png"))
    return min(candidates, key=lambda c: len(c[0]))


def encode_as(img: Image.Image, output_format: str, compression: int = 100) -> bytes:
    """`img` in the format the user asked the API for, at that compression (100 = none, lossless WebP)."""
    if output_format == "jpeg":
        return _save(img.convert("RGB"), "JPEG", quality=int(compression), subsampling=0, optimize=True)
    if output_format == "webp":
        return _save(img, "WEBP", **({"lossless": True} if compression >= 100 else {"quality": int(compression)}))
    return _save(img, "PNG", optimize=False)


def quick_png(img: Image.Image) -> bytes:
    """`img` as a PNG written fast (zlib's quickest level), for pictures made only to be looked at (heat maps)."""
    return _save(img, "PNG", compress_level=1)


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    # PNG and JPEG writers copy some metadata from img.info; the API only needs pixels.
    if fmt == "PNG":
        params = {"icc_profile": None, "transparency": None, **params}
    elif fmt == "JPEG":
        params = {"comment": None, **params}
    buf = io.BytesIO()
    try:
        img.save(buf, fmt, **params)
    except OSError:
        if fmt != "JPEG" or not (params.get("optimize") or params.get("progressive")):
            raise
        # Pillow sizes the one-shot buffer of an optimised JPEG at a byte per pixel; very fine detail needs more.
        buf = io.BytesIO()
        img.save(buf, fmt, **{**params, "optimize": False, "progressive": False})
    return buf.getvalue()


def _faithful_jpeg(img: Image.Image) -> bytes | None:
    def final(image: Image.Image, quality: int) -> bytes:
        return _save(image, "JPEG", quality=quality, subsampling=0, optimize=True, progressive=True)

    # Most photos are faithful at the ladder's first quality: its JPEG (the slowest step) is written on another core
    # while that quality is measured, and thrown away in the rare case that it falls short. It writes a copy:
    # Image.save keeps its options on the image object, so two saves of one image at once mix their options.
    first = _BAND_WORKERS.submit(final, img.copy(), JPEG_QUALITIES[0])
    for quality in JPEG_QUALITIES:
        if _jpeg_psnr(img, quality) >= MIN_PSNR_DB:
            return first.result() if quality == JPEG_QUALITIES[0] else final(img, quality)
    return None


def _jpeg_psnr(img: Image.Image, quality: int) -> float:
    """The PSNR of `img` (RGB) coded as a 4:4:4 JPEG at `quality`.

    It is measured on a baseline JPEG, quick to write and to read: the optimised progressive JPEG that is sent holds
    the very same coefficients (only its Huffman tables and scan order differ), so it decodes to the same pixels.
    A large image is coded in bands of whole 8×8 blocks side by side on the cores: 4:4:4 blocks are coded apart
    from each other, so the bands decode to exactly the pixels of the whole.
    """
    bands = max(1, min(CORES, img.width * img.height // _BAND_MIN_PIXELS))
    edges = sorted({img.height * i // bands // 8 * 8 for i in range(bands)} | {img.height})

    def band_sse(i: int) -> int:
        band = img if len(edges) == 2 else img.crop((0, edges[i], img.width, edges[i + 1]))
        with Image.open(io.BytesIO(_save(band, "JPEG", quality=quality, subsampling=0))) as decoded:
            return _sse(band, decoded)

    work = range(len(edges) - 1)
    sse = sum(_BAND_WORKERS.map(band_sse, work) if len(work) > 1 else map(band_sse, work))
    return _psnr_of(sse, img.width * img.height * 3)


def _smallest_png(img: Image.Image, to_beat: int | None) -> bytes | None:
    """The smallest PNG of `img`; None when a sample shows that no PNG can come near `to_beat` bytes."""
    paletted = _exact_palette(img)
    if paletted is not None:
        # Few colours (screenshots, diagrams) fit an exact palette, which PNG stores far more compactly.
        return _save(paletted, "PNG", optimize=True, transparency=paletted.info.get("transparency"))
    if to_beat is not None and (sample := _band_sample(img, 32, min_rows=4)) is not None:
        # Even a fast PNG of a photo takes longer than its JPEG and is many times its size: a thirty-second of the
        # rows, in bands spread over the image, tells that size first.
        quick_estimate = len(_save(sample, "PNG", compress_level=1)) * img.height / sample.height
        if quick_estimate > _PNG_SKIP_FACTOR * to_beat:
            return None
    quick = _save(img, "PNG", compress_level=1)
    # Optimising a big PNG takes seconds; skip it when a sample shows it cannot beat the other candidate.
    if to_beat is not None and len(quick) > to_beat:
        if len(quick) > _PNG_HOPELESS_FACTOR * to_beat:
            return quick
        sample = _band_sample(img, 8)
        if sample is not None and len(quick) * _png_optimise_gain(sample) > _PNG_ESTIMATE_MARGIN * to_beat:
            return quick
    return min(quick, _save(img, "PNG", optimize=True), key=len)


def _band_sample(img: Image.Image, fraction: int, bands: int = 8, min_rows: int = 1) -> Image.Image | None:
    """`bands` bands of rows spread over `img`, a `fraction`-th of it in all, as one image; None for images too
    small to sample. PNG compresses each row against the ones above it, so whole bands of rows estimate it well."""
    w, h = img.size
    band = max(min_rows, h // (fraction * bands))
    if band * bands >= h:
        return None
    sample = Image.new(img.mode, (w, band * bands))
    for i in range(bands):
        top = (h - band) * i // (bands - 1)
        sample.paste(img.crop((0, top, w, top + band)), (0, i * band))
    return sample


def _png_optimise_gain(sample: Image.Image) -> float:
    """Estimated size of an optimised PNG relative to the fastest one, from a `_band_sample`."""
    return len(_save(sample, "PNG", optimize=True)) / len(_save(sample, "PNG", compress_level=1))


def _exact_palette(img: Image.Image) -> Image.Image | None:
    colours = img.getcolors(256)
    if colours is None:
        return None
    bands = len(img.getbands())
    palette = np.array(sorted(c for _, c in colours), dtype=np.uint8).reshape(-1, bands)
    shifts = np.arange(bands - 1, -1, -1, dtype=np.uint32) * 8
    keys = (palette.astype(np.uint32) << shifts).sum(axis=1)
    pixels = (np.asarray(img).astype(np.uint32) << shifts).sum(axis=2)
    indices = np.searchsorted(keys, pixels).astype(np.uint8)
    out = Image.frombytes("P", img.size, indices.tobytes())
    out.putpalette(palette[:, :3].tobytes(), "RGB")
    if bands == 4:
        out.info["transparency"] = palette[:, 3].tobytes()
    return out


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB between two same-sized images, over RGB or RGBA; inf when identical."""
    if a.size != b.size:
        raise ValueError(f"psnr needs images of the same size (got {a.size} and {b.size})")
    mode = "RGBA" if has_transparency(a) or has_transparency(b) else "RGB"
    x = a if a.mode == mode else a.convert(mode)
    y = b if b.mode == mode else b.convert(mode)
    return _psnr_of(_sse(x, y), x.width * x.height * len(mode))


def _sse(x: Image.Image, y: Image.Image) -> int:
    """The sum of squared differences of two images of one mode, exactly, from the histogram of |x - y| that
    Pillow counts in one pass: no array copies of the images."""
    counts = ImageChops.difference(x, y.convert(x.mode) if y.mode != x.mode else y).histogram()
    return sum(count * _SQUARES[i % 256] for i, count in enumerate(counts) if count and i % 256)


def _psnr_of(sse: int, values: int) -> float:
    if sse == 0:
        return float("inf")
    return float(10.0 * math.log10(255.0 * 255.0 * values / sse))


def to_data_url(data: bytes, mime: str) -> str:
    """A base64 `data:` URL for `data` with the given mime type."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
