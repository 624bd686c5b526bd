"""The sentences people read about a failure, worded from the facts each error carries.

`surface="page"` is the browser page, which has a Resume button and an API key box. `surface="api"` is an `/edit`
caller through gradio_client, which has neither, so it is told to pass `api_key` and to look in its Segmind
request history instead of pressing Resume.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from . import errors, images
from . import mask as masks
from .params import MODEL

SURFACES = ("page", "api")
# Segmind's own error text is quoted; should it ever echo a key, the key is blanked out.
KEY_LIKE = re.compile(r"SG_[A-Za-z0-9]+")


def describe(exc: Exception, *, surface: str = "page") -> str:
    """What went wrong and what to do, for a person on `surface` ("page" or "api"); never contains the key."""
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, not {surface!r}")
    if isinstance(exc, errors.SegmindError):
        return _segmind(exc, surface == "page")
    if isinstance(exc, (images.ImageInputError, masks.MaskError)):
        return str(exc)  # written for people where they are raised, and the same on both surfaces
    return f"Something unexpected went wrong ({type(exc).__name__}). Nothing was changed; try again."


def _segmind(e: errors.SegmindError, page: bool) -> str:
    rid, host, status = e.request_id, e.host or "Segmind", e.status
    said = KEY_LIKE.sub("SG_…", e.detail or "no details")
    setting = "SEGMIND_UPLOAD_URL" if e.phase == "upload" else "SEGMIND_BASE_URL"
    fix_address = f"Check {setting}." if page else f"This app's {setting} setting looks wrong; tell the app's owner."
    for_request = f" for request {rid}." if rid else "."
    resume = ("press Resume to fetch its result (Segmind keeps it for an hour)." if page else
              "check your Segmind request history for its result (kept for an hour) before calling /edit again.")
    paste = "paste it again" if page else "pass it as api_key"

    if isinstance(e, errors.BadKey):
        return (f"The API key contains characters that cannot be sent ({e.problem}); copy the key again from your "
                f"Segmind console" + ("." if page else " and pass it as api_key."))
    if isinstance(e, errors.KeyMissing):
        return "Segmind got no API key (401). " + (
            "Paste your key into the API key box." if page else "Pass your key as the api_key argument of /edit.")
    if isinstance(e, errors.AuthError):
        return (f"Segmind rejected the API key (401): it is invalid or has been revoked. Copy a key from your "
                f"Segmind console and {paste}.")
    if isinstance(e, errors.Forbidden):
        return (f"Segmind refused access to {MODEL} for this account (403): {said}. Check your team's "
                "permissions; retrying will not help.")
    if isinstance(e, errors.NotFound):
        return f"Segmind answered 404 (not found): {said}. {fix_address}"
    if isinstance(e, errors.MethodNotAllowed):
        return f"Segmind answered 405 (method not allowed): the address does not take this request. {fix_address}"
    if isinstance(e, errors.NotEnoughCredits):
        return (f"Not enough Segmind credits for this run (406): {said}. Top up your account, or pick a lower "
                "quality or smaller size.")
    if isinstance(e, errors.ModelRetired):
        return f"Segmind has retired {MODEL} (410): {said}. This playground cannot run it any more."
    if isinstance(e, errors.BadRequest):
        if status == 406:
            return (f"Segmind rejected the request's content type (406): {said}. This is a fault in this app, "
                    "not in your inputs; please report it.")
        if status == 422:
            return f"Segmind could not validate the request (422): {said}. Check the prompt, images and settings."
        return f"Segmind refused the request ({status}): {said}. Check the prompt, images and settings."
    if isinstance(e, errors.JobFailed):
        return (f"Segmind ran {f'request {rid}' if rid else 'the request'} and it failed: {said}. It was not "
                "billed; adjust the prompt or settings and try again.")
    if isinstance(e, errors.RateLimited):
        when = f" The limit resets at {_utc(e.reset_at)} UTC." if e.reset_at else ""
        return (f"Segmind's rate limit was hit (429).{when} Wait a little and try again; free accounts allow 5 "
                "requests a minute.")
    if isinstance(e, errors.ServerError):
        return f"Segmind failed with {status}: {said}. Nothing was billed; try again in a minute."
    if isinstance(e, errors.RequestTimedOut):
        if not e.connecting:
            return f"{host} did not answer within {e.timeout_s:g} s. Try again."
        return f"Could not connect to {host} within {e.timeout_s:g} s. " + (
            f"Check the network and {setting}, then try again." if page else
            "Try again in a minute; if it keeps happening, tell the app's owner.")
    if isinstance(e, errors.ConnectionFailed):
        if e.cause not in ("dns", "refused"):
            return f"The connection to {host} broke ({e.cause}). Try again."
        what = (f"Could not find {host} (DNS lookup failed)." if e.cause == "dns" else
                f"{host} refused the connection.")
        if not page:
            return (f"{what} This app cannot reach Segmind right now; try again later, and tell the app's owner if "
                    "it keeps happening.")
        return what + (f" Check the address in {setting} and the network." if e.cause == "dns" else
                       f" Check {setting} and that the service is up, then try again.")
    if isinstance(e, errors.MaybeBilled):
        what = f"no reply within {e.timeout_s:g} s" if e.timeout_s else "the connection broke"
        return (f"The request reached {host} but no answer came back ({what}). Segmind may still run and bill "
                "it, so it was not retried: check your Segmind request history before trying again.")
    if isinstance(e, errors.TooLarge):
        return (f"The answer is larger than {e.max_mb} MB, which is not an image this model makes. It may have "
                f"been billed; check your Segmind request history{for_request}")
    if isinstance(e, errors.NoOutput):
        return (f"Request {rid} completed but Segmind's answer holds no usable output image address. It was "
                "probably billed; check your Segmind request history.")
    if isinstance(e, errors.NotAnImage):
        snippet = f" ({e.detail[:120]})" if e.detail else ""
        return (f"Segmind answered 200 but sent {e.content_type or 'something'} instead of an image{snippet}. "
                "It may have been billed; check your Segmind request history.")
    if isinstance(e, errors.Truncated):
        if e.phase == "download":
            return (f"Request {rid} finished and was billed, but its image arrived incomplete (the connection "
                    "broke mid-transfer), even after retrying. " + (
                        "Press Resume to download it again (Segmind keeps it for an hour)." if page else
                        f"Calling /edit again is not needed and would bill a new edit: find request {rid} in your "
                        "Segmind request history and download its output there (kept for an hour)."))
        if e.billed == "yes":
            return ("The image arrived incomplete (the connection broke mid-transfer). It was probably billed; "
                    f"check your Segmind request history{for_request}")
        return f"The answer from {host} arrived incomplete (the connection broke mid-transfer). " + (
            "It may have been billed: check your Segmind request history before trying again."
            if e.billed == "maybe" else "Try again.")
    if isinstance(e, errors.NotJson):
        return (f"Segmind answered {status} with something other than JSON "
                f"({e.content_type or 'no content type'}). Try again later.")
    if isinstance(e, errors.IncompleteAnswer):
        if e.missing == "urls":
            return "Segmind's storage did not return a URL for every image. Try again, or " + (
                "set SEGMIND_IMAGE_TRANSPORT=inline to send images inside the request." if page else
                "pass the images as image_urls (http links) instead.")
        return ("Segmind queued the request but its answer has no request id, so the result cannot be fetched. "
                "It may still run and be billed: check your Segmind request history. " + (
                    "Try sync mode (SEGMIND_API_MODE=sync)." if page else
                    "Tell the app's owner; sync mode (SEGMIND_API_MODE=sync) avoids the queue."))
    if isinstance(e, errors.InvalidJob):
        return "The job has no valid request id; " + ("run the edit again." if page else "call /edit again.")
    if isinstance(e, errors.JobExpired):
        return (f"Segmind no longer knows request {rid} (results are kept for one hour after submitting). "
                + ("Run the edit again." if page else "Call /edit again."))
    if isinstance(e, errors.DeadlineExceeded):
        return f"Request {rid} did not finish within {e.deadline_s:g} s. Segmind may still finish and bill it: " + (
            "press Resume to keep waiting, or check your Segmind request history." if page else
            "check your Segmind request history for its result before calling /edit again.")
    if isinstance(e, errors.Interrupted):
        cause = e.__cause__
        reason = (f"Segmind answered {status}" if status else
                  _segmind(cause, page).split(". ")[0] if isinstance(cause, errors.SegmindError) else
                  "Segmind could not be reached")
        return f"Lost track of request {rid} while waiting ({reason}). The job may still finish and be billed: {resume}"
    if isinstance(e, errors.Stopped):
        if e.billed == "no":
            return "Stopped before the request was sent; nothing was billed."
        return f"Stopped waiting for request {rid}. Segmind may still finish and bill it; {resume}"
    if status:
        return f"Segmind answered {status}: {said}. Try again later."
    return said if e.detail else "Something went wrong talking to Segmind. Try again."


def _utc(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, timezone.utc):%H:%M:%S}"
