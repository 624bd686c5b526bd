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
    images: list[tuple[object, str]] = field(default_factory=list)  # (PIL image or path, display name)
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
        mask, notes = uploaded_mask(mask_file, _image_size(uploads[0]), mask_colour)
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
    """Whether the editor holds this reference image (loaded from the references), so it is sent once only."""
    image = images.load_image(path, Path(path).name).image
    return image.size == background.size and np.array_equal(np.asarray(image.convert("RGB")),
                                                             np.asarray(background.convert("RGB")))


def uploaded_mask(path: str, size: tuple[int, int], edit_colour: str = "auto"):
    """A mask file in any common convention, converted to the API's form at the first image's size."""
    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise masks.MaskError(f"{Path(path).name} is not an image that can be used as a mask; upload a PNG "
                              "with transparency where to edit, or a black-and-white image.") from exc
    return masks.mask_from_upload(img, size, edit_colour)


def _image_size(upload: tuple[object, str]) -> tuple[int, int]:
    source, name = upload
    if isinstance(source, Image.Image):
        return source.size
    return images.load_image(source, name).image.size


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
