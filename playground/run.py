"""One edit from checked inputs to a stored result: image preparation, the backend call, output checks, the record.

Everything a run sends and gets back is written into its folder in the run store as it happens, so that a reload,
Resume, or a restart of the app can pick the run up from there. A `RunRecord` holds everything except the key.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from PIL import Image

from . import errors, images, messages, segmind, verify
from . import mask as masks
from .backend import Backend
from .inputs import EditInputs, InputError, check_inputs
from .params import DEFAULTS, auto_size, build_payload
from .segmind import EditResult, Job, JobStatus
from .store import Run

EXTENSIONS = {"jpeg": "jpg", None: "bin"}
MIME_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


@dataclass
class RunRecord:
    """Everything about one run except the key: enough to show, compare or reproduce it later."""

    run_id: str
    prompt: str
    params: dict
    image_names: list[str]
    image_urls: list[str]
    mask_share: float | None
    mode: str
    backend: str
    started_at: float
    notes: list[str] = field(default_factory=list)
    mask_notes: list[str] = field(default_factory=list)  # about the mask as sent; shown beside the mask
    request_id: str | None = None
    remaining_credits: float | None = None
    cost: float | None = None
    elapsed_s: float | None = None
    generation_time_s: float | None = None
    output_format: str | None = None  # the format of the file delivered (after any paste-back)
    output_size: tuple[int, int] | None = None
    model_output_format: str | None = None
    result_file: str | None = None  # names of files in the run's folder, never paths
    model_output_file: str | None = None
    heatmap_file: str | None = None
    problems: list[str] = field(default_factory=list)
    changed_outside_pct: float | None = None
    pasted_back: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(known.get("output_size"), list):
            known["output_size"] = tuple(known["output_size"])
        return cls(**known)


@dataclass
class Prepared:
    payload: dict
    record: RunRecord


@dataclass(frozen=True)
class SentImages:
    """The images as sent (files for the run's folder) and where Segmind reads them (data URIs or storage URLs)."""

    files: dict[str, bytes]
    urls: tuple[str, ...]
    mask_url: str | None
    names: tuple[str, ...]
    notes: tuple[str, ...]
    mask_share: float | None
    sent_size: tuple[int, int] | None


class SharedImages:
    """The runs of one batch send the same images: the first run to ask prepares (and uploads) them, the others
    wait for it and reuse its files and URLs. A failure is kept too, so a batch does not retry it once per run."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sent: SentImages | None = None
        self._error: Exception | None = None

    def get(self, make: Callable[[], SentImages]) -> SentImages:
        with self._lock:
            if self._sent is None and self._error is None:
                try:
                    self._sent = make()
                except Exception as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._sent


def send_images(inputs: EditInputs, *, api_key: str, backend: Backend, transport: str, max_side: int,
                on_status: Callable[[JobStatus], None] | None = None) -> SentImages:
    """Scale and encode checked inputs, and upload them if so configured."""
    notes, data_urls, names, files = [], [], [], {}
    sent_size = None
    for index, (source, name) in enumerate(inputs.images, start=1):
        loaded = images.load_image(source, name)
        scaled = images.fit_longest_side(loaded.image, max_side)
        if scaled.size != loaded.image.size:
            notes.append(f"{name} was scaled from {loaded.image.width}×{loaded.image.height} to "
                         f"{scaled.width}×{scaled.height} before sending.")
        notes += loaded.notes
        data, mime = images.encode_for_api(scaled)
        files[f"input-{index}.{MIME_EXTENSIONS[mime]}"] = data
        if index == 1:
            sent_size = scaled.size
            if inputs.keep_outside and inputs.mask is not None:
                files["original.png"] = _png(loaded.image)
                files["mask-original.png"] = masks.to_png_bytes(inputs.mask)
        data_urls.append(images.to_data_url(data, mime))
        names.append(name)
    mask_share = None
    if inputs.mask is not None:
        mask = masks.scale_mask(inputs.mask, sent_size)
        mask_share = round(float(masks.painted_share(mask)), 2)
        files["mask.png"] = mask_png = masks.to_png_bytes(mask)
        data_urls.append(images.to_data_url(mask_png, "image/png"))
    if transport == "upload" and data_urls:
        if on_status:
            on_status(JobStatus("uploading", None, 0.0))
        urls = list(backend.upload(data_urls, api_key=api_key, on_status=on_status))
    else:
        urls = data_urls
    mask_url = urls.pop() if inputs.mask is not None else None
    return SentImages(files, tuple(urls), mask_url, tuple(names), tuple(notes), mask_share, sent_size)


def prepare(inputs: EditInputs, run: Run, *, api_key: str, backend: Backend, transport: str, max_side: int,
            on_status: Callable[[JobStatus], None] | None = None, shared: SharedImages | None = None) -> Prepared:
    """Scale and encode checked inputs into the run's folder, upload them if so configured, build the JSON body."""
    def make() -> SentImages:
        return send_images(inputs, api_key=api_key, backend=backend, transport=transport, max_side=max_side,
                           on_status=on_status)

    sent = shared.get(make) if shared is not None else make()
    for name, data in sent.files.items():
        run.write(name, data)
    notes = list(sent.notes)
    if sent.sent_size and inputs.params.get("size") == "auto":
        notes.append(f"Size auto gives {auto_size(sent.sent_size).replace('x', '×')} for this "
                     f"{sent.sent_size[0]}×{sent.sent_size[1]} image.")
    payload = build_payload(inputs.prompt, list(sent.urls) + list(inputs.image_urls), sent.mask_url, inputs.params)
    run.write_json("request.json", payload)
    record = RunRecord(run_id=run.run_id, prompt=inputs.prompt, params={k: payload[k] for k in DEFAULTS},
                       image_names=list(sent.names), image_urls=list(inputs.image_urls), mask_share=sent.mask_share,
                       mode=backend.mode, backend=backend.name, started_at=time.time(), notes=notes,
                       mask_notes=list(inputs.notes))
    run.write_json("record.json", record.to_dict())
    return Prepared(payload, record)


def execute(inputs: EditInputs, run: Run, *, api_key: str, backend: Backend, transport: str, max_side: int,
            on_status: Callable[[JobStatus], None] | None = None, stop: threading.Event | None = None,
            shared: SharedImages | None = None) -> RunRecord:
    """Check the inputs, run one edit end to end and return its record; the run's folder holds every file."""
    problems = check_inputs(inputs)
    if backend.needs_key and not api_key:
        problems.append("Paste your Segmind API key into the API key box (get one from your Segmind console).")
    elif backend.needs_key and (problem := segmind.key_problem(api_key)):
        problems.append(messages.describe(errors.BadKey(problem)))
    if problems:
        raise InputError(" ".join(problems))
    run.update(state="preparing", keep_outside=inputs.keep_outside, has_mask=inputs.mask is not None)
    prepared = prepare(inputs, run, api_key=api_key, backend=backend, transport=transport, max_side=max_side,
                       on_status=on_status, shared=shared)

    def submitted(job: Job) -> None:
        run.update(state="submitted", request_id=job.request_id, submitted_at=job.submitted_at)

    run.update(state="sending")
    result = backend.edit(prepared.payload, api_key=api_key, on_status=on_status, on_submit=submitted, stop=stop)
    return ask_balance(run, finish(run, prepared.record, result), backend=backend, api_key=api_key)


def resume(run: Run, *, api_key: str, backend: Backend, on_status: Callable[[JobStatus], None] | None = None,
           stop: threading.Event | None = None) -> RunRecord:
    """Pick up a submitted job from its run's folder: the request id, the record so far, the mask and paste-back."""
    meta = run.meta
    saved = run.read_json("record.json")
    if not meta.get("request_id") or saved is None:
        raise InputError("This run never reached Segmind, so there is nothing to fetch; run the edit again.")
    record = RunRecord.from_dict(saved)
    result = backend.wait(str(meta["request_id"]), api_key=api_key, submitted_at=meta.get("submitted_at"),
                          on_status=on_status, stop=stop)
    return ask_balance(run, finish(run, record, result), backend=backend, api_key=api_key)


def ask_balance(run: Run, record: RunRecord, *, backend: Backend, api_key: str) -> RunRecord:
    """An answer without the balance: ask the free credits endpoint rather than show nothing."""
    if record.remaining_credits is not None or not backend.needs_key:
        return record
    try:
        credits = backend.credits(api_key=api_key).get("credits")
    except errors.SegmindError:
        return record
    if isinstance(credits, (int, float)) and not isinstance(credits, bool):
        record.remaining_credits = float(credits)
        run.write_json("record.json", record.to_dict())
    return record


def finish(run: Run, record: RunRecord, result: EditResult) -> RunRecord:
    """Save the image under its real format's extension, compare it with the original outside the mask, paste the
    original back when asked, and write the record."""
    meta = run.meta
    check = verify.check_output(result.image, record.params)
    name = f"result.{EXTENSIONS.get(result.format, result.format)}"
    run.write(name, result.image)
    record.request_id = result.request_id
    record.remaining_credits = result.remaining_credits
    record.cost = result.cost
    record.elapsed_s = round(time.time() - record.started_at, 2)
    record.generation_time_s = result.generation_time_s
    record.output_format = record.model_output_format = result.format
    record.output_size = check.size
    record.result_file = name
    record.problems = list(check.problems)
    if meta.get("has_mask"):
        try:
            compare_outside_mask(run, record, result.image, keep_outside=bool(meta.get("keep_outside")))
        except (OSError, ValueError) as exc:  # the run is paid for: show the model's output all the same
            record.notes.append(f"The output could not be compared with the original ({exc}); this is the "
                                "model's own output.")
    run.write_json("record.json", record.to_dict())
    run.update(state="done")
    return record


def compare_outside_mask(run: Run, record: RunRecord, output: bytes, *, keep_outside: bool) -> None:
    """Measure what the model changed outside the mask (on the image as sent), and with `keep_outside` put the
    original pixels back there, at the original's resolution, in the format that was asked for."""
    sent_name = run.find("input-1").name
    # Three decodes apart from each other, side by side on the cores (Pillow lets go of the GIL while decoding).
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="compare") as pool:
        decoding = [pool.submit(_decoded, output), pool.submit(_open, run, sent_name),
                    pool.submit(_open, run, "mask.png")]
        edited, sent, mask_sent = (future.result() for future in decoding)
    mode = "RGBA" if edited.mode in ("RGBA", "LA", "PA") else "RGB"
    if edited.mode != mode:
        edited = edited.convert(mode)
    heatmap, share = masks.change_heatmap(sent, edited, mask_sent, max_side=masks.HEATMAP_MAX_SIDE)
    record.changed_outside_pct = round(float(share), 2)
    run.write("heatmap.png", images.quick_png(heatmap))
    record.heatmap_file = "heatmap.png"
    if not keep_outside:
        return
    original, mask = _open(run, "original.png"), _open(run, "mask-original.png")
    if abs(edited.width / edited.height - original.width / original.height) > 0.02:
        fits = auto_size(original.size)
        advice = ("no size has this image's proportions" if record.params.get("size") in ("auto", fits)
                  else f"Size {fits} (what auto gives here) is the nearest to its proportions")
        record.notes.append(f"The output's shape differs from the original's, so it was stretched to paste the "
                            f"original back; {advice}.")
    fmt = str(record.params.get("output_format", "png"))
    pasted = masks.paste_back(original.convert(edited.mode), edited, mask)
    data = images.encode_as(pasted, fmt, int(record.params.get("output_compression", 100)))
    record.model_output_file = record.result_file.replace("result.", "model-output.")
    run.write(record.model_output_file, output)
    record.result_file = f"result.{EXTENSIONS.get(fmt, fmt)}"
    if record.model_output_file.split(".")[-1] != record.result_file.split(".")[-1]:
        run.path(record.model_output_file.replace("model-output.", "result.")).unlink(missing_ok=True)
    run.write(record.result_file, data)
    record.output_size = pasted.size
    record.output_format = fmt
    record.pasted_back = True


def _open(run: Run, name: str) -> Image.Image:
    data = run.read(name)
    if data is None:
        raise ValueError(f"the run's {name} is missing")
    return _decoded(data)


def _decoded(data: bytes) -> Image.Image:
    """The image in `data`, decoded (from memory: nothing to close, so no copy is needed)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)  # kept for paste-back only: speed over size
    return buf.getvalue()


__all__ = ["InputError", "RunRecord", "SharedImages", "execute", "finish", "prepare", "resume"]
