"""Typed failures of a run: each carries a message that says what happened and what to do, never the key."""

from __future__ import annotations


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


class Stopped(SegmindError):
    """The user stopped waiting."""
