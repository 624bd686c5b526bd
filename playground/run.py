"""One edit from the user's inputs to a saved result: checks, image preparation, the request, output checks.

The page's Generate button and the `/edit` endpoint both come through `check_inputs` and `run_edit`, so they
refuse the same things and send the same bytes. A `RunRecord` holds everything about a run except the key.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from . import images, segmind, verify
from . import mask as masks
from .config import Settings
from .params import DEFAULTS, MAX_IMAGES, PROMPT_MAX_CHARS, build_payload, check_params

OUTPUT_DIR = Path(tempfile.gettempdir()) / "segmind-playground"
OUTPUT_TTL_S = 24 * 3600


class InputError(ValueError):
    """The inputs would be refused: nothing was sent and no credits were spent."""


@dataclass
class EditInputs:
    """What the user asked for. `images` are uploads in order (the first is edited); `mask` is in the API's form."""

    prompt: str
    images: list[tuple[object, str]] = field(default_factory=list)  # (PIL image, bytes or path; display name)
    image_urls: list[str] = field(default_factory=list)
    mask: Image.Image | None = None
    params: dict = field(default_factory=dict)
    keep_outside: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """Everything about one run except the key: enough to show, compare or reproduce it later."""

    prompt: str
    params: dict
    image_names: list[str]
    image_urls: list[str]
    mask_share: float | None
    mode: str
    started_at: float
    notes: list[str] = field(default_factory=list)
    request_id: str | None = None
    remaining_credits: float | None = None
    cost: float | None = None
    elapsed_s: float | None = None
    generation_time_s: float | None = None
    output_format: str | None = None
    output_size: tuple[int, int] | None = None
    output_path: str | None = None
    problems: list[str] = field(default_factory=list)
    model_output_path: str | None = None
    heatmap_path: str | None = None
    changed_outside_pct: float | None = None
    pasted_back: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, data: object) -> RunRecord:
        """A record from what a browser kept: only the plain request fields, checked, never paths or results."""
        data = data if isinstance(data, dict) else {}
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        params = {k: v for k, v in params.items() if k in DEFAULTS and not check_params({k: v})}
        names, urls = ([v for v in data.get(key) or [] if isinstance(v, str)] for key in ("image_names", "image_urls"))
        return cls(prompt=str(data.get("prompt") or ""), params={**DEFAULTS, **params}, image_names=names,
                   image_urls=urls, mask_share=None, mode="queue", started_at=time.time())


@dataclass
class Prepared:
    payload: dict
    record: RunRecord
    original: Image.Image | None = None


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
        if not re.match(r"^https?://[^\s/]+\S*$", url):
            problems.append(f"{url!r} is not an http(s) URL; only http:// and https:// image URLs can be sent.")
    if inputs.mask is not None and not inputs.images:
        problems.append("A mask needs an uploaded first image: upload the image into the editor and paint on it.")
    problems += check_params(inputs.params)
    return problems


def prepare(inputs: EditInputs, *, api_key: str, settings: Settings) -> Prepared:
    """Normalise and encode checked inputs, upload them if so configured, and build the JSON body."""
    notes, data_urls, names = list(inputs.notes), [], []
    sent_size = original = None
    for source, name in inputs.images:
        loaded = images.load_image(source, name)
        original = original or loaded.image
        scaled = images.fit_longest_side(loaded.image, settings.max_side)
        if scaled.size != loaded.image.size:
            notes.append(f"{name} was scaled from {loaded.image.width}×{loaded.image.height} to "
                         f"{scaled.width}×{scaled.height} before sending.")
        notes += loaded.notes
        sent_size = sent_size or scaled.size
        data, mime = images.encode_for_api(scaled)
        data_urls.append(images.to_data_url(data, mime))
        names.append(name)
    mask_share = None
    if inputs.mask is not None:
        mask = masks.scale_mask(inputs.mask, sent_size)
        mask_share = masks.painted_share(mask)
        data_urls.append(images.to_data_url(masks.to_png_bytes(mask), "image/png"))
    if settings.transport == "upload" and data_urls:
        urls = segmind.upload_assets(data_urls, api_key=api_key, upload_url=settings.upload_url,
                                     retry=settings.retry)
    else:
        urls = data_urls
    mask_url = urls.pop() if inputs.mask is not None else None
    payload = build_payload(inputs.prompt, urls + list(inputs.image_urls), mask_url, inputs.params)
    record = RunRecord(prompt=inputs.prompt, params={k: payload[k] for k in DEFAULTS},
                       image_names=names, image_urls=list(inputs.image_urls), mask_share=mask_share,
                       mode=settings.api_mode, started_at=time.time(), notes=notes)
    return Prepared(payload, record, original)


def run_edit(inputs: EditInputs, *, api_key: str, settings: Settings,
             on_status: Callable[[segmind.JobStatus], None] | None = None,
             on_submit: Callable[[segmind.Job], None] | None = None,
             stop: threading.Event | None = None) -> RunRecord:
    """Check the inputs, run one edit end to end and return its record (the image is at `record.output_path`)."""
    problems = check_inputs(inputs)
    if not api_key:
        problems.append("Paste your Segmind API key into the API key box (get one from your Segmind console).")
    if problems:
        raise InputError(" ".join(problems))
    prepared = prepare(inputs, api_key=api_key, settings=settings)
    result = segmind.edit_image(prepared.payload, api_key=api_key, base_url=settings.base_url,
                                mode=settings.api_mode, poll=settings.poll, retry=settings.retry, on_status=on_status,
                                on_submit=on_submit, stop=stop)
    record = finish(prepared.record, result)
    if inputs.mask is not None and prepared.original is not None:
        try:
            compare_outside_mask(record, result.image, prepared.original, inputs.mask, paste=inputs.keep_outside)
        except (OSError, ValueError) as exc:  # the run is paid for: show the model's output all the same
            record.notes.append(f"The output could not be compared with the original ({exc}); this is the "
                                "model's own output.")
    return record


def resume_job(request_id: str, record: RunRecord, *, api_key: str, settings: Settings,
               on_status: Callable[[segmind.JobStatus], None] | None = None,
               stop: threading.Event | None = None, submitted_at: float | None = None) -> RunRecord:
    """Pick up a queued job after a reload; its URLs are built from the configured base URL."""
    job = segmind.Job.for_request(settings.base_url, request_id, submitted_at)
    result = segmind.wait_for_job(job, api_key=api_key, poll=settings.poll, retry=settings.retry,
                                  on_status=on_status, stop=stop)
    return finish(record, result)


def save_output(data: bytes, fmt: str | None, stem: str) -> str:
    """Write bytes under a name whose extension is their real format, in a folder of their own; outputs older
    than a day are removed on the way, so a long-running Space does not fill its disk."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    cutoff = time.time() - OUTPUT_TTL_S
    for old in OUTPUT_DIR.glob("*/*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                old.parent.rmdir()
    ext = {"jpeg": "jpg", None: "bin"}.get(fmt, fmt)
    path = Path(tempfile.mkdtemp(dir=OUTPUT_DIR)) / f"{stem}.{ext}"
    path.write_bytes(data)
    return str(path)


def finish(record: RunRecord, result: segmind.EditResult) -> RunRecord:
    """Save the image under its real format's extension and note how it compares with what was asked."""
    check = verify.check_output(result.image, record.params)
    path = save_output(result.image, result.format, f"segmind-edit-{(result.request_id or str(int(time.time())))[:12]}")
    record.request_id = result.request_id
    record.remaining_credits = result.remaining_credits
    record.cost = result.cost
    record.elapsed_s = round(result.elapsed_s, 2)
    record.generation_time_s = result.generation_time_s
    record.output_format = result.format
    record.output_size = check.size
    record.output_path = record.model_output_path = path
    record.problems = list(check.problems)
    return record


def compare_outside_mask(record: RunRecord, output: bytes, original: Image.Image, mask: Image.Image, *,
                         paste: bool) -> None:
    """Measure what the model changed outside the mask, and with `paste` put the original pixels back there
    (at the original's resolution, in the format that was asked for)."""
    with Image.open(io.BytesIO(output)) as decoded:
        edited = decoded.convert("RGBA" if decoded.mode in ("RGBA", "LA", "PA") else "RGB")
    heatmap, share = masks.change_heatmap(original, edited, mask)
    record.changed_outside_pct = round(share, 2)
    stem = Path(record.output_path).stem
    record.heatmap_path = save_output(images.encode_as(heatmap, "png"), "png", f"{stem}-changes")
    if not paste:
        return
    if abs(edited.width / edited.height - original.width / original.height) > 0.02:
        record.notes.append("The output's shape differs from the original's, so it was stretched to paste the "
                            "original back; choose Size auto or a matching size to avoid that.")
    fmt = str(record.params.get("output_format", "png"))
    pasted = masks.paste_back(original.convert(edited.mode), edited, mask)
    data = images.encode_as(pasted, fmt, int(record.params.get("output_compression", 100)))
    record.output_path = save_output(data, fmt, f"{stem}-kept-outside")
    record.output_size = pasted.size
    record.pasted_back = True
