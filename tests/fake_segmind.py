"""A strict local stand-in for Segmind's gpt-image-1-edit-mini API, served over real HTTP for tests."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import socket
import socketserver
import struct
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, ImageChops, ImageDraw, ImageOps

from playground.params import DEFAULTS, MAX_IMAGES, MODEL, PARAMS_BY_NAME, PROMPT_MAX_CHARS, auto_size, check_params

GROUPS = ("edit", "status", "result", "download", "upload", "credits")
STATUS_FAULTS = ("400", "403", "404", "405", "406", "410", "422", "429", "500", "502", "503", "504")
OUTPUT_FAULTS = ("job_failed", "wrong_format", "opaque_transparent", "wrong_size")
FAULTS = (*STATUS_FAULTS, "reset", "slow", "truncated", "json200", "html200", *OUTPUT_FAULTS)
# Segmind sends no Retry-After (per the contract), but a gateway in front of it may on a 429 or 5xx.
RETRY_AFTER_FAULTS = ("429", "500", "502", "503", "504")

FIELDS = frozenset({"prompt", "image_urls", "mask", *PARAMS_BY_NAME})
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "WEBP")  # MPO is how Pillow names many phone JPEGs
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# OpenAI's own limits for the upstream model; Segmind publishes none.
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_MASK_BYTES = 4 * 1024 * 1024
MISSING_KEY = "Missing Authorization or x-api-key in header"
BAD_KEY = "Unauthorized. API key is invalid or may have expired. Please check your API key."
JOB_FAILED_ERROR = "Prompt is Mandatory and must be string"
FAULT_ERRORS = {
    "400": "Bad request: the request body could not be processed",
    "403": f"Your team does not have access to the model {MODEL}",
    "404": "Not found",
    "410": f"Model {MODEL} has been deprecated",
    "422": "Validation Error: invalid or missing parameters",
    "429": "Rate limit exceeded. Please wait before sending more requests.",
    "500": "Internal server error while processing the request",
    "503": "Service temporarily unavailable, please try again later",
    "504": "Gateway timeout: the model did not answer in time",
}
OTHER_FORMAT = {"png": "jpeg", "jpeg": "png", "webp": "png"}
DATA_URI = re.compile(r"data:image/([a-z0-9.+-]+);base64,(.*)", re.S)
UPLOAD_URI = re.compile(r"data:image/(png|jpeg|webp);base64,(.*)", re.S)
FAILED_METRICS = {"inference_time": 0.007, "queue_time": 0.23, "total_time": 0.24}
DONE_METRICS = {"inference_time": 1.23, "queue_time": 0.5, "total_time": 1.73}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: object | None


@dataclass
class EditRecord:
    payload: dict
    images: list[Image.Image]
    mask: Image.Image | None
    output: bytes
    output_format: str  # the format the bytes are really in, which a fault can make differ from the payload's


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None
    reset: bool = False


@dataclass
class _Fault:
    kind: str
    remaining: int
    opts: dict


@dataclass
class _EditInput:
    payload: dict
    images: list[Image.Image]
    mask: Image.Image | None
    values: dict


@dataclass
class _Job:
    id: str
    fmt: str
    queued: int
    processing: int
    output: bytes | None = None
    error: str | None = None
    polls: int = 0
    expired: bool = False
    metrics: dict | None = None  # set on the first COMPLETED poll, so a job is charged once
    ready_at: float = 0.0  # time.time() before which the job is still PROCESSING (see FakeSegmind.job_s)


def _json(status: int, obj: object, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


def _bad(message: str) -> _Reply:
    return _json(400, {"error": message})


def _html(status: int, title: str) -> _Reply:
    page = (f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return _Reply(status, page.encode(), {"Content-Type": "text/html"})


def _num(value: float) -> str:
    return str(round(value, 6))


def _short(url: str) -> str:
    return url if len(url) <= 100 else f"{url[:80]}... ({len(url)} characters)"


def _is_json(headers: dict[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_object(body: bytes) -> dict | _Reply:
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except ValueError:
        return _bad("Request body is not valid JSON")
    if not isinstance(payload, dict):
        return _bad("Request body must be a JSON object")
    return payload


def _decode(data: bytes, what: str, limit: int) -> Image.Image | str:
    """The decoded image, or why it was refused."""
    if len(data) > limit:
        return f"{what} is larger than {limit // 2**20} MB"
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:  # Pillow raises many types for bad input; all mean the same here
        return f"{what} could not be decoded as an image"
    if image.format not in IMAGE_FORMATS:
        return f"{what} must be png, jpeg or webp (got {image.format})"
    return image


def _output_size(size: str, source: tuple[int, int]) -> tuple[int, int]:
    w, h = (size if size != "auto" else auto_size(source)).split("x")
    return int(w), int(h)


def _checkerboard(size: tuple[int, int], cell: int = 16) -> Image.Image:
    cols, rows = -(-size[0] // cell), -(-size[1] // cell)
    small = Image.new("L", (cols, rows))
    small.putdata([204 if (x + y) % 2 else 255 for y in range(rows) for x in range(cols)])
    board = small.resize((cols * cell, rows * cell), Image.Resampling.NEAREST).crop((0, 0, *size))
    return board.convert("RGBA")


def _encode(image: Image.Image, fmt: str, compression: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        # Fast compression keeps the test suite quick; the pixels are the same.
        image.save(buf, "PNG", compress_level=1)
    elif fmt == "jpeg":
        image.convert("RGB").save(buf, "JPEG", quality=compression)
    else:
        image.save(buf, "WEBP", quality=compression)
    return buf.getvalue()


def _render(edit: _EditInput, fault: str | None) -> tuple[bytes, str]:
    """A real, checkable edit: masked-out pixels turn green, or everything is inverted when there is no mask."""
    values = edit.values
    size = _output_size(values["size"], edit.images[0].size)
    out = edit.images[0].convert("RGBA").resize(size, Image.Resampling.BICUBIC)
    if edit.mask is not None:
        alpha = edit.mask.convert("RGBA").getchannel("A").resize(size, Image.Resampling.NEAREST)
        out.paste((0, 255, 0, 255), (0, 0), alpha.point(lambda a: 255 if a == 0 else 0))
    else:
        alpha = out.getchannel("A")
        out = ImageOps.invert(out.convert("RGB"))
        out.putalpha(alpha)
    if values["background"] == "transparent":
        w, h = size
        inner = Image.new("L", size, 0)
        ImageDraw.Draw(inner).rectangle((w // 8, h // 8, w - w // 8 - 1, h - h // 8 - 1), fill=255)
        out.putalpha(ImageChops.darker(out.getchannel("A"), inner))
        if fault == "opaque_transparent":
            board = _checkerboard(size)
            board.alpha_composite(out)
            out = board
    else:
        out = out.convert("RGB")
    if fault == "wrong_size":
        out = out.resize((512, 512), Image.Resampling.BICUBIC)
    fmt = values["output_format"]
    actual = OTHER_FORMAT[fmt] if fault == "wrong_format" else fmt
    return _encode(out, actual, values["output_compression"]), actual


@cache
def _placeholder_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buf, "PNG")
    return buf.getvalue()


def _sniff_type(data: bytes) -> str:
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return ""


ROUTES = (
    (re.compile(rf"/v1/{re.escape(MODEL)}"), "POST", "edit", "_edit_v1"),
    (re.compile(rf"/v2/{re.escape(MODEL)}"), "POST", "edit", "_edit_v2"),
    (re.compile(r"/v2/requests/([^/]+)/status"), "GET", "status", "_status"),
    (re.compile(r"/v2/requests/([^/]+)"), "GET", "result", "_result"),
    (re.compile(r"/v1/requests/([^/]+)"), "GET", "result", "_result"),
    (re.compile(r"/outputs/([^/]+)"), "GET", "download", "_output"),
    (re.compile(r"/assets/([^/]+)"), "GET", "download", "_asset"),
    (re.compile(r"/upload-asset"), "POST", "upload", "_upload"),
    (re.compile(r"/v1/get-user-credits"), "GET", "credits", "_credits"),
)


class FakeSegmind:
    """Segmind's edit-mini endpoints (v1, v2 queue, uploads, credits) on 127.0.0.1, with injectable faults."""

    def __init__(self, *, credits: float = 50.0, cost: float = 0.028, queue_polls: tuple[int, int] = (1, 1),
                 delay_s: float = 0.0, upload_field: str = "file_urls") -> None:
        self.api_key = "test-key"
        self.credits = credits
        self.cost = cost
        self.queue_polls = queue_polls
        self.delay_s = delay_s
        # Seconds a queued job runs after its submit, on the clock rather than by polls: a number, or a callable
        # that draws one per job. Until then its polls answer PROCESSING; `completes_at` tells when it ends.
        self.job_s: float | Callable[[], float] = 0.0
        self.upload_field = upload_field
        self.report_balance = True  # False: finished jobs' metrics carry no remaining_credits
        self.url = ""
        self.requests: list[Recorded] = []
        self.edits: list[EditRecord] = []
        self.crashes: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._faults: dict[str, list[_Fault]] = {group: [] for group in GROUPS}
        self._jobs: dict[str, _Job] = {}
        self._assets: dict[str, tuple[bytes, str]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None


    def start(self) -> FakeSegmind:
        if self._server is not None:
            raise RuntimeError("FakeSegmind is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval keeps stop() fast; the default would add half a second to every test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.005},
                                        name="FakeSegmind", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeSegmind:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


    @property
    def upload_url(self) -> str:
        return f"{self.url}/upload-asset"

    def fail(self, kind: str, on: str = "edit", times: int = 1, **opts: object) -> None:
        """Make the next `times` requests of route group `on` go wrong in the way `kind` names."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULTS)}")
        if on not in GROUPS:
            raise ValueError(f"unknown route group {on!r}; expected one of {', '.join(GROUPS)}")
        if kind in OUTPUT_FAULTS and on != "edit":
            raise ValueError(f"fault {kind!r} changes an edit's output, so it needs on='edit'")
        if kind == "slow" and "seconds" not in opts:
            raise ValueError("fault 'slow' needs seconds=")
        if "retry_after" in opts and kind not in RETRY_AFTER_FAULTS:
            raise ValueError(f"retry_after= only goes with {', '.join(RETRY_AFTER_FAULTS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults[on].append(_Fault(kind, times, opts))

    def add_asset(self, data: bytes, name: str | None = None) -> str:
        kind = _sniff_type(data)
        name = name or f"{uuid.uuid4().hex}.{kind or 'bin'}"
        if "/" in name or "?" in name or "#" in name:
            raise ValueError(f"asset name {name!r} must be a single path segment")
        with self._lock:
            self._assets[name] = (data, f"image/{kind}" if kind else "application/octet-stream")
        return f"{self.url}/assets/{name}"

    def expire(self, request_id: str) -> None:
        with self._lock:
            self._jobs[request_id].expired = True

    def release(self) -> None:
        """Let every waiting job complete at its next poll."""
        with self._lock:
            for job in self._jobs.values():
                job.queued = job.processing = 0
                job.ready_at = 0.0

    def completes_at(self, request_id: str) -> float:
        """When (time.time()) the job's `job_s` runs out: from then on a poll completes it, once the polls that
        `queue_polls` asks for have been made."""
        with self._lock:
            return self._jobs[request_id].ready_at

    def count(self, method: str, path_prefix: str = "") -> int:
        if self.url and path_prefix.startswith(self.url):
            path_prefix = path_prefix[len(self.url):]
        with self._lock:
            return sum(r.method == method.upper() and r.path.startswith(path_prefix) for r in self.requests)


    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body, parsed))

    def _sleep(self, seconds: float) -> None:
        # Waiting on the stop event lets stop() cut short a slow answer instead of hanging on it.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _take_fault(self, group: str) -> _Fault | None:
        with self._lock:
            queue = self._faults[group]
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                queue.pop(0)
            return fault

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        route_path = path.split("?", 1)[0]
        found = next(((route, m) for route in ROUTES if (m := route[0].fullmatch(route_path))), None)
        if found is None:
            return _json(404, {"error": "Not found"})
        (_, verb, group, handler), match = found
        if method != verb:
            return _html(405, "Method Not Allowed")
        arg = next(iter(match.groups()), "")
        fault = self._take_fault(group)
        if fault and fault.kind == "slow":
            self._sleep(float(fault.opts["seconds"]))
            fault = None
        if fault and fault.kind not in OUTPUT_FAULTS:
            return self._fault_reply(fault, group, arg)
        return getattr(self, handler)(headers, body, arg, fault)

    def _fault_reply(self, fault: _Fault, group: str, arg: str) -> _Reply:
        kind, opts = fault.kind, fault.opts
        if kind == "reset":
            return _Reply(0, reset=True)
        if kind == "truncated":
            data = _placeholder_png()
            return _Reply(200, data[: len(data) // 2], {"Content-Type": "image/png"}, content_length=len(data))
        if kind == "json200":
            return _json(200, {"status": "ok"})
        if kind == "html200":
            page = b"<!DOCTYPE html><html><head><title>Segmind</title></head><body><h1>Segmind</h1></body></html>"
            return _Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})
        headers = {"Retry-After": str(opts["retry_after"])} if "retry_after" in opts else {}
        if kind == "405":
            return _html(405, "Method Not Allowed")
        if kind == "502":
            page = _html(502, "Bad Gateway")
            page.headers.update(headers)
            return page
        if kind == "406":
            message = str(opts.get("error") or self._credits_message())
        elif kind == "404" and group in ("status", "result"):
            message = f"Request {arg} not found"
        else:
            message = str(opts.get("error", FAULT_ERRORS[kind]))
        if kind == "429":
            reset_at = datetime.now(timezone.utc) + timedelta(seconds=float(opts.get("reset_in", 1.0)))
            headers["x-rate-limit-reset-at-utc"] = reset_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return _json(int(kind), {"error": message}, headers)


    def _auth(self, headers: dict[str, str]) -> _Reply | None:
        key = headers.get("x-api-key")
        if not key:
            return _json(401, {"error": MISSING_KEY})
        if key != self.api_key:
            return _json(401, {"error": BAD_KEY})
        return None

    def _credits_message(self) -> str:
        with self._lock:
            return f"Not enough credits: balance {_num(self.credits)}, this run costs {_num(self.cost)}"

    def _fetch(self, url: str) -> bytes | None:
        """What Segmind would download for this image reference; only data URIs and this fake's own files work."""
        data_uri = DATA_URI.fullmatch(url)
        if data_uri:
            try:
                return base64.b64decode(data_uri.group(2), validate=True)
            except binascii.Error:
                return None
        if not url.startswith(self.url + "/"):
            return None
        path = url[len(self.url):].split("?", 1)[0]
        with self._lock:
            if match := re.fullmatch(r"/assets/([^/]+)", path):
                asset = self._assets.get(match.group(1))
                return asset[0] if asset else None
            if match := re.fullmatch(r"/outputs/([^/]+)", path):
                job = self._finished_job(match.group(1))
                return job.output if job else None
        return None

    def _finished_job(self, filename: str) -> _Job | None:
        request_id, _, ext = filename.rpartition(".")
        job = self._jobs.get(request_id)
        if job is None or job.metrics is None or job.output is None or ext != job.fmt:
            return None
        return job

    def _json_body(self, headers: dict[str, str], body: bytes) -> dict | _Reply:
        """The checks every JSON POST gets, in Segmind's order: key, content type, a JSON object."""
        if denied := self._auth(headers):
            return denied
        if not _is_json(headers):
            return _json(406, {"error": "Invalid content type"})
        return _parse_object(body)

    def _check_edit(self, headers: dict[str, str], body: bytes) -> _EditInput | _Reply:
        """Segmind's checks, in the order it answers them: key, content type, body, credits, then the images."""
        payload = self._json_body(headers, body)
        if isinstance(payload, _Reply):
            return payload
        if unknown := sorted(set(payload) - FIELDS):
            return _bad(f"Unknown parameter(s): {', '.join(map(repr, unknown))}")
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _bad("Prompt is Mandatory and must be string")
        if len(prompt) > PROMPT_MAX_CHARS:
            return _bad(f"Prompt is {len(prompt)} characters long; the limit is {PROMPT_MAX_CHARS}")
        urls = payload.get("image_urls")
        if (not isinstance(urls, list) or not 1 <= len(urls) <= MAX_IMAGES
                or not all(isinstance(url, str) for url in urls)):
            got = f"{len(urls)} entries" if isinstance(urls, list) else type(urls).__name__
            return _bad(f"image_urls must be a list of 1 to {MAX_IMAGES} image URL strings (got {got})")
        mask_url = payload.get("mask")
        if mask_url is not None and not isinstance(mask_url, str):
            return _bad("mask must be an image URL string or null")
        values = {name: value for name, value in payload.items() if name in PARAMS_BY_NAME}
        problems = check_params(values)
        # JSON keeps 80 and 80.0 apart and Segmind wants an integer; Param.check alone accepts 80.0.
        problems += [f"{PARAMS_BY_NAME[name].label} must be a JSON integer (got {value!r})."
                     for name, value in values.items() if not PARAMS_BY_NAME[name].choices and isinstance(value, float)]
        if problems:
            return _bad(" ".join(problems))
        with self._lock:
            broke = self.credits < self.cost
        if broke:
            return _json(406, {"error": self._credits_message()})
        images = []
        for number, url in enumerate(urls, 1):
            data = self._fetch(url)
            if data is None:
                return _bad(f"Could not fetch image {_short(url)}")
            image = _decode(data, f"Image {number} ({_short(url)})", MAX_IMAGE_BYTES)
            if isinstance(image, str):
                return _bad(image)
            images.append(image)
        mask = None
        if mask_url is not None:
            data = self._fetch(mask_url)
            if data is None:
                return _bad(f"Could not fetch mask {_short(mask_url)}")
            if not data.startswith(PNG_MAGIC):
                return _bad("Mask must be a PNG image")
            mask = _decode(data, "Mask", MAX_MASK_BYTES)
            if isinstance(mask, str):
                return _bad(mask)
            if "A" not in mask.getbands() and "transparency" not in mask.info:
                return _bad("Mask must have an alpha channel; the edit area is where alpha is 0")
            if mask.size != images[0].size:
                return _bad(f"Mask is {mask.size[0]}x{mask.size[1]} but the first image is "
                            f"{images[0].size[0]}x{images[0].size[1]}; they must be the same size")
        return _EditInput(payload, images, mask, {**DEFAULTS, **values})


    def _edit_v1(self, headers: dict[str, str], body: bytes, _arg: str, fault: _Fault | None) -> _Reply:
        edit = self._check_edit(headers, body)
        if isinstance(edit, _Reply):
            return edit
        self._sleep(self.delay_s)
        if fault and fault.kind == "job_failed":
            return _json(422, {"error": str(fault.opts.get("error", JOB_FAILED_ERROR))})
        started = time.monotonic()
        output, actual = _render(edit, fault and fault.kind)
        with self._lock:
            self.credits -= self.cost
            remaining, cost = self.credits, self.cost
            self.edits.append(EditRecord(edit.payload, edit.images, edit.mask, output, actual))
        return _Reply(200, output, {
            "Content-Type": f"image/{edit.values['output_format']}",
            "x-remaining-credits": _num(remaining),
            "x-cost": _num(cost),
            "x-request-id": str(uuid.uuid4()),
            "x-generation-time": f"{time.monotonic() - started:.3f}",
        })

    def _edit_v2(self, headers: dict[str, str], body: bytes, _arg: str, fault: _Fault | None) -> _Reply:
        edit = self._check_edit(headers, body)
        if isinstance(edit, _Reply):
            return edit
        self._sleep(self.delay_s)
        queued, processing = self.queue_polls
        seconds = self.job_s() if callable(self.job_s) else self.job_s
        if not 0 <= seconds < 3600:
            raise ValueError(f"job_s must give seconds from 0 to an hour, not {seconds!r}")
        job = _Job(str(uuid.uuid4()), edit.values["output_format"], queued, processing, ready_at=time.time() + seconds)
        if fault and fault.kind == "job_failed":
            job.error = str(fault.opts.get("error", JOB_FAILED_ERROR))
        else:
            job.output, actual = _render(edit, fault and fault.kind)
        with self._lock:
            self._jobs[job.id] = job
            if job.output is not None:
                self.edits.append(EditRecord(edit.payload, edit.images, edit.mask, job.output, actual))
        return _json(200, {"request_id": job.id, "status": "QUEUED", **self._job_urls(job.id, legacy=True)})

    def _job_urls(self, request_id: str, legacy: bool = False) -> dict[str, str]:
        urls = {"poll_url": f"{self.url}/v1/requests/{request_id}"} if legacy else {}
        return {**urls, "status_url": f"{self.url}/v2/requests/{request_id}/status",
                "response_url": f"{self.url}/v2/requests/{request_id}"}

    def _poll(self, request_id: str) -> tuple[_Job, str] | None:
        """Count one poll and give the job's state after it; polls, not the clock, move a job along."""
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None or job.expired:
                return None
            job.polls += 1
            if job.polls <= job.queued:
                return job, "QUEUED"
            if job.polls <= job.queued + job.processing or time.time() < job.ready_at:
                return job, "PROCESSING"
            if job.error is not None:
                return job, "FAILED"
            if job.metrics is None:
                self.credits -= self.cost
                job.metrics = {"cost": self.cost, "remaining_credits": round(self.credits, 6), **DONE_METRICS}
                if not self.report_balance:
                    del job.metrics["remaining_credits"]
            return job, "COMPLETED"

    def _polled(self, headers: dict[str, str], request_id: str) -> tuple[_Job, str] | _Reply:
        if denied := self._auth(headers):
            return denied
        polled = self._poll(request_id)
        if polled is None:
            return _json(404, {"error": f"Request {request_id} not found"})
        job, state = polled
        if state == "FAILED":
            return _json(422, {"status": "FAILED", "error": job.error, "metrics": dict(FAILED_METRICS)})
        return job, state

    def _status(self, headers: dict[str, str], _body: bytes, request_id: str, _fault: _Fault | None) -> _Reply:
        polled = self._polled(headers, request_id)
        if isinstance(polled, _Reply):
            return polled
        job, state = polled
        if state == "COMPLETED":
            metrics = {"inference_time": job.metrics["inference_time"]}
            return _json(200, {"status": state, "request_id": job.id, "metrics": metrics})
        return _json(200, {"status": state, "request_id": job.id, **self._job_urls(job.id), "metrics": {}})

    def _result(self, headers: dict[str, str], _body: bytes, request_id: str, _fault: _Fault | None) -> _Reply:
        polled = self._polled(headers, request_id)
        if isinstance(polled, _Reply):
            return polled
        job, state = polled
        if state == "COMPLETED":
            return _json(200, {"status": state, "request_id": job.id,
                               "output": f"{self.url}/outputs/{job.id}.{job.fmt}", "metrics": dict(job.metrics)})
        return _json(200, {"status": state, "request_id": job.id, **self._job_urls(job.id), "metrics": {}})

    def _output(self, _headers: dict[str, str], _body: bytes, filename: str, _fault: _Fault | None) -> _Reply:
        with self._lock:
            job = self._finished_job(filename)
        if job is None:
            return _json(404, {"error": "Not found"})
        return _Reply(200, job.output, {"Content-Type": f"image/{job.fmt}"})

    def _asset(self, _headers: dict[str, str], _body: bytes, name: str, _fault: _Fault | None) -> _Reply:
        with self._lock:
            asset = self._assets.get(name)
        if asset is None:
            return _json(404, {"error": "Not found"})
        return _Reply(200, asset[0], {"Content-Type": asset[1]})

    def _upload(self, headers: dict[str, str], body: bytes, _arg: str, _fault: _Fault | None) -> _Reply:
        payload = self._json_body(headers, body)
        if isinstance(payload, _Reply):
            return payload
        entries = payload.get("data_urls")
        if not isinstance(entries, list) or not entries:
            return _bad("data_urls must be a non-empty list of data URLs")
        files = []
        for number, entry in enumerate(entries):
            match = UPLOAD_URI.fullmatch(entry) if isinstance(entry, str) else None
            try:
                data = base64.b64decode(match.group(2), validate=True) if match else b""
            except binascii.Error:
                data = b""
            if not data or isinstance(_decode(data, "upload", MAX_IMAGE_BYTES), str):
                return _bad(f"data_urls[{number}] is not a valid png, jpeg or webp base64 data URL")
            files.append((data, match.group(1)))
        # Checked all before storing any, so a bad entry leaves nothing behind.
        urls = [self.add_asset(data, f"{uuid.uuid4().hex}.{ext}") for data, ext in files]
        return _json(200, {self.upload_field: urls})

    def _credits(self, headers: dict[str, str], _body: bytes, _arg: str, _fault: _Fault | None) -> _Reply:
        if denied := self._auth(headers):
            return denied
        with self._lock:
            return _json(200, {"credits": round(self.credits, 6), "free-credits": 0.0})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Without this, stop() would wait for every handler still sleeping in a "slow" fault.
    block_on_close = False

    def __init__(self, fake: FakeSegmind) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall for seconds on some machines.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-answer (timeouts, faults) are expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSegmind/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        fake = self.server.fake
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake._record(self.command, self.path, headers, body)
        try:
            reply = fake._dispatch(self.command, self.path, headers, body)
        except Exception:
            fake.crashes.append(traceback.format_exc())
            reply = _json(500, {"error": "FakeSegmind crashed; see FakeSegmind.crashes"})
        self.close_connection = True
        if reply.reset:
            # Linger 0 turns the close into a TCP reset, so the client gets no answer at all.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            length = len(reply.body) if reply.content_length is None else reply.content_length
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except OSError:
            pass  # the client already gave up

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
