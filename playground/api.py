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

from .batch import MAX_RUNS, MAX_VARIATIONS, SWEEPABLE, Cell, build_batch
from .bundle import BundleError
from .feedback import USER_ERRORS, toast, user_message
from .inputs import InputError, build_inputs
from .mask import EDIT_COLOURS
from .params import MAX_IMAGES, PARAMS, PROMPT_MAX_CHARS
from .runner import LiveRun
from .service import Service

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
       P("keep_outside_mask", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool),
       P("password", P.POSITIONAL_OR_KEYWORD, default=None, annotation=str | None),
       P("request", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)],
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
    "    password: The Space's password, when its owner set one for runs on the server's key.",
    f"    mask_edit_colour: In a black-and-white mask, the colour that marks the area to edit: one of "
    f"{', '.join(EDIT_COLOURS)}; default auto (the colour covering the smaller part).",
    "    invert_mask: Edit everything except the mask's edit area.",
    "    keep_outside_mask: Paste the original pixels back outside the mask after the edit.",
    "",
    "Returns:",
    "    The edited image (in the format asked for) and the run's record: run_id, request_id, cost, "
    "remaining_credits, elapsed_s, problems (output checks), mask_notes (about the mask sent) and notes.",
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


def visitor_of(service: Service, request: gr.Request | None) -> str:
    headers = dict(request.headers) if request is not None else {}
    return service.guard.visitor_of(headers, getattr(getattr(request, "client", None), "host", None))


def start_cells(service: Service, a: dict, paths: list[str], mask: str | None, *, typed_key: str | None,
                password: str | None, request: gr.Request | None, variations: object = 1, sweep_param: object = "",
                sweep_values: object = None) -> list[tuple[Cell, LiveRun]]:
    """Start the runs an API caller asked for, through the same builder, guard and service as the page."""
    try:
        inputs = build_inputs(
            prompt=a["prompt"], params={p.name: a[p.name] for p in PARAMS}, files=paths,
            image_urls=a["image_urls"], mask_file=mask, mask_colour=a["mask_edit_colour"],
            invert=bool(a["invert_mask"]), keep_outside=bool(a["keep_outside_mask"]))
        cells = build_batch(inputs, variations, sweep_param, sweep_values)
        key, own = service.key_for(typed_key if isinstance(typed_key, str) else None)
        lives = service.start_many([cell.inputs for cell in cells], api_key=key, own_key=own,
                                   owner=secrets.token_urlsafe(16), visitor=visitor_of(service, request),
                                   password=password if isinstance(password, str) else None)
    except USER_ERRORS as exc:
        raise gr.Error(toast(user_message(exc, "api"))) from None
    return list(zip(cells, lives, strict=True))


def result_file(service: Service, record) -> FileData:
    run = service.store.get(record.run_id)
    return FileData(path=str(run.path(record.result_file)), orig_name=record.result_file)


def run_edit(service: Service, a: dict, paths: list[str], mask: str | None, *, typed_key: str | None,
             password: str | None, request: gr.Request | None):
    """One edit for an API caller; the result file and the record back."""
    [(_, live)] = start_cells(service, a, paths, mask, typed_key=typed_key, password=password, request=request)
    snap = live.result()
    if snap.error is not None:
        raise gr.Error(toast(user_message(snap.error, "api")))
    return result_file(service, snap.outcome), snap.outcome


def _uploads(a: dict) -> tuple[list[str], str | None]:
    try:
        files = a["images"]
        if files is not None and not isinstance(files, list):
            files = [files]
        paths = [upload_path(f, f"Image {i}") for i, f in enumerate(files or [], start=1)]
        return paths, upload_path(a["mask"], "The mask") if a["mask"] else None
    except InputError as exc:
        raise gr.Error(toast(str(exc))) from None


def _typed(function, name: str, signature: inspect.Signature, doc: str):
    function.__signature__ = signature
    function.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    function.__annotations__["return"] = signature.return_annotation
    function.__doc__ = doc
    function.__name__ = name
    return function


def edit_endpoint(service: Service):
    def edit(*args, **kwargs):
        bound = SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        paths, mask = _uploads(a)
        result, record = run_edit(service, a, paths, mask, typed_key=a["api_key"], password=a["password"],
                                  request=a["request"])
        return result, record.to_dict()

    return _typed(edit, "edit", SIGNATURE, DOC)


BATCH_SIGNATURE = SIGNATURE.replace(
    parameters=[*list(SIGNATURE.parameters.values())[:-1],
                P("variations", P.POSITIONAL_OR_KEYWORD, default=1, annotation=int),
                P("sweep_param", P.POSITIONAL_OR_KEYWORD, default="", annotation=Literal[("", *SWEEPABLE)]),
                P("sweep_values", P.POSITIONAL_OR_KEYWORD, default=None, annotation=list[str] | None),
                list(SIGNATURE.parameters.values())[-1]],
    return_annotation=tuple[list[FileData], list[dict]])
BATCH_DOC = DOC.replace("Edit images with", "Several edits at once with", 1).replace("\nReturns:", f"""\
    variations: How many times to run each request, concurrently: 1 to {MAX_VARIATIONS}; default 1.
    sweep_param: Empty for none, or the parameter to sweep: one of {', '.join(SWEEPABLE)}.
    sweep_values: The values of sweep_param to run, one request each (at least two; at most {MAX_RUNS} runs in all).

Returns:""").split("\nReturns:")[0] + """
Returns:
    The edited images of the runs that succeeded, in order, and one record per run in order: the run's record with
    variation, sweep_param, sweep_value and file (the index of its image in the first list), or for a run that
    failed: variation, sweep_param, sweep_value, run_id and error (the others still run).
"""


def batch_endpoint(service: Service):
    def batch(*args, **kwargs):
        bound = BATCH_SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        paths, mask = _uploads(a)
        started = start_cells(service, a, paths, mask, typed_key=a["api_key"], password=a["password"],
                              request=a["request"], variations=a["variations"], sweep_param=a["sweep_param"],
                              sweep_values=a["sweep_values"])
        files, records, errors = [], [], []
        for cell, live in started:
            snap = live.result()
            about = {"variation": cell.variation, "sweep_param": a["sweep_param"] or None,
                     "sweep_value": cell.sweep_value}
            if snap.error is not None:
                errors.append(message := user_message(snap.error, "api"))
                records.append({**about, "run_id": live.run_id, "error": message})
                continue
            records.append({**snap.outcome.to_dict(), **about, "file": len(files)})
            files.append(result_file(service, snap.outcome))
        if not files:
            raise gr.Error(toast(" ".join(dict.fromkeys(errors))))
        # As dicts: Gradio serves (moves to its cache) the FileData it finds in plain data, not models in a list.
        return [f.model_dump() for f in files], records

    return _typed(batch, "batch", BATCH_SIGNATURE, BATCH_DOC)


def bundle_endpoint(service: Service):
    """`/bundle`: one run as a zip."""

    def bundle_run(run_id: str) -> FileData:
        """Download a finished run as a zip: its images as sent, mask, result, heat map, request body (without the
        key), record, ready-to-run code (Python, cURL, gradio_client) and an HTML report that opens offline.

        Args:
            run_id: The run_id in the record /edit returned.

        Returns:
            The zip file.
        """
        # The run_id is an unguessable 22-character token given only to whoever started the run, so holding it
        # is the permission to download the run (runs made through /edit have no owner a caller could prove).
        run = service.store.get(run_id)
        if run is None:
            raise gr.Error("No run with this run_id is kept here: it is malformed, unknown, or expired "
                           "(runs are kept for a limited time). Use the run_id from an edit's record.")
        try:
            path = service.bundle(run)
        except BundleError as exc:
            raise gr.Error(toast(str(exc))) from None
        return FileData(path=str(path), orig_name=f"segmind-edit-{run.run_id}.zip")

    bundle_run.__annotations__ = {"run_id": str, "return": FileData}  # types, not strings, for the API description
    return bundle_run


# The MCP tool: files are exactly FileData (Gradio then turns a URL or a data URI into an upload), the key and
# password come in HTTP headers, never as arguments that clients log, and only the image comes back.
TOOL_SIGNATURE = inspect.Signature(
    [P("prompt", P.POSITIONAL_OR_KEYWORD, annotation=str),
     P("image", P.POSITIONAL_OR_KEYWORD, annotation=FileData),
     P("mask", P.POSITIONAL_OR_KEYWORD, default=None, annotation=FileData),
     P("image_urls", P.POSITIONAL_OR_KEYWORD, default=None, annotation=list[str] | None)]
    + [P(p.name, P.POSITIONAL_OR_KEYWORD, default=p.default, annotation=_param_type(p)) for p in PARAMS]
    + [P("mask_edit_colour", P.POSITIONAL_OR_KEYWORD, default="auto", annotation=Literal[EDIT_COLOURS]),
       P("invert_mask", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool),
       P("keep_outside_mask", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool),
       P("x_segmind_api_key", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Header),
       P("x_playground_password", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Header),
       P("request", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)],
    return_annotation=FileData)

TOOL_DOC = "\n".join([
    "Edit an image with Segmind's GPT Image 1 Edit Mini: describe the change, give the image (an http(s) URL or a "
    "data:image/...;base64 URI), optionally a mask. The Segmind key comes from the X-Segmind-Api-Key header, or "
    "the server's key is used (within its limits; a password goes in the X-Playground-Password header).",
    "",
    "Args:",
    f"    prompt: What to change in the image (at most {PROMPT_MAX_CHARS} characters).",
    "    image: The image to edit: an http(s) URL or a data:image/...;base64 URI (PNG, JPEG or WebP).",
    "    mask: Optional mask in the same forms: transparent (alpha 0) where to edit; a black-and-white image works "
    "too (see mask_edit_colour).",
    "    image_urls: Optional reference image URLs (http or https), sent after the image.",
    *[f"    {p.name}: {_describe(p)}" for p in PARAMS],
    f"    mask_edit_colour: In a black-and-white mask, the colour that marks the area to edit: one of "
    f"{', '.join(EDIT_COLOURS)}; default auto.",
    "    invert_mask: Edit everything except the mask's edit area; default false.",
    "    keep_outside_mask: Paste the original pixels back outside the mask after the edit; default false.",
    "",
    "Returns:",
    "    The edited image.",
])


def edit_image_tool(service: Service):
    def edit_image(*args, **kwargs):
        bound = TOOL_SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        try:
            paths = [upload_path(a["image"], "The image")]
            mask = upload_path(a["mask"], "The mask") if a["mask"] else None
        except InputError as exc:
            raise gr.Error(toast(str(exc))) from None
        result, _ = run_edit(service, a, paths, mask, typed_key=a["x_segmind_api_key"],
                             password=a["x_playground_password"], request=a["request"])
        return result

    return _typed(edit_image, "edit_image", TOOL_SIGNATURE, TOOL_DOC)


MCP_TOOLS = {"edit_image"}


def keep_only_mcp_tools(demo: gr.Blocks) -> None:
    """Gradio offers every API endpoint as an MCP tool; /edit and /bundle take the key or return a zip, so after
    launch only the tools meant for MCP clients are left (Gradio has no per-endpoint switch)."""
    server = getattr(demo, "mcp_server_obj", None)
    if server is None:
        return
    for name in list(server.tool_to_endpoint):
        if name not in MCP_TOOLS:
            server.tool_to_endpoint.pop(name)
