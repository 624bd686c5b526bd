"""The one request function and its helpers: every byte between the app and Segmind passes through here.

Pure and UI-free: the key is passed in, every call has explicit timeouts, and every failure is a typed
`SegmindError` carrying facts (`messages.describe` words them); none ever contains the key.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlsplit

import requests

from . import errors
from .images import sniff_format
from .params import MODEL

DEFAULT_BASE_URL = "https://api.segmind.com"
DEFAULT_UPLOAD_URL = "https://workflows-api.segmind.com/upload-asset"
TYPICAL_DURATION_S = 42.0
MAX_OUTPUT_BYTES = 64 * 2**20
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
USEFUL_HEADERS = ("x-remaining-credits", "x-cost", "x-request-id", "x-generation-time", "x-rate-limit-reset-at-utc")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 240.0  # a sync edit averages 42 s and its tail is long
    poll: float = 30.0
    download: float = 120.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent-enough calls: POSTs only on 429/5xx, GETs also on broken connections."""

    attempts: int = 3
    base_s: float = 2.0
    max_wait_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int, reset_at: float | None = None) -> float:
        """Seconds to wait before try number `attempt + 1`: until `reset_at` when Segmind named a time (a rate-limit
        reset or Retry-After), else exponential."""
        if reset_at is not None:
            return max(0.0, reset_at - time.time()) + self.base_s * 0.25 * self.jitter()
        return self.base_s * 2 ** (attempt - 1) * (0.5 + 0.5 * self.jitter())


@dataclass(frozen=True)
class PollPolicy:
    """Status polling: every second, like Segmind's own SDK, so a finished job is seen within a second (a status
    call is light: no output)."""

    first_s: float = 1.0
    factor: float = 1.0
    max_s: float = 1.0
    deadline_s: float = 600.0


@dataclass(frozen=True)
class Job:
    """A queued request, enough to pick it up again after a reload (it holds no key)."""

    request_id: str
    base_url: str
    submitted_at: float

    @classmethod
    def for_request(cls, base_url: str, request_id: str, submitted_at: float | None = None) -> Job:
        """The job's URLs are always built from the configured API address, never taken from an answer or a
        browser, so the key only ever goes to Segmind."""
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            raise errors.InvalidJob()
        return cls(request_id, base_url.rstrip("/"), float(submitted_at or time.time()))

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/v2/requests/{self.request_id}/status"

    @property
    def response_url(self) -> str:
        return f"{self.base_url}/v2/requests/{self.request_id}"


@dataclass(frozen=True)
class JobStatus:
    phase: str  # submitting, queued, processing, downloading, waiting (before a retry)
    request_id: str | None
    elapsed_s: float
    until: float | None = None  # waiting: when the retry goes out (epoch seconds)
    reason: str | None = None  # waiting: why, e.g. "rate limit (429)"


@dataclass(frozen=True)
class EditResult:
    image: bytes
    format: str
    mode: str
    elapsed_s: float
    request_id: str | None = None
    remaining_credits: float | None = None
    cost: float | None = None
    generation_time_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


_local = threading.local()


def _session() -> requests.Session:
    """One HTTP session per worker thread, so connections are reused; it keeps no cookies, since one thread
    serves many visitors."""
    if getattr(_local, "session", None) is None:
        session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        _local.session = session
    return _local.session


def edit_image(payload: dict, *, api_key: str, base_url: str = DEFAULT_BASE_URL, mode: str = "queue",
               timeouts: Timeouts = Timeouts(), retry: RetryPolicy = RetryPolicy(), poll: PollPolicy = PollPolicy(),
               on_status: Callable[[JobStatus], None] | None = None, on_submit: Callable[[Job], None] | None = None,
               stop: threading.Event | None = None) -> EditResult:
    """Run one edit on Segmind and return the image.

    `mode="queue"` submits to the v2 queue and polls it (Segmind's advice for jobs over ten seconds);
    `mode="sync"` makes the single v1 call. Both return the same `EditResult` and raise `SegmindError`s.
    """
    if stop is not None and stop.is_set():
        raise errors.Stopped(billed="no")
    if mode == "sync":
        return _edit_sync(payload, api_key=api_key, base_url=base_url, timeouts=timeouts, retry=retry,
                          on_status=on_status)
    if mode != "queue":
        raise ValueError(f"Unknown API mode {mode!r}; use 'queue' or 'sync'.")
    job = submit_job(payload, api_key=api_key, base_url=base_url, timeouts=timeouts, retry=retry, on_status=on_status)
    if on_submit:
        on_submit(job)
    return wait_for_job(job, api_key=api_key, timeouts=timeouts, retry=retry, poll=poll, on_status=on_status,
                        stop=stop)


def _edit_sync(payload, *, api_key, base_url, timeouts, retry, on_status) -> EditResult:
    started = time.monotonic()
    if on_status:
        on_status(JobStatus("processing", None, 0.0))
    url = f"{base_url.rstrip('/')}/v1/{MODEL}"
    resp = _call("POST", url, api_key=api_key, json_body=payload, timeout=(timeouts.connect, timeouts.read),
                 retry=retry, billable=True, stream=True, phase="submit", on_status=on_status)
    headers = _useful_headers(resp)
    image = _read_image(resp, request_id=headers.get("x-request-id"), phase="submit")
    return EditResult(
        image=image, format=sniff_format(image), mode="sync", elapsed_s=time.monotonic() - started,
        request_id=headers.get("x-request-id"), remaining_credits=errors.number(headers.get("x-remaining-credits")),
        cost=errors.number(headers.get("x-cost")), generation_time_s=errors.number(headers.get("x-generation-time")),
        headers=headers,
    )


def submit_job(payload: dict, *, api_key: str, base_url: str = DEFAULT_BASE_URL, timeouts: Timeouts = Timeouts(),
               retry: RetryPolicy = RetryPolicy(), on_status: Callable[[JobStatus], None] | None = None) -> Job:
    """Queue one edit on Segmind's v2 API; the answer says where to poll."""
    if on_status:
        on_status(JobStatus("submitting", None, 0.0))
    url = f"{base_url.rstrip('/')}/v2/{MODEL}"
    resp = _call("POST", url, api_key=api_key, json_body=payload, timeout=(timeouts.connect, timeouts.poll),
                 retry=retry, billable=True, phase="submit", on_status=on_status)
    data = _json(resp)
    if not data.get("request_id"):
        raise errors.IncompleteAnswer(missing="request id", status=resp.status_code, phase="submit", billed="maybe")
    return Job.for_request(base_url, str(data["request_id"]))


def wait_for_job(job: Job, *, api_key: str, timeouts: Timeouts = Timeouts(), retry: RetryPolicy = RetryPolicy(),
                 poll: PollPolicy = PollPolicy(), on_status: Callable[[JobStatus], None] | None = None,
                 stop: threading.Event | None = None) -> EditResult:
    """Poll a queued job until it completes, then fetch and download its image.

    The deadline counts from the start of this wait, so a job picked up again after a reload gets a full one.
    A failure to reach Segmind while waiting raises `Interrupted`: the job itself may still finish. A download
    that breaks raises `Truncated` (phase "download"): the job finished, and its image can be fetched again.
    """
    stop = stop or threading.Event()
    try:
        return _wait(job, api_key=api_key, timeouts=timeouts, retry=retry, poll=poll, on_status=on_status, stop=stop)
    except (errors.JobFailed, errors.JobExpired, errors.Stopped, errors.DeadlineExceeded, errors.NotAnImage,
            errors.BadKey):
        raise
    except errors.SegmindError as exc:
        if isinstance(exc, errors.Truncated) and exc.phase == "download":
            raise
        raise errors.Interrupted(exc.detail, status=exc.status, request_id=job.request_id, host=exc.host,
                                 phase=exc.phase) from exc


def _wait(job: Job, *, api_key, timeouts, retry, poll, on_status, stop) -> EditResult:
    deadline = time.time() + poll.deadline_s
    delay = poll.first_s
    while True:
        data = _json(_job_call(job, job.status_url, api_key=api_key, timeouts=timeouts, retry=retry,
                               on_status=on_status))
        status = str(data.get("status", "")).upper()
        if status == "COMPLETED":
            break
        if status == "FAILED":
            raise _job_failed(job, data)
        if on_status:
            on_status(JobStatus("processing" if status == "PROCESSING" else "queued", job.request_id,
                                time.time() - job.submitted_at))
        if stop.wait(max(0.0, min(delay, deadline - time.time()))):
            raise errors.Stopped(request_id=job.request_id, phase="wait", billed="maybe")
        if time.time() >= deadline:
            raise errors.DeadlineExceeded(deadline_s=poll.deadline_s, request_id=job.request_id, phase="wait")
        delay = min(delay * poll.factor, poll.max_s)

    result = _json(_job_call(job, job.response_url, api_key=api_key, timeouts=timeouts, retry=retry,
                             on_status=on_status))
    if str(result.get("status", "")).upper() == "FAILED":
        raise _job_failed(job, result)
    output_url = _output_url(result.get("output")) or _output_url(result.get("images"))
    if not output_url or not _may_download(output_url, job.base_url):
        raise errors.NoOutput(request_id=job.request_id, phase="wait")
    if on_status:
        on_status(JobStatus("downloading", job.request_id, time.time() - job.submitted_at))
    image = _download(output_url, job=job, timeouts=timeouts, retry=retry, on_status=on_status)
    metrics = result.get("metrics") or {}
    return EditResult(
        image=image, format=sniff_format(image), mode="queue", elapsed_s=time.time() - job.submitted_at,
        request_id=job.request_id, remaining_credits=errors.number(metrics.get("remaining_credits")),
        cost=errors.number(metrics.get("cost")), generation_time_s=errors.number(metrics.get("inference_time")),
        headers={k: str(v) for k, v in metrics.items()},
    )


def _may_download(url: str, base_url: str) -> bool:
    """Output images come from Segmind's CDN over https (or from the API's own address, as the local fake does)."""
    parts, base = urlsplit(url), urlsplit(base_url)
    return parts.scheme == "https" or (parts.scheme, parts.netloc) == (base.scheme, base.netloc)


def _download(url: str, *, job: Job, timeouts: Timeouts, retry: RetryPolicy, on_status) -> bytes:
    """Fetch the output image; the key stays home (the URL is a CDN's) and a broken transfer is tried again."""
    attempt = 0
    while True:
        attempt += 1
        resp = _call("GET", url, api_key=None, timeout=(timeouts.connect, timeouts.download), retry=retry,
                     billable=False, stream=True, phase="download", on_status=on_status, job=job)
        try:
            return _read_image(resp, request_id=job.request_id, phase="download")
        except errors.Truncated:
            if attempt >= retry.attempts:
                raise
            _pause(retry.backoff(attempt), "the download broke", retry=retry, on_status=on_status, job=job)


def _job_call(job: Job, url: str, *, api_key, timeouts, retry, on_status) -> requests.Response:
    """A status or result GET; 422 means the job FAILED and 404 that it expired, both with the request id."""
    try:
        return _call("GET", url, api_key=api_key, timeout=(timeouts.connect, timeouts.poll), retry=retry,
                     billable=False, phase="wait", on_status=on_status, job=job)
    except errors.JobFailed as exc:
        raise _job_failed(job, {"error": exc.detail}) from None
    except errors.NotFound as exc:
        raise errors.JobExpired(exc.detail, status=404, request_id=job.request_id, phase="wait") from exc


def _job_failed(job: Job, data: dict) -> errors.JobFailed:
    return errors.JobFailed(str(data.get("error") or "no reason given"), status=422, request_id=job.request_id,
                            phase="wait")


def _output_url(output) -> str | None:
    if isinstance(output, str) and output.startswith(("http://", "https://")):
        return output
    if isinstance(output, list) and output:
        return _output_url(output[0])
    if isinstance(output, dict):
        return _output_url(output.get("url"))
    return None


def upload_assets(data_urls: list[str], *, api_key: str, upload_url: str = DEFAULT_UPLOAD_URL,
                  timeouts: Timeouts = Timeouts(), retry: RetryPolicy = RetryPolicy(),
                  on_status: Callable[[JobStatus], None] | None = None) -> list[str]:
    """Store images in Segmind's storage and return their URLs (the API takes images only as URLs)."""
    resp = _call("POST", upload_url, api_key=api_key, json_body={"data_urls": data_urls},
                 timeout=(timeouts.connect, timeouts.download), retry=retry, billable=False, phase="upload",
                 on_status=on_status)
    data = _json(resp)
    urls = data.get("file_urls") or data.get("urls")
    if not isinstance(urls, list) or len(urls) != len(data_urls):
        raise errors.IncompleteAnswer(missing="urls", status=resp.status_code, phase="upload")
    return [str(u) for u in urls]


def get_credits(*, api_key: str, base_url: str = DEFAULT_BASE_URL, timeouts: Timeouts = Timeouts(),
                retry: RetryPolicy = RetryPolicy(), on_status: Callable[[JobStatus], None] | None = None) -> dict:
    """The account's balance; this call is free."""
    resp = _call("GET", f"{base_url.rstrip('/')}/v1/get-user-credits", api_key=api_key,
                 timeout=(timeouts.connect, timeouts.poll), retry=retry, billable=False, phase="credits",
                 on_status=on_status)
    return _json(resp)


def key_problem(key: str) -> str | None:
    """What makes `key` impossible to send in an HTTP header (e.g. "a line break"), or None when it can be sent.

    Callers should strip surrounding whitespace first (a pasted key often ends in a newline); whitespace left at
    either end counts as a problem here. An empty key is not a problem: Segmind answers that it got no key.
    The answer never quotes the key; word it with `messages.describe(errors.BadKey(problem))`.
    """
    found = []
    for char in key:
        if char in "\r\n":
            what = "a line break"
        elif char == "\t":
            what = "a tab"
        elif char == " ":
            what = "a space"
        elif not " " < char < "\x7f":
            # Segmind's keys are plain ASCII; anything else (even Latin-1 that would encode) is a copy accident.
            what = "a control character" if char < " " or char == "\x7f" else "a non-ASCII character"
        else:
            continue
        if what not in found:
            found.append(what)
    return " and ".join(found) or None


def _call(method: str, url: str, *, api_key: str | None, timeout: tuple[float, float], retry: RetryPolicy,
          billable: bool, json_body: dict | None = None, stream: bool = False, phase: str | None = None,
          on_status: Callable[[JobStatus], None] | None = None, job: Job | None = None) -> requests.Response:
    """One HTTP exchange with bounded retries; returns a 2xx response or raises a typed error.

    A billable POST is retried only on 429 and 5xx, never after it may have reached the model.
    Anything else (GETs, uploads) is also retried when the connection broke or timed out.
    Each wait before a retry is reported to `on_status` as a "waiting" `JobStatus`.
    """
    if api_key and (problem := key_problem(api_key)):
        raise errors.BadKey(problem, phase=phase)
    headers = {"x-api-key": api_key} if api_key else {}
    attempt = 0
    while True:
        attempt += 1
        try:
            # A redirect would carry x-api-key to wherever it points, so keyed calls never follow one.
            resp = _session().request(method, url, headers=headers, json=json_body, timeout=timeout, stream=stream,
                                      allow_redirects=api_key is None)
            if resp.status_code < 300:
                return resp
            error = errors.from_response(resp, phase=phase)
            resp.close()
            retryable = isinstance(error, (errors.RateLimited, errors.ServerError))
            reason = "rate limit (429)" if error.status == 429 else f"Segmind answered {error.status}"
        except requests.RequestException as exc:
            error = errors.from_exception(exc, url=url, timeout=timeout, billable=billable, phase=phase)
            retryable = not billable and isinstance(error, (errors.RequestTimedOut, errors.ConnectionFailed))
            reason = f"could not reach {error.host}"
        if not retryable or attempt >= retry.attempts:
            raise error
        wait = retry.backoff(attempt, error.reset_at)
        if wait > retry.max_wait_s:
            raise error
        _pause(wait, reason, retry=retry, on_status=on_status, job=job)


def _pause(wait: float, reason: str, *, retry: RetryPolicy, on_status, job: Job | None) -> None:
    """Sleep before a retry, first telling the caller why and until when, so a long wait is never silent."""
    if on_status:
        now = time.time()
        on_status(JobStatus("waiting", job.request_id if job else None, now - job.submitted_at if job else 0.0,
                            until=now + wait, reason=reason))
    retry.sleep(wait)


def _json(resp: requests.Response) -> dict:
    body = errors.maybe_json(resp)
    if not isinstance(body, dict):
        raise errors.NotJson(status=resp.status_code, content_type=resp.headers.get("content-type"))
    return body


def _read_image(resp: requests.Response, *, request_id: str | None, phase: str) -> bytes:
    """The image in a 200's body; the job behind it ran, so a broken transfer is billed="yes"."""
    chunks, size = [], 0
    try:
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise errors.TooLarge(max_mb=MAX_OUTPUT_BYTES // 2**20, status=resp.status_code,
                                      request_id=request_id, phase=phase)
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise errors.Truncated(request_id=request_id, phase=phase, billed="yes") from exc
    finally:
        resp.close()
    data = b"".join(chunks)
    if sniff_format(data) is None:
        kind = resp.headers.get("content-type", "no content type").split(";")[0]
        snippet = errors.page_text(data[:1000].decode("utf-8", "replace"))
        raise errors.NotAnImage(snippet or None, content_type=kind, status=resp.status_code, request_id=request_id,
                                phase=phase)
    return data


def _useful_headers(resp: requests.Response) -> dict[str, str]:
    return {k: resp.headers[k] for k in USEFUL_HEADERS if k in resp.headers}
