"""One way from what a person or a caller gave to a checked run: the page and `/edit` both come through here.

`build_inputs` takes values by name (never by position), so nothing depends on the order of the declared
parameters; `check_inputs` lists every reason the API would refuse them before anything is sent.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import images
from . import mask as masks
from .params import MAX_IMAGES, PARAMS, PROMPT_MAX_CHARS, check_params

EDITOR_IMAGE = "The editor's image"
URL = re.compile(r"^https?://[^\s/]+\S*$")


class InputError(ValueError):
    """The inputs would be refused: nothing was sent and no credits were spent."""


@dataclass
class EditInputs:
    """What was asked for. `images` are uploads in order (the first is edited); `mask` is in the API's form."""

    prompt: str
    images: list[tuple[object, str]] = field(default_factory=list)  # (PIL image, path or FullSize, display name)
    image_urls: list[str] = field(default_factory=list)
    mask: Image.Image | None = None
    params: dict = field(default_factory=dict)
    keep_outside: bool = False
    notes: list[str] = field(default_factory=list)


def build_inputs(*, prompt: object, params: Mapping[str, object], first_image: Image.Image | None = None,
                 files: list | tuple = (), image_urls: object = None, layers: list | None = None,
                 mask_file: str | None = None, mask_colour: str = "auto", invert: bool = False,
                 keep_outside: bool = False) -> EditInputs:
    """The run's inputs: `first_image` (the editor's image) first, then `files` (paths, in order), then
    `image_urls`. The mask is the uploaded `mask_file` if any, else the painted `layers`. Raises InputError
    listing every problem with the values' types; `check_inputs` judges the values themselves."""
    problems = []
    if prompt is not None and not isinstance(prompt, str):
        problems.append(f"The prompt must be text (got {type(prompt).__name__}).")
    urls, url_problem = _url_list(image_urls)
    problems += [url_problem] if url_problem else []
    values, param_problems = coerce_params(params)
    problems += param_problems
    if mask_colour not in masks.EDIT_COLOURS:
        problems.append(f"The mask edit colour must be one of {', '.join(masks.EDIT_COLOURS)} (got {mask_colour!r}).")
    if problems:
        raise InputError(" ".join(problems))

    if first_image is not None and _is_blank(first_image):
        first_image = None  # a blank canvas: the brush was used before any image was uploaded
    if first_image is not None:
        images.check_pixels(first_image.size, EDITOR_IMAGE)  # before its layers are made into a mask
    paths = [str(p) for p in files or []]
    uploads: list[tuple[object, str]] = []
    if first_image is not None:
        uploads.append((first_image, EDITOR_IMAGE))
        if paths and is_in_editor(paths[0], first_image):
            paths = paths[1:]
    uploads += [(p, Path(p).name) for p in paths]

    mask, notes = None, []
    if mask_file:
        if not uploads:
            raise InputError("A mask needs an uploaded first image: upload the image to edit first.")
        source, name = uploads[0]
        mask, notes = uploaded_mask(mask_file, images.image_size(source, name, full=keep_outside), mask_colour)
        if masks.painted_share(mask) == 0:
            notes.append("The uploaded mask marks nothing to edit, so no mask is sent and the model may change "
                         "the whole image.")
            mask = None
    elif layers and first_image is not None:
        mask = masks.mask_from_layers(first_image.size, list(layers))
    if mask is not None and invert:
        mask = masks.invert_mask(mask)
    if mask is not None:
        notes += masks.coverage_warnings(mask)
        if keep_outside and not isinstance(uploads[0][0], Image.Image):
            uploads[0] = (images.FullSize(str(uploads[0][0])), uploads[0][1])  # the original is pasted back
    return EditInputs(prompt=prompt or "", images=uploads, image_urls=urls, mask=mask, params=values,
                      keep_outside=bool(keep_outside), notes=notes)


def coerce_params(values: Mapping[str, object]) -> tuple[dict, list[str]]:
    """The parameters in wire form (by name, defaults for missing ones) and the problems with their types."""
    out, problems = {}, []
    for p in PARAMS:
        value = values.get(p.name, p.default)
        if not p.choices:
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = float(value.strip())
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{p.label} must be a whole number from {p.minimum} to {p.maximum} "
                                f"(got {value!r:.40}).")
                continue
        out[p.name] = p.coerce(value)
    return out, problems


def check_inputs(inputs: EditInputs) -> list[str]:
    """Every reason the API would refuse these inputs, found before anything is sent."""
    problems = []
    prompt = inputs.prompt or ""
    if not prompt.strip():
        problems.append("Write a prompt: say what to change in the image.")
    elif len(prompt) > PROMPT_MAX_CHARS:
        problems.append(f"The prompt has {len(prompt)} characters; the API takes at most {PROMPT_MAX_CHARS}.")
    count = len(inputs.images) + len(inputs.image_urls)
    if count == 0:
        problems.append("Add an image to edit: upload one into the editor, or give an image URL.")
    elif count > MAX_IMAGES:
        problems.append(f"{count} images were given; the API takes at most {MAX_IMAGES}.")
    for url in inputs.image_urls:
        if not URL.match(url):
            problems.append(f"{url[:80]!r} is not an http(s) URL; only http:// and https:// image URLs can be sent.")
    if inputs.mask is not None and not inputs.images:
        problems.append("A mask needs an uploaded first image: upload the image into the editor and paint on it.")
    problems += check_params(inputs.params)
    return problems


def is_in_editor(path: str, background: Image.Image) -> bool:
    """Whether the editor holds this reference image (loaded from the references, perhaps scaled down to the size
    that is sent), so it is sent once only."""
    name = Path(path).name
    longest = max(background.size)
    if images.fitted_size(images.image_size(path, name), longest) != background.size:
        return False
    image = images.fit_longest_side(images.load_image(path, name).image, longest)  # it may be there scaled down
    return np.array_equal(np.asarray(image.convert("RGB")), np.asarray(background.convert("RGB")))


def open_mask_file(path: str, size: tuple[int, int] | None = None) -> Image.Image:
    """The uploaded mask file as an image, no larger than it needs to be for a first image of `size`; a file that
    is none, or is over the limits, is named."""
    return _open_mask(path, size)[0]


def uploaded_mask(path: str, size: tuple[int, int], edit_colour: str = "auto"):
    """A mask file in any common convention, converted to the API's form at `size`, the first image's size as it
    is loaded. A mask of the image's shape is scaled with it without a note; another shape is stretched, and said."""
    img, _ = _open_mask(path, size)
    if img.size != tuple(size) and _same_shape(img.size, size):
        scaled = img.resize(size, Image.Resampling.NEAREST)
        img.close()
        img = scaled
    return masks.mask_from_upload(img, size, edit_colour)


def _open_mask(path: str, size: tuple[int, int] | None) -> tuple[Image.Image, tuple[int, int]]:
    name = Path(path).name
    try:
        return images.decode_as_stored(path, name, at_least=size)
    except images.ImageTooLarge as exc:
        raise masks.MaskError(f"The mask {exc}") from None
    except images.ImageInputError as exc:
        raise masks.MaskError(f"{name} is not an image that can be used as a mask; upload a PNG "
                              "with transparency where to edit, or a black-and-white image.") from exc


def _same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether `a` scaled to `b`'s width or height lands within a pixel of `b`: the same picture at another size."""
    return abs(a[1] * b[0] / a[0] - b[1]) <= 1 and abs(a[0] * b[1] / a[1] - b[0]) <= 1


def _is_blank(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[1] == 0


def _url_list(value: object) -> tuple[list[str], str | None]:
    if value is None:
        return [], None
    if isinstance(value, str):
        return [line.strip() for line in value.split() if line.strip()], None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()], None
    return [], f"image_urls must be a list of http(s) URLs (got {type(value).__name__} {str(value)[:40]!r})."
