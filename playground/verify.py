"""Output truth checks: is the returned image in the format, size and transparency that was asked for?"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .images import sniff_format
from .params import PARAMS_BY_NAME

FIXED_SIZES = tuple(choice for choice in PARAMS_BY_NAME["size"].choices if choice != "auto")
FORMAT_ALIASES = {"jpg": "jpeg"}
LIGHT_MIN = 120
NEUTRAL_SPREAD_MAX = 30
TONE_GAP_MIN = 8
TONE_PEAK_MIN_PCT = 2.0
TONE_PAIRS_TRIED = 3
CELL_MIN, CELL_MAX = 2, 160
SAMPLE_STEP = 8
ALTERNATION_MAX = -0.3
CHECKER_AREA_MIN_PCT = 10.0
CHECKER_AGREEMENT_MIN = 0.5
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


@dataclass(frozen=True)
class OutputCheck:
    """What came back: sniffed format, pixel size, alpha and its use, and every way it differs from what was asked."""

    format: str | None
    size: tuple[int, int] | None
    has_alpha: bool
    transparent_share: float
    problems: tuple[str, ...]


def _decode(data: bytes) -> tuple[Image.Image | None, str | None]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy(), None
    except UnidentifiedImageError:
        return None, "no decoder recognises it"
    except DECODE_ERRORS as error:
        return None, str(error) or type(error).__name__


def _header(data: bytes) -> tuple[Image.Image | None, str | None]:
    """The image with only its header read (size, mode, format), or why it cannot be opened."""
    try:
        return Image.open(io.BytesIO(data)), None
    except UnidentifiedImageError:
        return None, "no decoder recognises it"
    except DECODE_ERRORS as error:
        return None, str(error) or type(error).__name__


def _png_intact(data: bytes) -> bool:
    """Every chunk complete with a right checksum, up to IEND: what a cut-short or damaged PNG fails."""
    if not data.startswith(PNG_MAGIC):
        return False
    pos = len(PNG_MAGIC)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data) or zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return False
        if kind == b"IEND":
            return True
        pos = end
    return False


def _looks_complete(data: bytes, fmt: str | None) -> bool:
    """Whether the bytes are whole without decoding their pixels: every chunk of a PNG there with a right checksum.
    False means "decode to find out", never "damaged"; other formats (quick to decode) are always decoded."""
    return fmt == "png" and _png_intact(data)


def _tone_peaks(levels: np.ndarray, total: int) -> list[int]:
    counts = np.bincount(levels, minlength=256).astype(np.float64)
    smooth = np.convolve(counts, np.ones(5) / 5, mode="same")
    padded = np.pad(smooth, 4)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 9)
    is_peak = (smooth >= windows.max(axis=1)) & (smooth * 5 >= total * TONE_PEAK_MIN_PCT / 100)
    peaks = [int(level) for level in np.flatnonzero(is_peak)]
    # Flat tops give runs of equal neighbours; keep one level per run.
    peaks = [level for i, level in enumerate(peaks) if i == 0 or level - peaks[i - 1] > 4]
    return sorted(peaks, key=lambda level: -smooth[level])[:4]


def _cell_size(tones: np.ndarray) -> tuple[int, float]:
    """The shift along axis 1 at which the tones alternate most, and how strongly (-1 = perfectly)."""
    sample = tones[::SAMPLE_STEP]
    shifts = range(CELL_MIN, min(CELL_MAX, sample.shape[1] // 3) + 1)
    scores = []
    for shift in shifts:
        products = sample[:, :-shift] * sample[:, shift:]
        pairs = np.count_nonzero(products)
        scores.append(float(np.sum(products, dtype=np.int64)) / pairs if pairs else 1.0)
    if not scores:
        return 0, 1.0
    # Odd multiples of the cell alternate as well as the cell itself: take the first dip that is nearly the deepest.
    i = next(i for i, score in enumerate(scores) if score <= min(scores) + 0.1)
    while i + 1 < len(scores) and scores[i + 1] < scores[i]:
        i += 1
    return shifts[i], scores[i]


def _is_checker(tones: np.ndarray) -> bool:
    cell_x, score_x = _cell_size(tones)
    cell_y, score_y = _cell_size(tones.T)
    if not cell_x or not cell_y or max(score_x, score_y) > ALTERNATION_MAX:
        return False
    if abs(cell_x - cell_y) > max(1, 0.15 * max(cell_x, cell_y)):
        return False
    here = tones[:-cell_y, :-cell_x]
    right = tones[:-cell_y, cell_x:]
    below = tones[cell_y:, :-cell_x]
    diagonal = tones[cell_y:, cell_x:]
    testable = (here != 0) & (right != 0) & (below != 0) & (diagonal != 0)
    agreeing = testable & (right == -here) & (below == -here) & (diagonal == here)
    agreeing_count = np.count_nonzero(agreeing)
    return (100.0 * agreeing_count / tones.size >= CHECKER_AREA_MIN_PCT
            and agreeing_count >= CHECKER_AGREEMENT_MIN * np.count_nonzero(testable))


def looks_like_checkerboard(img: Image.Image) -> bool:
    """Whether large parts of the image are a painted transparency checkerboard: two light, near-neutral tones
    alternating in square cells on a regular grid."""
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    if min(rgb.shape[:2]) < 4 * CELL_MIN:
        return False
    levels = (rgb @ np.array([299, 587, 114], np.int32) // 1000).astype(np.int16)
    neutral = (rgb.max(axis=2) - rgb.min(axis=2) <= NEUTRAL_SPREAD_MAX) & (levels >= LIGHT_MIN)
    if 100.0 * np.count_nonzero(neutral) / neutral.size < CHECKER_AREA_MIN_PCT:
        return False
    peaks = _tone_peaks(levels[neutral], np.count_nonzero(neutral))
    pairs = sorted(((a, b) for i, a in enumerate(peaks) for b in peaks[i + 1:] if abs(a - b) >= TONE_GAP_MIN),
                   key=lambda pair: peaks.index(pair[0]) + peaks.index(pair[1]))
    for first, second in pairs[:TONE_PAIRS_TRIED]:
        dark, light = sorted((first, second))
        tolerance = max(3, min(16, (light - dark) // 3))
        tones = np.zeros(levels.shape, np.int8)
        tones[neutral & (np.abs(levels - light) <= tolerance)] = 1
        tones[neutral & (np.abs(levels - dark) <= tolerance)] = -1
        if _is_checker(tones):
            return True
    return False


def _size_problem(requested_size: object, size: tuple[int, int]) -> str | None:
    got = f"{size[0]}x{size[1]}"
    if requested_size == "auto":
        if got in FIXED_SIZES:
            return None
        return f"Note: size auto returned {got}, which is none of {', '.join(FIXED_SIZES)}."
    if isinstance(requested_size, str) and requested_size != got:
        return f"Asked for {requested_size}, got {got}."
    return None


def check_output(data: bytes, requested: Mapping[str, object]) -> OutputCheck:
    """Compare the returned image bytes with the parameters they were asked for; never raises on bad bytes.

    `requested` holds the API values of output_format, background and size (any may be missing).
    """
    data = bytes(data or b"")
    fmt = sniff_format(data)
    problems: list[str] = []
    wanted_format = requested.get("output_format")
    wanted_format = FORMAT_ALIASES.get(wanted_format, wanted_format) if isinstance(wanted_format, str) else None
    if fmt and wanted_format and fmt != wanted_format:
        problems.append(f"Asked for {wanted_format}, got {fmt} bytes.")
    # A PNG's pixels (the slowest to decode) are decoded only when its chunks are not whole, or when alpha or a
    # checkerboard needs them: an opaque PNG answers every check from its header and checksums.
    img, error = _header(data) if data else (None, None)
    if img is not None and not _looks_complete(data, fmt):
        img.close()
        img, error = _decode(data)
    if img is None:
        if not data:
            problems.append("No image came back: the response body is empty.")
        elif fmt:
            problems.append(f"The {fmt} bytes are damaged or cut short and cannot be decoded: {error}.")
        else:
            problems.append(f"The returned bytes are not an image ({len(data)} bytes): {error}.")
        return OutputCheck(fmt, None, False, 0.0, tuple(problems))

    with img:
        return _check_image(img, fmt, requested, problems)


def _check_image(img: Image.Image, fmt: str | None, requested: Mapping[str, object],
                 problems: list[str]) -> OutputCheck:
    has_alpha = "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info)
    if has_alpha or requested.get("background") == "transparent":
        try:
            img.load()  # the pixels are needed: read them now, in case they turn out damaged
        except DECODE_ERRORS as error:
            problems.append(f"The {fmt} bytes are damaged or cut short and cannot be decoded: {error}.")
            return OutputCheck(fmt, None, False, 0.0, tuple(problems))
    transparent_share = 0.0
    if has_alpha:
        alpha = img.convert("RGBA").getchannel("A")
        pixels = alpha.width * alpha.height
        transparent_share = 100.0 * (pixels - alpha.histogram()[255]) / pixels

    background = requested.get("background")
    if background == "transparent" and transparent_share == 0.0:
        if looks_like_checkerboard(img):
            problems.append("Asked for a transparent background, but no pixel is transparent: the background is "
                            "a painted checkerboard, not real transparency.")
        elif fmt == "jpeg":
            problems.append("Asked for a transparent background, but no pixel is transparent (jpeg cannot hold "
                            "transparency).")
        else:
            problems.append("Asked for a transparent background, but no pixel is transparent.")
    elif background == "opaque" and transparent_share > 0.0:
        share = f"{transparent_share:.1f}%" if transparent_share >= 0.1 else "under 0.1%"
        problems.append(f"Asked for an opaque background, but {share} of the pixels are transparent.")

    size_problem = _size_problem(requested.get("size"), img.size)
    if size_problem:
        problems.append(size_problem)
    return OutputCheck(fmt, img.size, has_alpha, transparent_share, tuple(problems))
