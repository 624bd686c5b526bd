"""Typed failures of a run, and how Segmind's answers map to them.

Errors carry facts (what failed, the status, Segmind's own text, whether the job may have been billed); the
sentences a person reads are written by `messages.describe`. No error ever holds the key.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

BILLED = ("no", "maybe", "yes")


class SegmindError(Exception):
    """Base of every failure talking to Segmind.

    `status`: the HTTP status when there was one; `request_id`: Segmind's id for the request; `detail`: Segmind's
    own error text; `host`: the host that was called; `phase`: "upload", "submit", "wait", "download" or
    "credits"; `billed`: whether Segmind may have run and billed the job ("no", "maybe", "yes"); `reset_at`: when
    Segmind said to try again (epoch seconds, from a rate-limit reset or Retry-After header).
    """

    billed = "no"

    def __init__(self, detail: str | None = None, *, status: int | None = None, request_id: str | None = None,
                 host: str | None = None, phase: str | None = None, billed: str | None = None,
                 reset_at: float | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.request_id = request_id
        self.host = host
        self.phase = phase
        self.reset_at = reset_at
        if billed is not None:
            if billed not in BILLED:
                raise ValueError(f"billed must be one of {BILLED}, not {billed!r}")
            self.billed = billed

    @property
    def message(self) -> str:
        return str(self)

    def __str__(self) -> str:
        # Imported here because messages imports this module.
        from .messages import describe

        return describe(self)


class BadRequest(SegmindError):
    """400, a validation 422, or a 406 about the content type: Segmind refused the request as sent."""


class AuthError(SegmindError):
    """401: the key is not valid."""


class KeyMissing(AuthError):
    """401: Segmind got no key at all."""


class BadKey(AuthError):
    """The key holds characters that cannot go into an HTTP header, so nothing was sent; `problem` names them."""

    def __init__(self, problem: str = "", **kwargs):
        super().__init__(**kwargs)
        self.problem = problem


class Forbidden(SegmindError):
    """403: the account may not use this model."""


class NotFound(SegmindError):
    """404: wrong address or model slug."""


class MethodNotAllowed(SegmindError):
    """405: the request reached the wrong route."""


class NotEnoughCredits(SegmindError):
    """406: the account's balance does not cover the run (or the request was refused before running)."""


class ModelRetired(SegmindError):
    """410: the model is no longer served."""


class RateLimited(SegmindError):
    """429: too many requests; `reset_at` says when the window opens again."""


class ServerError(SegmindError):
    """5xx: Segmind or its gateway failed."""


class RequestTimedOut(SegmindError):
    """No answer within `timeout_s`; `connecting` tells a connect timeout from a read timeout."""

    def __init__(self, detail: str | None = None, *, timeout_s: float = 0.0, connecting: bool = False, **kwargs):
        super().__init__(detail, **kwargs)
        self.timeout_s = timeout_s
        self.connecting = connecting


class ConnectionFailed(SegmindError):
    """The connection could not be made or broke; `cause` is "dns", "refused" or the exception's name."""

    def __init__(self, detail: str | None = None, *, cause: str = "", **kwargs):
        super().__init__(detail, **kwargs)
        self.cause = cause


class MaybeBilled(SegmindError):
    """The request was sent but no answer came back: Segmind may still run and bill it. `timeout_s` is set when
    the wait for the answer timed out (else the connection broke)."""

    billed = "maybe"

    def __init__(self, detail: str | None = None, *, timeout_s: float | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.timeout_s = timeout_s


class NotAnImage(SegmindError):
    """A 200 whose body is not an image; `content_type` is what came instead, `detail` a snippet of it."""

    billed = "maybe"

    def __init__(self, detail: str | None = None, *, content_type: str | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.content_type = content_type


class TooLarge(NotAnImage):
    """A 200 whose body is larger than `max_mb`, which no image of this model is."""

    def __init__(self, detail: str | None = None, *, max_mb: int = 0, **kwargs):
        super().__init__(detail, **kwargs)
        self.max_mb = max_mb


class NoOutput(NotAnImage):
    """A completed job whose answer holds no usable output image address."""

    billed = "yes"


class Truncated(SegmindError):
    """An answer that arrived incomplete. With phase "download" the job finished and only the image's transfer
    broke, so it can be downloaded again."""


class NotJson(SegmindError):
    """An answer that should have been JSON and was `content_type` instead."""

    def __init__(self, detail: str | None = None, *, content_type: str | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.content_type = content_type


class IncompleteAnswer(SegmindError):
    """A JSON answer without what the next step needs; `missing` is "request id" or "urls"."""

    def __init__(self, detail: str | None = None, *, missing: str = "", **kwargs):
        super().__init__(detail, **kwargs)
        self.missing = missing


class InvalidJob(SegmindError):
    """A saved job whose request id is not one Segmind would give, so it is never polled."""


class JobFailed(SegmindError):
    """The queued job ended FAILED; `detail` holds Segmind's own error text."""


class JobExpired(SegmindError):
    """The queued job is no longer known (results are kept for an hour)."""


class DeadlineExceeded(SegmindError):
    """The job did not finish within `deadline_s`."""

    billed = "maybe"

    def __init__(self, detail: str | None = None, *, deadline_s: float = 0.0, **kwargs):
        super().__init__(detail, **kwargs)
        self.deadline_s = deadline_s


class Interrupted(SegmindError):
    """Segmind could not be reached while waiting for a queued job that may still finish (and be billed);
    the error that ended the wait is its `__cause__`."""

    billed = "maybe"


class Stopped(SegmindError):
    """The user stopped: before sending (billed "no") or while waiting for a job (billed "maybe")."""


def _host(url: str) -> str:
    return re.sub(r"^https?://([^/]+).*$", r"\1", url)


def from_exception(exc: requests.RequestException, *, url, timeout, billable, phase=None) -> SegmindError:
    """The typed error for a failure to get any answer; `billable` marks a request that may have reached the model."""
    kw = {"host": _host(url), "phase": phase}
    if isinstance(exc, requests.ConnectTimeout):
        return RequestTimedOut(timeout_s=timeout[0], connecting=True, **kw)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return Truncated(billed="maybe" if billable else "no", **kw)
    if isinstance(exc, requests.ConnectionError) and _never_sent(exc):
        text = str(exc)
        return ConnectionFailed(cause="dns" if "NameResolution" in text or "resolve" in text else "refused", **kw)
    if billable:
        return MaybeBilled(timeout_s=timeout[1] if isinstance(exc, requests.ReadTimeout) else None, **kw)
    if isinstance(exc, requests.ReadTimeout):
        return RequestTimedOut(timeout_s=timeout[1], connecting=False, **kw)
    return ConnectionFailed(cause=type(exc).__name__, **kw)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the failure happened while connecting, so the request cannot have reached the model."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


def from_response(resp: requests.Response, *, phase: str | None = None) -> SegmindError:
    """The typed error for a non-2xx answer."""
    status = resp.status_code
    text = _error_text(resp)
    kw = {"status": status, "request_id": resp.headers.get("x-request-id"), "host": _host(resp.url or ""),
          "phase": phase}
    if status == 401:
        return (KeyMissing if "missing" in text.lower() else AuthError)(text, **kw)
    if status == 406 and ("content type" in text.lower() or "content-type" in text.lower()):
        return BadRequest(text, **kw)
    if status == 422:
        body = maybe_json(resp)
        if isinstance(body, dict) and str(body.get("status", "")).upper() == "FAILED":
            return JobFailed(str(body.get("error") or "no reason given"), **kw)
    if status == 429 or status >= 500:
        kw["reset_at"] = rate_limit_reset(resp)
    kind = {400: BadRequest, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 406: NotEnoughCredits,
            410: ModelRetired, 422: BadRequest, 429: RateLimited}.get(status)
    return (kind or (ServerError if status >= 500 else SegmindError))(text, **kw)


def _error_text(resp: requests.Response) -> str:
    body = maybe_json(resp)
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:500]
    return page_text(resp.text or "")[:200] or resp.reason or "no details"


def page_text(text: str) -> str:
    """An HTML page's title (or its text without tags), for messages about answers that should have been JSON."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", title.group(1) if title else text)).strip()


def maybe_json(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None


def rate_limit_reset(resp: requests.Response) -> float | None:
    """When to try again: the later of Segmind's rate-limit reset header and a standard Retry-After (seconds or
    an HTTP date)."""
    moments = []
    value = (resp.headers.get("x-rate-limit-reset-at-utc") or "").strip()
    epoch = number(value)
    if epoch is not None:
        moments.append(epoch / 1000 if epoch > 1e11 else epoch)
    elif value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moments.append((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
        except ValueError:
            pass
    retry_after = (resp.headers.get("retry-after") or "").strip()
    if (seconds := number(retry_after)) is not None:
        moments.append(time.time() + seconds)
    elif retry_after:
        try:
            moment = parsedate_to_datetime(retry_after)
            moments.append((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
        except (TypeError, ValueError):
            pass
    return max(moments) if moments else None


def number(value) -> float | None:
    """A finite float, or None: a header such as `x-cost: nan` must not become a NaN in a record."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None
