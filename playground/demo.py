"""Demo mode: a stand-in for Segmind that needs no key, makes no network call and costs nothing.

It edits the masked area in a plain, visible way (hue shift, posterise, tint, chosen from the prompt), stamps
"DEMO" on it, and goes through the same phases as a queued Segmind job, so the whole page can be tried out.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from . import errors, images
from . import mask as masks
from .config import Settings
from .inputs import InputError
from .params import auto_size
from .segmind import EditResult, Job, JobStatus

DEMO_SECONDS_ENV = "PLAYGROUND_DEMO_S"
DEFAULT_DEMO_S = 3.0
MAX_DEMO_S = 600.0
KEEP_JOBS = 50
KEEP_JOBS_S = 3600.0  # as long as Segmind keeps a queued job's result
QUEUED_SHARE, PROCESSING_SHARE = 0.25, 0.6  # of the job's time; downloading takes the rest
STEP_S = 0.05
REPORT_EVERY_S = 1.0
TINT_SHARE = 0.35
STAMP_TEXT = "DEMO"
STAMP_FILL = (255, 255, 255)
STAMP_STROKE = (20, 20, 20)
BACKGROUND_FILL = (255, 255, 255, 255)


def demo_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long a demo job takes, from PLAYGROUND_DEMO_S (default 3 s); a bad value fails loudly."""
    env = os.environ if env is None else env
    raw = (env.get(DEMO_SECONDS_ENV) or "").strip()
    if not raw:
        return DEFAULT_DEMO_S
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_DEMO_S:
        raise ValueError(f"{DEMO_SECONDS_ENV} must be a number of seconds from 0 to {MAX_DEMO_S:g}, not {raw!r}.")
    return value


@dataclass(frozen=True)
class DemoJob:
    job: Job
    seconds: float
    image: bytes
    format: str


class DemoBackend:
    """The `Backend` of demo mode. Jobs live in this instance (the most recent `keep`, for an hour), so the
    same instance must serve a run and its Resume: build the service with `DemoBackends()`."""

    name = "demo"
    mode = "queue"
    needs_key = False

    def __init__(self, seconds: float | None = None, *, keep: int = KEEP_JOBS):
        if seconds is not None and not 0 <= seconds <= MAX_DEMO_S:
            raise ValueError(f"seconds must be from 0 to {MAX_DEMO_S:g}, not {seconds!r}.")
        self.seconds = seconds
        self.keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, DemoJob] = OrderedDict()

    def upload(self, data_urls, *, api_key, on_status=None):
        """Nothing to upload: the payload carries the data URLs themselves."""
        return list(data_urls)

    def edit(self, payload, *, api_key, on_status=None, on_submit=None, stop=None):
        if stop is not None and stop.is_set():
            raise errors.Stopped(billed="no")
        if on_status:
            on_status(JobStatus("submitting", None, 0.0))
        image, fmt = render(payload)
        job = Job.for_request("demo:", f"demo-{secrets.token_urlsafe(12)}")
        seconds = self.seconds if self.seconds is not None else demo_seconds()
        entry = DemoJob(job, seconds, image, images.sniff_format(image) or fmt)
        with self._lock:
            self._forget_old()
            self._jobs[job.request_id] = entry
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        if on_submit:
            on_submit(job)
        return self._wait(entry, on_status=on_status, stop=stop or threading.Event())

    def wait(self, request_id, *, api_key, submitted_at=None, on_status=None, stop=None):
        with self._lock:
            self._forget_old()
            entry = self._jobs.get(request_id)
        if entry is None:
            raise errors.JobExpired("this demo job is not known (demo jobs live in the app's memory)",
                                    request_id=str(request_id), phase="wait")
        return self._wait(entry, on_status=on_status, stop=stop or threading.Event())

    def credits(self, *, api_key):
        return {"credits": 0.0, "free-credits": 0.0, "demo": True}

    def _wait(self, entry: DemoJob, *, on_status, stop: threading.Event) -> EditResult:
        """Pass through the job's phases on its own clock, which runs from its submission: a Resume after Stop
        picks the job up where it has got to by now."""
        job, seconds = entry.job, entry.seconds
        reported, reported_at = None, 0.0
        while (elapsed := time.time() - job.submitted_at) < seconds:
            phase = phase_at(elapsed / seconds)
            if on_status and (phase != reported or time.monotonic() - reported_at >= REPORT_EVERY_S):
                on_status(JobStatus(phase, job.request_id, elapsed))
                reported, reported_at = phase, time.monotonic()
            if stop.wait(min(STEP_S, seconds - elapsed)):
                raise errors.Stopped(request_id=job.request_id, phase="wait", billed="maybe")
        if on_status and reported != "downloading":
            on_status(JobStatus("downloading", job.request_id, time.time() - job.submitted_at))
        return EditResult(image=entry.image, format=entry.format, mode=self.mode,
                          elapsed_s=time.time() - job.submitted_at, request_id=job.request_id,
                          remaining_credits=None, cost=0.0, generation_time_s=round(seconds * PROCESSING_SHARE, 2))

    def _forget_old(self) -> None:
        now = time.time()
        for request_id, entry in list(self._jobs.items()):
            if now - entry.job.submitted_at > KEEP_JOBS_S:
                del self._jobs[request_id]


class DemoBackends:
    """`Service(backend_for=DemoBackends())`: the service asks for its backend on every run and Resume, and always
    gets this one `DemoBackend`, so a job started by one call is found by the next. It lives as long as the service."""

    def __init__(self, seconds: float | None = None, *, keep: int = KEEP_JOBS):
        self.backend = DemoBackend(seconds, keep=keep)

    def __call__(self, settings: Settings) -> DemoBackend:
        return self.backend


def phase_at(progress: float) -> str:
    """The phase a demo job is in when `progress` (0 to 1) of its time has passed."""
    if progress < QUEUED_SHARE:
        return "queued"
    return "processing" if progress < QUEUED_SHARE + PROCESSING_SHARE else "downloading"


def render(payload: Mapping) -> tuple[bytes, str]:
    """The demo's edit of the payload's first image: at the size, format, compression and background asked for."""
    urls = payload.get("image_urls") or []
    if not urls:
        raise InputError("The demo needs an image to edit.")
    source = images.load_image(_data_url_bytes(urls[0], "the image"), "image").image.convert("RGBA")
    size = payload.get("size", "auto")
    width, height = (int(n) for n in (auto_size(source.size) if size == "auto" else str(size)).split("x"))
    source = source.resize((width, height), Image.Resampling.LANCZOS)
    if payload.get("mask"):
        mask = masks.scale_mask(Image.open(io.BytesIO(_data_url_bytes(payload["mask"], "the mask"))), source.size)
        edit = np.asarray(mask.getchannel("A")) == masks.EDIT_ALPHA
    else:
        edit = np.ones((height, width), bool)

    edited, stamped = stamp(restyle(source.convert("RGB"), str(payload.get("prompt", ""))), edit)
    rgb = np.where(edit[..., None], np.asarray(edited), np.asarray(source.convert("RGB")))
    alpha = np.asarray(source.getchannel("A")).copy()
    alpha[edit & stamped] = 255
    fmt = str(payload.get("output_format", "png"))
    if payload.get("background") == "transparent":
        alpha[edit & ~_ellipse(edit) & ~stamped] = 0
        out = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    else:
        alpha[edit] = 255
        out = Image.alpha_composite(Image.new("RGBA", source.size, BACKGROUND_FILL),
                                    Image.fromarray(np.dstack([rgb, alpha]), "RGBA")).convert("RGB")
    return images.encode_as(out, fmt, int(payload.get("output_compression", 100))), fmt


def restyle(image: Image.Image, prompt: str) -> Image.Image:
    """The whole image hue-shifted, posterised and tinted; the prompt picks how, so other prompts look other."""
    digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 43 + digest[0] * 170 // 255) % 256
    shifted = ImageOps.posterize(Image.fromarray(hsv, "HSV").convert("RGB"), 2 + digest[1] % 2)
    tint = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(digest[2] / 255, 0.8, 1.0))
    return Image.blend(shifted, Image.new("RGB", image.size, tint), TINT_SHARE)


def stamp(image: Image.Image, edit: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """`image` (RGB) with "DEMO" across the middle of the edit area, and where the stamp was drawn."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    box = stamp_box(edit)
    if box is not None:
        x0, y0, x1, y1 = box
        left, top, right, bottom = ImageFont.load_default(size=100).getbbox(STAMP_TEXT)
        font_size = max(10, int(100 * min(0.6 * (x1 - x0) / (right - left), 0.4 * (y1 - y0) / (bottom - top))))
        ImageDraw.Draw(layer).text(((x0 + x1) / 2, (y0 + y1) / 2), STAMP_TEXT, anchor="mm",
                                   font=ImageFont.load_default(size=font_size), fill=(*STAMP_FILL, 255),
                                   stroke_width=max(1, font_size // 14), stroke_fill=(*STAMP_STROKE, 255))
    stamped = np.asarray(layer.getchannel("A")) > 0
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"), stamped


def stamp_box(edit: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box the stamp is centred in: the edit area's bounding box (left, top, right, bottom), or None."""
    rows, cols = np.flatnonzero(edit.any(axis=1)), np.flatnonzero(edit.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _ellipse(edit: np.ndarray) -> np.ndarray:
    """The ellipse inscribed in the edit area's bounding box: what stays opaque of the edit with a transparent
    background, so that the edit comes back as a cut-out."""
    x0, y0, x1, y1 = stamp_box(edit) or (0, 0, 1, 1)
    ys, xs = np.ogrid[: edit.shape[0], : edit.shape[1]]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max(1.0, (x1 - x0) / 2), max(1.0, (y1 - y0) / 2)
    return ((xs + 0.5 - cx) / rx) ** 2 + ((ys + 0.5 - cy) / ry) ** 2 <= 1.0


def _data_url_bytes(url: object, what: str) -> bytes:
    text = str(url)
    head, comma, body = text.partition(",")
    if not (text.startswith("data:") and comma and head.endswith(";base64")):
        raise InputError(f"The demo makes no network calls, so it cannot fetch {what} from a URL: upload it instead.")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"The demo could not read {what}: its data URL is damaged.") from None
