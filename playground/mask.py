"""Masks in the API's form (alpha 0 = edit, 255 = keep): made from the editor or an upload, checked, shown, applied."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, ImageChops

from .images import lanczos

EDIT_ALPHA = 0
KEEP_ALPHA = 255
LEVEL_THRESHOLD = 128
EDIT_COLOURS = ("auto", "white", "black")
EMPTY_WARNING_PCT = 0.0
FULL_WARNING_PCT = 95.0
GREY_NOTE_PCT = 1.0
NEAR_BLACK_MAX, NEAR_WHITE_MIN = 32, 223
TINT_RGB = (255, 0, 255)
TINT_OPACITY = 0.55
KEPT_BRIGHTNESS = 0.8
CHANGE_THRESHOLD = 24
HEAT_GAIN = 2.0
HEATMAP_MAX_SIDE = 768  # the page shows the heat map 260 px high: run.py makes it no larger than this
HEAT_STOPS = ((0, (0, 0, 0)), (48, (90, 0, 0)), (128, (255, 40, 0)), (200, (255, 200, 0)), (255, (255, 255, 220)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MaskError(ValueError):
    """A mask that cannot be used; the message is meant for the user."""


def _from_edit_area(edit: np.ndarray) -> Image.Image:
    rgba = np.zeros((*edit.shape, 4), np.uint8)
    rgba[..., 3] = np.where(edit, EDIT_ALPHA, KEEP_ALPHA)
    return Image.fromarray(rgba, "RGBA")


BAND_ROWS = 256


def _edit_area(mask: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    if size is not None:
        mask = scale_mask(mask, size)
    return np.asarray(mask.convert("RGBA").getchannel("A")) == EDIT_ALPHA


def _has_alpha(img: Image.Image) -> bool:
    return "A" in img.getbands() or "a" in img.getbands() or (img.mode == "P" and "transparency" in img.info)


def _luminance(img: Image.Image) -> np.ndarray:
    # 16- and 32-bit greyscale PNGs would clip to white in a plain convert("L").
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values * (255.0 / peak), 0, 255)
    return np.asarray(img.convert("L"), dtype=np.float64)


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def mask_from_layers(size: tuple[int, int], layers: list[Image.Image]) -> Image.Image | None:
    """The API mask for the editor's painted layers: alpha 0 wherever any layer is painted, 255 elsewhere.

    `size` is the background's size; a layer of another size is scaled to it. Returns None when nothing is painted.
    """
    width, height = size
    painted = np.zeros((height, width), bool)
    for layer in layers or []:
        if layer is None:
            continue
        alpha = layer.convert("RGBA").getchannel("A")
        if alpha.size != (width, height):
            alpha = alpha.resize((width, height), Image.Resampling.NEAREST)
        painted |= np.asarray(alpha) > 0
    if not painted.any():
        return None
    return _from_edit_area(painted)


def mask_from_upload(
    img: Image.Image, size: tuple[int, int], edit_colour: str = "auto"
) -> tuple[Image.Image, list[str]]:
    """An uploaded mask in any common convention, turned into the API's form at `size`, with notes for the user.

    A mask whose alpha channel is used (some alpha below 255) already follows the API: transparent (alpha < 128) = edit.
    Otherwise it is read as black and white (luminance split at 128): `edit_colour` "white" or "black" names the colour
    to edit, and "auto" takes the colour covering the smaller share. Raises MaskError when "auto" cannot tell.
    """
    if edit_colour not in EDIT_COLOURS:
        raise MaskError(f"The edit colour must be one of {', '.join(EDIT_COLOURS)} (got {edit_colour!r}).")
    notes: list[str] = []
    alpha = np.asarray(img.convert("RGBA").getchannel("A")) if _has_alpha(img) else None
    if alpha is not None and alpha.min() < KEEP_ALPHA:
        edit = alpha < LEVEL_THRESHOLD
        if edit_colour != "auto":
            notes.append(f"The mask has transparency, so its transparent part is the edit area; "
                         f"the choice \"{edit_colour} = edit\" only applies to black-and-white masks.")
        if not edit.any():
            notes.append("The mask is only slightly transparent (no pixel is more than half transparent), "
                         "so nothing counts as the edit area.")
    else:
        levels = _luminance(img)
        white = levels >= LEVEL_THRESHOLD
        grey_pct = 100.0 * np.count_nonzero((levels > NEAR_BLACK_MAX) & (levels < NEAR_WHITE_MIN)) / levels.size
        if grey_pct > GREY_NOTE_PCT:
            notes.append(f"The mask is not purely black and white ({grey_pct:.0f}% of it is grey or coloured); "
                         "it was split at mid-grey.")
        if edit_colour == "white":
            edit = white
        elif edit_colour == "black":
            edit = ~white
        else:
            white_pct = 100.0 * np.count_nonzero(white) / white.size
            if white_pct in (0.0, 100.0):
                colour = "white" if white_pct else "black"
                raise MaskError(f"The mask is all {colour} and has no transparency, so it does not show which part "
                                "to edit. Paint the area to change in white on black (or black on white), "
                                "or use transparency for it.")
            white_is_edit = white_pct <= 50.0
            edit = white if white_is_edit else ~white
            colour, other = ("white", "black") if white_is_edit else ("black", "white")
            share = white_pct if white_is_edit else 100.0 - white_pct
            notes.append(f"The mask is black and white without transparency. Guessed that {colour} marks the area to "
                         f"edit, since it covers the smaller part ({share:.1f}%). If it is the other way round, "
                         f"choose {other} as the edit colour.")
    mask = _from_edit_area(edit)
    if mask.size != tuple(size):
        source_ratio, target_ratio = mask.width / mask.height, size[0] / size[1]
        stretched = " Its shape differs, so it was stretched." if abs(source_ratio / target_ratio - 1) > 0.01 else ""
        notes.append(f"The mask was {_size_text(mask.size)} and was scaled to {_size_text(size)} "
                     f"to match the first image.{stretched}")
        mask = scale_mask(mask, size)
    return mask, notes


def invert_mask(mask: Image.Image) -> Image.Image:
    """The same mask with edit and keep swapped (alpha 0 ↔ 255)."""
    alpha = np.asarray(mask.convert("RGBA").getchannel("A"))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = KEEP_ALPHA - alpha
    return Image.fromarray(rgba, "RGBA")


def painted_share(mask: Image.Image | None) -> float:
    """Percent of the mask's pixels that will be edited (alpha 0); 0.0 without a mask."""
    if mask is None:
        return 0.0
    alpha = _alpha(mask)
    return 100.0 * alpha.histogram()[EDIT_ALPHA] / (alpha.width * alpha.height)


def _alpha(mask: Image.Image) -> Image.Image:
    """The mask's alpha channel as an "L" image, without converting a mask that has one."""
    return mask.getchannel("A") if mask.mode in ("RGBA", "LA") else mask.convert("RGBA").getchannel("A")


def coverage_warnings(mask: Image.Image | None) -> list[str]:
    """Warnings about a mask that edits nothing or nearly everything."""
    share = painted_share(mask)
    if share <= EMPTY_WARNING_PCT:
        return ["Nothing is painted: no mask is sent and the model may change the whole image."]
    if share >= FULL_WARNING_PCT:
        return [f"Nearly all of the image is painted ({share:.0f}%): the whole image may change."]
    return []


def scale_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The mask at `size` (width, height); nearest-neighbour, so a binary mask stays binary."""
    size = (int(size[0]), int(size[1]))
    if mask.mode != "RGBA":
        mask = mask.convert("RGBA")
    elif mask.size == size:
        return mask.copy()
    return mask if mask.size == size else mask.resize(size, Image.Resampling.NEAREST)


def to_png_bytes(mask: Image.Image) -> bytes:
    """The mask as the RGBA PNG that is sent to the API.

    Written here rather than by Pillow, whose adaptive row filters take most of its time on a mask (12 MB of
    pixels at 2048×1536): each row is stored as its difference from the row above (PNG's "Up" filter), which
    leaves a painted mask nearly all zeros, and zlib's run-length mode packs those about as tightly as Pillow's
    best level, in an eighth of its time.
    """
    pixels = np.asarray(mask if mask.mode == "RGBA" else mask.convert("RGBA"))
    height, width = pixels.shape[:2]
    flat = pixels.reshape(height, 4 * width)
    rows = np.empty((height, 1 + 4 * width), np.uint8)
    rows[:, 0] = 2  # the Up filter; the first row's "above" is zeros, so it is stored as it is
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits a channel, RGBA, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _flatten(image: Image.Image) -> np.ndarray:
    if _has_alpha(image):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def preview(image: Image.Image, mask: Image.Image | None) -> Image.Image:
    """The image as the mask will treat it: the edit area tinted magenta, the kept area slightly dimmed."""
    if mask is None:
        return image.copy()
    rgb = _flatten(image)
    edit = _edit_area(mask, image.size)[..., None]
    tinted = rgb * (1 - TINT_OPACITY) + np.array(TINT_RGB, np.float32) * TINT_OPACITY
    shown = np.where(edit, tinted, rgb * KEPT_BRIGHTNESS)
    return Image.fromarray(np.round(shown).astype(np.uint8), "RGB")


def _distance_to(area: np.ndarray, limit: int) -> np.ndarray:
    """Euclidean distance of each pixel to the nearest pixel of `area`: exact up to `limit`, above `limit` beyond it."""
    height, width = area.shape
    far = limit + 1
    rows = np.arange(height)[:, None]
    above = np.maximum.accumulate(np.where(area, rows, -height - far), axis=0)
    below = np.minimum.accumulate(np.where(area, rows, 2 * height + far)[::-1], axis=0)[::-1]
    column = np.minimum(np.minimum(rows - above, below - rows), far).astype(np.float32) ** 2
    squared = column.copy()
    # The nearest area pixel lies within `limit` columns whenever it is within `limit` at all.
    for dx in range(1, min(limit, width - 1) + 1):
        step = np.float32(dx * dx)
        np.minimum(squared[:, dx:], column[:, :-dx] + step, out=squared[:, dx:])
        np.minimum(squared[:, :-dx], column[:, dx:] + step, out=squared[:, :-dx])
    return np.sqrt(squared)


def paste_back(original: Image.Image, edited: Image.Image, mask: Image.Image, feather_px: int = 8) -> Image.Image:
    """The edit inside the mask and the original outside it, at the original's size and mode.

    `edited` is scaled to the original (Lanczos) and `mask` too (nearest). The edit area is exactly the edited
    pixels; the seam is a smooth ramp lying wholly in the kept area, so every pixel 2 * feather_px or more away
    from the edit area is exactly the original.
    """
    if feather_px < 0:
        raise ValueError(f"feather_px must be 0 or more (got {feather_px}).")
    mode = original.mode if original.mode in ("RGB", "RGBA") else ("RGBA" if _has_alpha(original) else "RGB")
    base = original.convert(mode)
    edited = edited.convert(mode)
    if edited.size != base.size:
        edited = lanczos(edited, base.size)
    edit = _edit_area(mask, base.size)
    alpha = np.empty(edit.shape, np.uint8)
    seam = 2 * feather_px
    # In bands of rows: an edit pixel within `seam` of a row lies within `seam` rows of it, so each band needs only
    # `seam` rows around it, and the arrays of a 12 MP image are never all alive at full size at once.
    for top in range(0, edit.shape[0], BAND_ROWS):
        bottom = min(top + BAND_ROWS, edit.shape[0])
        if not feather_px:
            alpha[top:bottom] = edit[top:bottom] * 255
            continue
        lo, hi = max(top - seam, 0), min(bottom + seam, edit.shape[0])
        # A ramp on the exact distance, not a blur: a blur's tail never reaches zero, a ramp ends where the seam does.
        ramp = np.clip(_distance_to(edit[lo:hi], seam)[top - lo:bottom - lo] / seam, 0.0, 1.0)
        alpha[top:bottom] = np.round((1.0 - ramp * ramp * (3.0 - 2.0 * ramp)) * 255)
    # Pillow blends in C, one byte of weight per pixel (a float copy of a 12 MP image per step cost 800 MB).
    alpha = Image.fromarray(alpha, "L")
    return Image.composite(edited, base, alpha)


def _heat_colours() -> np.ndarray:
    levels = np.arange(256)
    stops = np.array([level for level, _ in HEAT_STOPS])
    colours = np.array([rgb for _, rgb in HEAT_STOPS], dtype=np.float64)
    return np.stack([np.interp(levels, stops, colours[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def _flat_rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB, anything transparent laid over white (as the heat map compares what a person sees)."""
    if _has_alpha(image):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _max_pool(channel: Image.Image, factor: int) -> Image.Image:
    """`channel` ("L") shrunk `factor` times each way (rounding up), each pixel the largest of the factor × factor
    it stands for: a change one pixel wide stays as bright as it was."""
    width, height = channel.size
    small_w, small_h = -(-width // factor), -(-height // factor)
    values = np.asarray(channel.crop((0, 0, small_w * factor, small_h * factor)))  # padded with zeros
    pooled = values[::factor, ::factor].copy()
    for dy in range(factor):
        for dx in range(factor):
            np.maximum(pooled, values[dy::factor, dx::factor], out=pooled)
    return Image.fromarray(pooled, "L")


def change_heatmap(original: Image.Image, edited: Image.Image, mask: Image.Image,
                   max_side: int | None = None) -> tuple[Image.Image, float]:
    """What the model changed outside the mask.

    Returns a heat map and the percent of kept-area pixels that changed, measured at the original's size. The heat
    map is at the original's size too, or shrunk by a whole factor to fit `max_side` for display, each of its
    pixels as hot as the most changed pixel it stands for.

    A kept pixel counts as changed when a colour channel differs by more than CHANGE_THRESHOLD (compression noise
    stays below it). The heat map is dark where nothing changed, hot where something did; the edit area is grey.
    """
    before = _flat_rgb(original)
    mode = "RGBA" if _has_alpha(edited) else "RGB"
    if edited.mode != mode:
        edited = edited.convert(mode)
    if edited.size != original.size:
        edited = lanczos(edited, original.size)
    # Pillow's operations on 8-bit images, each one pass in C: the largest difference over the colour channels.
    red, green, blue = ImageChops.difference(_flat_rgb(edited), before).split()
    difference = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    alpha = _alpha(mask)
    if alpha.size != original.size:
        alpha = alpha.resize(original.size, Image.Resampling.NEAREST)
    kept = alpha.point(lambda a: 0 if a == EDIT_ALPHA else 255)
    changed = difference.point(lambda d: 255 if d > CHANGE_THRESHOLD else 0)
    kept_count = kept.histogram()[255]
    changed_count = ImageChops.darker(changed, kept).histogram()[255]
    changed_pct = 100.0 * changed_count / kept_count if kept_count else 0.0

    luminance = before.convert("L")
    factor = -(-max(original.size) // max_side) if max_side else 1
    if factor > 1:
        difference = _max_pool(difference, factor)
        luminance = luminance.reduce(factor)
        kept = kept.resize(difference.size, Image.Resampling.NEAREST)
    colours = _heat_colours()
    gained = [min(255, level * HEAT_GAIN) for level in range(256)]
    heat = Image.merge("RGB", [difference.point([int(colours[int(g), c]) for g in gained]) for c in range(3)])
    backdrop = luminance.point(lambda v: round(v * 0.2))
    neutral = luminance.point(lambda v: round(80.0 + v * 0.15))
    shown = ImageChops.lighter(heat, Image.merge("RGB", (backdrop,) * 3))
    return Image.composite(shown, Image.merge("RGB", (neutral,) * 3), kept), changed_pct
