"""Typed failures of a run, and how Segmind's answers map to them.

Each error carries a message that says what happened and what to do; none ever contains the key.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import requests

from .params import MODEL


class SegmindError(Exception):
    """Base of every failure talking to Segmind. `status` is the HTTP status when there was one."""

    billed = False

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None,
                 detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class BadRequest(SegmindError):
    """400 or a validation 422: Segmind refused the parameters."""


class AuthError(SegmindError):
    """401: the key is missing or not valid."""


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

    def __init__(self, message: str, *, reset_at: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class ServerError(SegmindError):
    """5xx: Segmind or its gateway failed."""


class RequestTimedOut(SegmindError):
    """No answer within the connect or read timeout."""


class ConnectionFailed(SegmindError):
    """The connection could not be made (refused, DNS failure)."""


class MaybeBilled(SegmindError):
    """The request was sent but the connection broke before the answer: Segmind may still run and bill it."""

    billed = True


class NotAnImage(SegmindError):
    """A 200 whose body is not an image."""

    billed = True


class Truncated(SegmindError):
    """A 200 whose body arrived incomplete."""

    billed = True


class JobFailed(SegmindError):
    """The queued job ended FAILED; `detail` holds Segmind's own error text."""


class JobExpired(SegmindError):
    """The queued job is no longer known (results are kept for an hour)."""


class DeadlineExceeded(SegmindError):
    """The job did not finish within the overall deadline."""


class Interrupted(SegmindError):
    """Segmind could not be reached while waiting for a queued job that may still finish (and be billed)."""

    billed = True


class Stopped(SegmindError):
    """The user stopped waiting."""


def from_exception(exc: requests.RequestException, *, url, timeout, billable) -> SegmindError:
    """The typed error for a failure to get any answer; `billable` marks a request that may have reached the model."""
    host = re.sub(r"^https?://([^/]+).*$", r"\1", url)
    if isinstance(exc, requests.ConnectTimeout):
        return RequestTimedOut(f"Could not connect to {host} within {timeout[0]:g} s. Check the network "
                               "and SEGMIND_BASE_URL, then try again.")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return Truncated(f"The answer from {host} arrived incomplete (the connection broke mid-transfer). "
                         "Try again; if it was an edit, it may have been billed.")
    if isinstance(exc, requests.ConnectionError) and _never_sent(exc):
        text = str(exc)
        if "NameResolution" in text or "resolve" in text:
            return ConnectionFailed(f"Could not find {host} (DNS lookup failed). Check the address in "
                                    "SEGMIND_BASE_URL and the network.")
        return ConnectionFailed(f"{host} refused the connection. Check SEGMIND_BASE_URL and that the "
                                "service is up, then try again.")
    if billable:
        what = (f"no reply within {timeout[1]:g} s" if isinstance(exc, requests.ReadTimeout)
                else "the connection broke")
        return MaybeBilled(f"The request reached {host} but no answer came back ({what}). Segmind may "
                           "still run and bill it, so it was not retried: check your Segmind request "
                           "history before trying again.")
    if isinstance(exc, requests.ReadTimeout):
        return RequestTimedOut(f"{host} did not answer within {timeout[1]:g} s. Try again.")
    return ConnectionFailed(f"The connection to {host} broke ({type(exc).__name__}). Try again.")


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the failure happened while connecting, so the request cannot have reached the model."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


def from_response(resp: requests.Response) -> SegmindError:
    """The typed error for a non-2xx answer, with a message that says what to do."""
    status = resp.status_code
    text = _error_text(resp)
    request_id = resp.headers.get("x-request-id")
    kw = {"status": status, "request_id": request_id, "detail": text}
    if status == 401:
        if "missing" in text.lower():
            return AuthError("Segmind got no API key (401). Paste your key into the API key box.", **kw)
        return AuthError("Segmind rejected the API key (401): it is invalid or has been revoked. Copy a "
                         "key from your Segmind console and paste it again.", **kw)
    if status == 403:
        return Forbidden(f"Segmind refused access to {MODEL} for this account (403): {text}. Check your "
                         "team's permissions; retrying will not help.", **kw)
    if status == 404:
        return NotFound(f"Segmind answered 404 (not found): {text}. Check SEGMIND_BASE_URL.", **kw)
    if status == 405:
        return MethodNotAllowed("Segmind answered 405 (method not allowed): the address does not take this "
                                "request. Check SEGMIND_BASE_URL.", **kw)
    if status == 406:
        if "content type" in text.lower() or "content-type" in text.lower():
            return BadRequest(f"Segmind rejected the request's content type (406): {text}.", **kw)
        return NotEnoughCredits(f"Not enough Segmind credits for this run (406): {text}. Top up your "
                                "account, or pick a lower quality or smaller size.", **kw)
    if status == 410:
        return ModelRetired(f"Segmind has retired {MODEL} (410): {text}. This playground cannot run it "
                            "any more.", **kw)
    if status == 422:
        body = maybe_json(resp)
        if isinstance(body, dict) and str(body.get("status", "")).upper() == "FAILED":
            detail = str(body.get("error") or "no reason given")
            return JobFailed(f"Segmind ran the request and it failed: {detail}. It was not billed; adjust "
                             "the prompt or settings and try again.", status=422, request_id=request_id,
                             detail=detail)
        return BadRequest(f"Segmind could not validate the request (422): {text}. Check the prompt, "
                          "images and settings.", **kw)
    if status == 429:
        reset_at = rate_limit_reset(resp)
        when = (f" The limit resets at {datetime.fromtimestamp(reset_at, timezone.utc):%H:%M:%S} UTC."
                if reset_at else "")
        return RateLimited(f"Segmind's rate limit was hit (429).{when} Wait a little and try again; "
                           "free accounts allow 5 requests a minute.", reset_at=reset_at, **kw)
    if status >= 500:
        return ServerError(f"Segmind failed with {status}: {text}. Nothing was billed; try again in a "
                           "minute.", **kw)
    if status == 400:
        return BadRequest(f"Segmind refused the request (400): {text}. Check the prompt, images and "
                          "settings.", **kw)
    return SegmindError(f"Segmind answered {status}: {text}.", **kw)


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
    """When a rate limit opens again: the later of Segmind's reset header and a standard Retry-After."""
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
    retry_after = number(resp.headers.get("retry-after"))
    if retry_after is not None:
        moments.append(time.time() + retry_after)
    return max(moments) if moments else None


def number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
