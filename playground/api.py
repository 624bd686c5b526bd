"""`/edit` for gradio_client (and MCP clients): a typed function whose signature is built from the declared
parameters, so every parameter is named, typed with its allowed values, and bound by name."""

from __future__ import annotations

import inspect
import secrets
from pathlib import Path
from typing import Literal

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal

from .inputs import InputError, build_inputs
from .mask import EDIT_COLOURS
from .params import MAX_IMAGES, PARAMS, PROMPT_MAX_CHARS
from .service import Service
from .ui import USER_ERRORS, toast, user_message

P = inspect.Parameter


def _param_type(p):
    return Literal[p.choices] if p.choices else int


SIGNATURE = inspect.Signature(
    [P("prompt", P.POSITIONAL_OR_KEYWORD, annotation=str),
     P("images", P.POSITIONAL_OR_KEYWORD, default=None, annotation=list[FileData] | None),
     P("mask", P.POSITIONAL_OR_KEYWORD, default=None, annotation=FileData | None),
     P("image_urls", P.POSITIONAL_OR_KEYWORD, default=None, annotation=list[str] | None)]
    + [P(p.name, P.POSITIONAL_OR_KEYWORD, default=p.default, annotation=_param_type(p)) for p in PARAMS]
    + [P("api_key", P.POSITIONAL_OR_KEYWORD, default=None, annotation=str | None),
       P("mask_edit_colour", P.POSITIONAL_OR_KEYWORD, default="auto", annotation=Literal[EDIT_COLOURS]),
       P("invert_mask", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool),
       P("keep_outside_mask", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool)],
    return_annotation=tuple[FileData, dict])


def _describe(p) -> str:
    allowed = f"one of {', '.join(p.choices)}" if p.choices else f"a whole number from {p.minimum} to {p.maximum}"
    return f"{p.help} {allowed[0].upper()}{allowed[1:]}; default {p.default}."


DOC = "\n".join([
    "Edit images with Segmind's GPT Image 1 Edit Mini: describe the change, give the image, optionally a mask.",
    "",
    "Args:",
    f"    prompt: What to change in the image (at most {PROMPT_MAX_CHARS} characters).",
    f"    images: Image files (PNG, JPEG, WebP); the first is the image edited, the others are references "
    f"(at most {MAX_IMAGES} images with image_urls).",
    "    mask: Optional mask for the first image: transparent (alpha 0) where to edit; a black-and-white image "
    "works too (see mask_edit_colour).",
    "    image_urls: Extra http(s) image URLs, sent after the files.",
    *[f"    {p.name}: {_describe(p)}" for p in PARAMS],
    "    api_key: Your Segmind API key; leave empty to use the server's key when it has one.",
    f"    mask_edit_colour: In a black-and-white mask, the colour that marks the area to edit: one of "
    f"{', '.join(EDIT_COLOURS)}; default auto (the colour covering the smaller part).",
    "    invert_mask: Edit everything except the mask's edit area.",
    "    keep_outside_mask: Paste the original pixels back outside the mask after the edit.",
    "",
    "Returns:",
    "    The edited image (in the format asked for) and the run's record: run_id, request_id, cost, "
    "remaining_credits, elapsed_s, output checks and notes.",
])


def upload_path(file: object, what: str) -> str:
    """The path of a file this app received (Gradio's upload folder); any other path or a URL is refused."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", file)
    if not isinstance(path, str) or not path:
        raise InputError(f"{what} is not a file; send it with gradio_client's handle_file().")
    if path.startswith(("http://", "https://")):
        raise InputError(f"{what} is a URL; give image URLs in image_urls instead.")
    if not is_in_or_equal(path, get_upload_folder()) or not Path(path).is_file():
        raise InputError(f"{what} was not uploaded to this app; send it with gradio_client's handle_file().")
    return path


def edit_endpoint(service: Service):
    def edit(*args, **kwargs):
        bound = SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        try:
            files = a["images"]
            if files is not None and not isinstance(files, list):
                files = [files]
            paths = [upload_path(f, f"Image {i}") for i, f in enumerate(files or [], start=1)]
            mask = upload_path(a["mask"], "The mask") if a["mask"] else None
            inputs = build_inputs(
                prompt=a["prompt"], params={p.name: a[p.name] for p in PARAMS}, files=paths,
                image_urls=a["image_urls"], mask_file=mask, mask_colour=a["mask_edit_colour"],
                invert=bool(a["invert_mask"]), keep_outside=bool(a["keep_outside_mask"]))
            key, own = service.key_for(a["api_key"] if isinstance(a["api_key"], str) else None)
            live = service.start(inputs, api_key=key, own_key=own, owner=secrets.token_urlsafe(16))
        except USER_ERRORS as exc:
            raise gr.Error(toast(user_message(exc, "api"))) from None
        snap = live.result()
        if snap.error is not None:
            raise gr.Error(toast(user_message(snap.error, "api")))
        record = snap.outcome
        run = service.store.get(record.run_id)
        return FileData(path=str(run.path(record.result_file)), orig_name=record.result_file), record.to_dict()

    edit.__signature__ = SIGNATURE
    edit.__annotations__ = {p.name: p.annotation for p in SIGNATURE.parameters.values()}
    edit.__annotations__["return"] = SIGNATURE.return_annotation
    edit.__doc__ = DOC
    edit.__name__ = "edit"
    return edit
