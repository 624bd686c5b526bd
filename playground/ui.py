"""Event handlers: they turn component values into `EditInputs`, call the run, and turn failures into messages.

The only module besides app.py that knows about Gradio.
"""

from __future__ import annotations

import html
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from . import errors, images, segmind
from . import mask as masks
from .config import load_settings, server_api_key
from .errors import SegmindError
from .params import PARAMS, PARAMS_BY_NAME
from .presets import PRESET_FIELDS, Preset
from .run import EditInputs, InputError, RunRecord, resume_job, run_edit

log = logging.getLogger(__name__)
USER_ERRORS = (InputError, SegmindError, images.ImageInputError, masks.MaskError)
EDITOR_IMAGE = "The editor's image"
PHASES = {"preparing": "Preparing the images", "submitting": "Sending", "queued": "Queued at Segmind",
          "processing": "Processing", "downloading": "Downloading the result"}


def resolve_key(typed: str | None) -> str:
    """The visitor's own key when typed, else the server owner's; empty when there is neither."""
    return (typed or "").strip() or server_api_key() or ""


def key_status():
    """On page load: say whether the server's key is in use; the key itself never leaves the server."""
    if server_api_key():
        return (gr.update(placeholder="Optional: the server's key is in use", info="Optional."),
                "The server's Segmind key is in use. Paste your own key to use your credits instead.")
    return (gr.update(placeholder="SG_…", info="Required. Used for this page's requests only; never stored."),
            "Paste your Segmind API key to run edits (get one from your Segmind console).")


def apply_preset(preset: Preset) -> list:
    """The five controls a preset sets, and its advice; prompt, images, mask and moderation are left alone."""
    return [preset.params[name] for name in PRESET_FIELDS] + [f"**{preset.label}**: {preset.advice}"]


def keep_transparency_possible(background: str, output_format: str):
    """Choosing transparent while jpeg is selected switches the format to png, and says so."""
    if background == "transparent" and output_format == "jpeg":
        gr.Info("jpeg cannot be transparent, so Output format was switched to png.")
        return "png"
    return gr.skip()


def load_first_ref(refs, editor_value):
    """Choosing reference images loads the first one into an empty editor, ready to paint a mask on."""
    paths = _gallery_paths(refs)
    if not paths or (editor_value and editor_value.get("background") is not None):
        return gr.skip()
    try:
        return images.load_image(paths[0], Path(paths[0]).name).image
    except images.ImageInputError as exc:
        raise gr.Error(str(exc)) from None


def is_in_editor(path: str, background: Image.Image) -> bool:
    """Whether the editor holds this reference image (loaded by `load_first_ref`), so it is sent once only."""
    image = images.load_image(path, Path(path).name).image
    return image.size == background.size and np.array_equal(np.asarray(image.convert("RGB")),
                                                             np.asarray(background.convert("RGB")))


def _gallery_paths(refs) -> list[str]:
    return [str(item[0] if isinstance(item, (list, tuple)) else item) for item in refs or []]


def ui_inputs(prompt, editor_value, refs, urls_text, mask_file, mask_colour, invert, keep_outside,
              param_values) -> EditInputs:
    """The page's inputs in run form: the editor's image first, then the reference uploads, then typed URLs.
    An uploaded mask file takes the place of the painted one."""
    background = (editor_value or {}).get("background")
    if background is not None and background.mode == "RGBA" and background.getchannel("A").getextrema()[1] == 0:
        background = None  # a blank canvas: the brush was used before any image was uploaded
    paths = _gallery_paths(refs)
    uploads: list[tuple[object, str]] = []
    mask, notes = None, []
    if background is not None:
        uploads.append((background, EDITOR_IMAGE))
        if paths and is_in_editor(paths[0], background):
            paths = paths[1:]
        if mask_file:
            mask, notes = uploaded_mask(mask_file, background.size, mask_colour)
        else:
            mask = masks.mask_from_layers(background.size, list(editor_value.get("layers") or []))
    elif mask_file:
        raise InputError("A mask needs an uploaded first image: upload the image into the editor first.")
    if mask is not None and invert:
        mask = masks.invert_mask(mask)
    uploads += [(p, Path(p).name) for p in paths]
    urls = [line.strip() for line in (urls_text or "").splitlines() if line.strip()]
    params = {p.name: p.coerce(v) for p, v in zip(PARAMS, param_values, strict=True)}
    return EditInputs(prompt=prompt or "", images=uploads, image_urls=urls, mask=mask, params=params,
                      keep_outside=bool(keep_outside), notes=notes)


UI_INPUT_COUNT = len(inspect.signature(ui_inputs).parameters) - 1  # the page's inputs before the parameters


def uploaded_mask(path: str, size: tuple[int, int], edit_colour: str = "auto"):
    """A mask file in any common convention, converted to the API's form at the first image's size."""
    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, ValueError) as exc:
        raise masks.MaskError(f"{Path(path).name} is not an image that can be used as a mask.") from exc
    return masks.mask_from_upload(img, size, edit_colour)


def mask_view(inputs: EditInputs):
    """The mask that will be sent, over the first image, with its painted share and warnings."""
    if not inputs.images or inputs.images[0][1] != EDITOR_IMAGE:
        return gr.update(value=None, visible=False), "Upload an image into the editor and paint the area to change."
    first = inputs.images[0][0]
    lines = [f"Painted: **{masks.painted_share(inputs.mask):.1f}%** of the image."] if inputs.mask else []
    lines += [f"**Warning:** {w}" for w in masks.coverage_warnings(inputs.mask)]
    lines += [f"Note: {n}" for n in inputs.notes]
    return gr.update(value=masks.preview(first, inputs.mask), visible=True), "\n\n".join(lines)


def show_mask(*values):
    try:
        return mask_view(ui_inputs(*values[:UI_INPUT_COUNT], values[UI_INPUT_COUNT:]))
    except USER_ERRORS as exc:
        raise gr.Error(str(exc)) from None


def progress_html(phase: str, elapsed_s: float, request_id: str | None = None) -> str:
    share = min(elapsed_s / segmind.TYPICAL_DURATION_S, 0.97)
    label = PHASES.get(phase, phase)
    rid = f" · request <code>{html.escape(request_id)}</code>" if request_id else ""
    return (f"<div class='run-progress'><div class='bar'><div style='width:{share * 100:.1f}%'></div></div>"
            f"<span><b>{label}</b> · {elapsed_s:.0f} s of a typical {segmind.TYPICAL_DURATION_S:.0f} s{rid}"
            "</span></div>")


def result_markdown(record: RunRecord) -> str:
    facts = [f"**Done in {record.elapsed_s:.1f} s**"]
    if record.output_format and record.output_size:
        facts.append(f"{record.output_format} {record.output_size[0]}×{record.output_size[1]}")
    if record.cost is not None:
        facts.append(f"cost {record.cost:g} credits")
    if record.remaining_credits is not None:
        facts.append(f"remaining credits **{record.remaining_credits:g}**")
    if record.request_id:
        facts.append(f"request `{record.request_id}`")
    lines = [" · ".join(facts)]
    if record.changed_outside_pct is not None:
        lines.append(f"The model changed **{record.changed_outside_pct:.1f}%** of the area outside the mask"
                     + ("; the original pixels were pasted back there." if record.pasted_back
                        else " (see the heat map; tick *Keep everything outside the mask* to paste it back)."))
    lines += [f"**Check:** {p}" for p in record.problems]
    lines += [f"Note: {n}" for n in record.notes]
    return "\n\n".join(lines)


def _in_thread(work: Callable[[Callable, Callable], RunRecord]) -> Iterator[tuple[str, object]]:
    """Run `work` in a worker thread and yield its status reports, plus a tick every second for the clock."""
    events: queue.Queue = queue.Queue()

    def target():
        try:
            events.put(("done", work(lambda s: events.put(("status", s)), lambda j: events.put(("submitted", j)))))
        except Exception as exc:  # handed to the page, which shows it; the worker must not die silently
            events.put(("error", exc))

    threading.Thread(target=target, daemon=True).start()
    while True:
        try:
            kind, value = events.get(timeout=1.0)
        except queue.Empty:
            kind, value = "tick", None
        yield kind, value
        if kind in ("done", "error"):
            return


def user_message(exc: Exception) -> str:
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    log.error("Unexpected failure in a run: %s", type(exc).__name__, exc_info=exc)
    return f"Something unexpected went wrong ({type(exc).__name__}). Nothing was changed; try again."


KEEP_JOB_ON = (errors.Interrupted, errors.Stopped, errors.DeadlineExceeded)


def follow_run(work, stop: threading.Event, outputs: dict, saved_job: dict | None = None, sync: bool = False):
    """Drive a run in the background and stream its progress, the job to keep in the browser, and the result.

    The job stays in the browser while Segmind may still finish it, so Resume (or a reload) can fetch it.
    """
    progress, result, download, info, job_state, resume_button = (outputs[k] for k in (
        "progress", "result", "download", "info", "job_state", "resume_button"))
    started = time.time()
    phase, request_id = "preparing", (saved_job or {}).get("request_id")
    try:
        for kind, value in _in_thread(work):
            if kind == "status":
                phase, request_id = value.phase, value.request_id or request_id
            elif kind == "submitted":
                request_id = value.request_id
                yield {job_state: {**(saved_job or {}), "request_id": value.request_id,
                                   "submitted_at": value.submitted_at}}
            elif kind == "error":
                keep = request_id is not None and isinstance(value, KEEP_JOB_ON)
                yield {progress: "", resume_button: gr.update(visible=keep), **({} if keep else {job_state: None})}
                if isinstance(value, errors.Stopped):
                    gr.Warning(str(value))
                    return
                raise gr.Error(user_message(value), duration=None)
            elif kind == "done":
                yield {progress: "", result: value.output_path, download: gr.update(value=value.output_path,
                       visible=True), info: result_markdown(value), job_state: None,
                       resume_button: gr.update(visible=False),
                       outputs["heatmap"]: gr.update(value=value.heatmap_path, visible=bool(value.heatmap_path))}
                return
            if stop.is_set() and sync:
                gr.Warning("Stopped waiting. The request was already sent, so Segmind may still finish and bill it.")
                yield {progress: ""}
                return
            label = "Stopping" if stop.is_set() else phase
            yield {progress: progress_html(label, time.time() - started, request_id)}
    finally:
        stop.set()  # the page went away or the run ended: the worker stops polling


def generate(outputs: dict):
    """The Generate handler, bound to the page's components in app.py."""

    def handler(api_key, *values):
        stop = threading.Event()
        yield {outputs["stop_state"]: stop, outputs["progress"]: progress_html("preparing", 0)}
        try:
            inputs = ui_inputs(*values[:UI_INPUT_COUNT], values[UI_INPUT_COUNT:])
            preview, note = mask_view(inputs)
        except USER_ERRORS as exc:
            yield {outputs["progress"]: ""}
            raise gr.Error(str(exc), duration=None) from None
        yield {outputs["mask_preview"]: preview, outputs["mask_note"]: note}
        key, settings = resolve_key(api_key), load_settings()
        saved = {"own_key": bool((api_key or "").strip()),
                 "record": {"prompt": inputs.prompt, "params": inputs.params,
                            "image_names": [n for _, n in inputs.images], "image_urls": inputs.image_urls}}

        def work(on_status, on_submit):
            return run_edit(inputs, api_key=key, settings=settings, on_status=on_status, on_submit=on_submit,
                            stop=stop)

        yield from follow_run(work, stop, outputs, saved, sync=settings.api_mode == "sync")

    return handler


def resume(outputs: dict):
    """On page load and on Resume: pick up a job that may still be running or finished at Segmind."""

    def handler(job_state, api_key):
        if not isinstance(job_state, dict) or not job_state.get("request_id"):
            return
        typed = (api_key or "").strip()
        key = typed if job_state.get("own_key") else resolve_key(api_key)
        if not key:
            gr.Info(f"Request {job_state['request_id']} may have finished while the page was away. Paste the API "
                    "key it was run with and press Resume to fetch its result.")
            yield {outputs["resume_button"]: gr.update(visible=True)}
            return
        stop = threading.Event()
        yield {outputs["stop_state"]: stop, outputs["resume_button"]: gr.update(visible=False)}
        record, settings = RunRecord.from_saved(job_state.get("record")), load_settings()

        def work(on_status, on_submit):
            return resume_job(str(job_state["request_id"]), record, api_key=key, settings=settings,
                              on_status=on_status, stop=stop, submitted_at=errors.number(job_state.get("submitted_at")))

        yield from follow_run(work, stop, outputs, job_state)

    return handler


def edit_result(path: str | None):
    """The result goes into the editor as the next image to edit (the reference uploads stay as they are)."""
    if not path:
        raise gr.Error("There is no result to edit yet.")
    return images.load_image(path, Path(path).name).image


def stop_waiting(stop: threading.Event | None):
    if stop is not None:
        stop.set()


def check_credits(api_key):
    key = resolve_key(api_key)
    if not key:
        raise gr.Error("Paste your Segmind API key first.")
    try:
        credits = segmind.get_credits(api_key=key, base_url=load_settings().base_url)
    except SegmindError as exc:
        raise gr.Error(str(exc)) from None
    parts = [f"{k.replace('-', ' ')}: **{v:g}**" for k, v in credits.items() if isinstance(v, (int, float))]
    return "Credits: " + (" · ".join(parts) or "no balance reported")


def edit(prompt: str, images: list | None = None, mask: str | None = None, image_urls: list | None = None,
         size: str = PARAMS_BY_NAME["size"].default, quality: str = PARAMS_BY_NAME["quality"].default,
         background: str = PARAMS_BY_NAME["background"].default,
         output_format: str = PARAMS_BY_NAME["output_format"].default,
         output_compression: float = PARAMS_BY_NAME["output_compression"].default,
         moderation: str = PARAMS_BY_NAME["moderation"].default, api_key: str | None = None,
         mask_edit_colour: str = "auto", invert_mask: bool = False, keep_outside_mask: bool = False):
    """Edit images with Segmind's GPT Image 1 Edit Mini.

    `images` are image files (the first is edited), `mask` an optional mask for the first image (alpha 0 where
    to edit; a black-and-white mask works too, `mask_edit_colour` says which colour means edit), `image_urls`
    extra http(s) image URLs. Returns the edited image file and the run's record, with `remaining_credits`,
    `elapsed_s`, `request_id`, the output checks and, with a mask, what changed outside it.
    """
    values = {"size": size, "quality": quality, "background": background, "output_format": output_format,
              "output_compression": output_compression, "moderation": moderation}
    params = {name: PARAMS_BY_NAME[name].coerce(value) for name, value in values.items()}
    uploads = [(p, Path(p).name) for p in _file_paths(images)]
    try:
        mask_image, notes = None, []
        if mask:
            mask_image, notes = uploaded_mask(_file_paths([mask])[0], images_size(uploads), mask_edit_colour)
            if invert_mask:
                mask_image = masks.invert_mask(mask_image)
        if isinstance(image_urls, str):
            image_urls = image_urls.split()
        inputs = EditInputs(prompt=prompt or "", images=uploads, image_urls=[str(u) for u in image_urls or []],
                            mask=mask_image, params=params, keep_outside=bool(keep_outside_mask), notes=notes)
        record = run_edit(inputs, api_key=resolve_key(api_key), settings=load_settings())
    except USER_ERRORS as exc:
        raise gr.Error(str(exc)) from None
    return record.output_path, record.to_dict()


def images_size(uploads) -> tuple[int, int]:
    if not uploads:
        raise InputError("A mask needs an uploaded first image: send the image to edit as the first file.")
    return images.load_image(*uploads[0]).image.size


def _file_paths(files) -> list[str]:
    return [str(getattr(f, "name", None) or (f.get("path") if isinstance(f, dict) else f)) for f in files or []]
