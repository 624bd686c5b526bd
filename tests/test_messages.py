"""Every error, worded for the page (which has Resume and a key box) and for an /edit caller (which has neither)."""

import copy
import inspect
import pickle

import pytest

from playground import errors, messages
from playground.images import ImageInputError
from playground.mask import MaskError

RID = "req-123"
HOST = "api.segmind.com"


def interrupted(cause):
    """An Interrupted as wait_for_job raises it: the error that ended the wait is its cause."""
    try:
        raise errors.Interrupted(status=cause.status, request_id=RID, host=HOST, phase="wait") from cause
    except errors.Interrupted as exc:
        return exc


CASES = [
    pytest.param(
        lambda: errors.KeyMissing("Missing Authorization or x-api-key in header", status=401),
        'Segmind got no API key (401). Paste your key into the API key box.',
        'Segmind got no API key (401). Pass your key as the api_key argument of /edit.',
        id='KeyMissing'),
    pytest.param(
        lambda: errors.AuthError("Unauthorized. API key is invalid", status=401),
        'Segmind rejected the API key (401): it is invalid or has been revoked. Copy a key from your '
        'Segmind console and paste it again.',
        'Segmind rejected the API key (401): it is invalid or has been revoked. Copy a key from your '
        'Segmind console and pass it as api_key.',
        id='AuthError'),
    pytest.param(
        lambda: errors.BadKey("a line break"),
        'The API key contains characters that cannot be sent (a line break); copy the key again from '
        'your Segmind console.',
        'The API key contains characters that cannot be sent (a line break); copy the key again from '
        'your Segmind console and pass it as api_key.',
        id='BadKey'),
    pytest.param(
        lambda: errors.Forbidden("Your team does not have access", status=403),
        'Segmind refused access to gpt-image-1-edit-mini for this account (403): Your team does not '
        "have access. Check your team's permissions; retrying will not help.",
        'Segmind refused access to gpt-image-1-edit-mini for this account (403): Your team does not '
        "have access. Check your team's permissions; retrying will not help.",
        id='Forbidden'),
    pytest.param(
        lambda: errors.NotFound("Not found", status=404, phase="submit"),
        'Segmind answered 404 (not found): Not found. Check SEGMIND_BASE_URL.',
        "Segmind answered 404 (not found): Not found. This app's SEGMIND_BASE_URL setting looks "
        "wrong; tell the app's owner.",
        id='NotFound'),
    pytest.param(
        lambda: errors.NotFound("Not found", status=404, phase="upload"),
        'Segmind answered 404 (not found): Not found. Check SEGMIND_UPLOAD_URL.',
        "Segmind answered 404 (not found): Not found. This app's SEGMIND_UPLOAD_URL setting looks "
        "wrong; tell the app's owner.",
        id='NotFound-upload'),
    pytest.param(
        lambda: errors.MethodNotAllowed("405 Method Not Allowed", status=405),
        'Segmind answered 405 (method not allowed): the address does not take this request. Check '
        'SEGMIND_BASE_URL.',
        'Segmind answered 405 (method not allowed): the address does not take this request. This '
        "app's SEGMIND_BASE_URL setting looks wrong; tell the app's owner.",
        id='MethodNotAllowed'),
    pytest.param(
        lambda: errors.NotEnoughCredits("Not enough credits: balance 0", status=406),
        'Not enough Segmind credits for this run (406): Not enough credits: balance 0. Top up your '
        'account, or pick a lower quality or smaller size.',
        'Not enough Segmind credits for this run (406): Not enough credits: balance 0. Top up your '
        'account, or pick a lower quality or smaller size.',
        id='NotEnoughCredits'),
    pytest.param(
        lambda: errors.BadRequest("Invalid content type", status=406),
        "Segmind rejected the request's content type (406): Invalid content type. This is a fault in "
        'this app, not in your inputs; please report it.',
        "Segmind rejected the request's content type (406): Invalid content type. This is a fault in "
        'this app, not in your inputs; please report it.',
        id='BadRequest-406'),
    pytest.param(
        lambda: errors.ModelRetired("deprecated", status=410),
        'Segmind has retired gpt-image-1-edit-mini (410): deprecated. This playground cannot run it '
        'any more.',
        'Segmind has retired gpt-image-1-edit-mini (410): deprecated. This playground cannot run it '
        'any more.',
        id='ModelRetired'),
    pytest.param(
        lambda: errors.BadRequest("Bad request", status=400),
        'Segmind refused the request (400): Bad request. Check the prompt, images and settings.',
        'Segmind refused the request (400): Bad request. Check the prompt, images and settings.',
        id='BadRequest-400'),
    pytest.param(
        lambda: errors.BadRequest("Validation Error", status=422),
        'Segmind could not validate the request (422): Validation Error. Check the prompt, images '
        'and settings.',
        'Segmind could not validate the request (422): Validation Error. Check the prompt, images '
        'and settings.',
        id='BadRequest-422'),
    pytest.param(
        lambda: errors.JobFailed("Prompt is Mandatory", status=422),
        'Segmind ran the request and it failed: Prompt is Mandatory. It was not billed; adjust the '
        'prompt or settings and try again.',
        'Segmind ran the request and it failed: Prompt is Mandatory. It was not billed; adjust the '
        'prompt or settings and try again.',
        id='JobFailed'),
    pytest.param(
        lambda: errors.JobFailed("Prompt is Mandatory", status=422, request_id=RID),
        'Segmind ran request req-123 and it failed: Prompt is Mandatory. It was not billed; adjust '
        'the prompt or settings and try again.',
        'Segmind ran request req-123 and it failed: Prompt is Mandatory. It was not billed; adjust '
        'the prompt or settings and try again.',
        id='JobFailed-id'),
    pytest.param(
        lambda: errors.RateLimited("Rate limit exceeded", status=429, reset_at=1_700_000_000),
        "Segmind's rate limit was hit (429). The limit resets at 22:13:20 UTC. Wait a little and try "
        'again; free accounts allow 5 requests a minute.',
        "Segmind's rate limit was hit (429). The limit resets at 22:13:20 UTC. Wait a little and try "
        'again; free accounts allow 5 requests a minute.',
        id='RateLimited'),
    pytest.param(
        lambda: errors.RateLimited("Rate limit exceeded", status=429),
        "Segmind's rate limit was hit (429). Wait a little and try again; free accounts allow 5 "
        'requests a minute.',
        "Segmind's rate limit was hit (429). Wait a little and try again; free accounts allow 5 "
        'requests a minute.',
        id='RateLimited-noreset'),
    pytest.param(
        lambda: errors.ServerError("Service temporarily unavailable", status=503),
        'Segmind failed with 503: Service temporarily unavailable. Nothing was billed; try again in '
        'a minute.',
        'Segmind failed with 503: Service temporarily unavailable. Nothing was billed; try again in '
        'a minute.',
        id='ServerError'),
    pytest.param(
        lambda: errors.SegmindError("I'm a teapot", status=418),
        "Segmind answered 418: I'm a teapot. Try again later.",
        "Segmind answered 418: I'm a teapot. Try again later.",
        id='Other'),
    pytest.param(
        lambda: errors.SegmindError(),
        'Something went wrong talking to Segmind. Try again.',
        'Something went wrong talking to Segmind. Try again.',
        id='Bare'),
    pytest.param(
        lambda: errors.RequestTimedOut(timeout_s=10, connecting=True, host=HOST),
        'Could not connect to api.segmind.com within 10 s. Check the network and SEGMIND_BASE_URL, '
        'then try again.',
        'Could not connect to api.segmind.com within 10 s. Try again in a minute; if it keeps '
        "happening, tell the app's owner.",
        id='Timeout-connect'),
    pytest.param(
        lambda: errors.RequestTimedOut(timeout_s=30, connecting=False, host=HOST),
        'api.segmind.com did not answer within 30 s. Try again.',
        'api.segmind.com did not answer within 30 s. Try again.',
        id='Timeout-read'),
    pytest.param(
        lambda: errors.ConnectionFailed(cause="dns", host=HOST),
        'Could not find api.segmind.com (DNS lookup failed). Check the address in SEGMIND_BASE_URL '
        'and the network.',
        'Could not find api.segmind.com (DNS lookup failed). This app cannot reach Segmind right '
        "now; try again later, and tell the app's owner if it keeps happening.",
        id='Conn-dns'),
    pytest.param(
        lambda: errors.ConnectionFailed(cause="refused", host=HOST),
        'api.segmind.com refused the connection. Check SEGMIND_BASE_URL and that the service is up, '
        'then try again.',
        'api.segmind.com refused the connection. This app cannot reach Segmind right now; try again '
        "later, and tell the app's owner if it keeps happening.",
        id='Conn-refused'),
    pytest.param(
        lambda: errors.ConnectionFailed(cause="InvalidHeader", host=HOST),
        'The connection to api.segmind.com broke (InvalidHeader). Try again.',
        'The connection to api.segmind.com broke (InvalidHeader). Try again.',
        id='Conn-broke'),
    pytest.param(
        lambda: errors.MaybeBilled(timeout_s=240, host=HOST),
        'The request reached api.segmind.com but no answer came back (no reply within 240 s). '
        'Segmind may still run and bill it, so it was not retried: check your Segmind request '
        'history before trying again.',
        'The request reached api.segmind.com but no answer came back (no reply within 240 s). '
        'Segmind may still run and bill it, so it was not retried: check your Segmind request '
        'history before trying again.',
        id='MaybeBilled-timeout'),
    pytest.param(
        lambda: errors.MaybeBilled(host=HOST),
        'The request reached api.segmind.com but no answer came back (the connection broke). Segmind '
        'may still run and bill it, so it was not retried: check your Segmind request history before '
        'trying again.',
        'The request reached api.segmind.com but no answer came back (the connection broke). Segmind '
        'may still run and bill it, so it was not retried: check your Segmind request history before '
        'trying again.',
        id='MaybeBilled-broke'),
    pytest.param(
        lambda: errors.NotAnImage("Segmind", content_type="text/html", status=200),
        'Segmind answered 200 but sent text/html instead of an image (Segmind). It may have been '
        'billed; check your Segmind request history.',
        'Segmind answered 200 but sent text/html instead of an image (Segmind). It may have been '
        'billed; check your Segmind request history.',
        id='NotAnImage'),
    pytest.param(
        lambda: errors.TooLarge(max_mb=64, request_id=RID),
        'The answer is larger than 64 MB, which is not an image this model makes. It may have been '
        'billed; check your Segmind request history for request req-123.',
        'The answer is larger than 64 MB, which is not an image this model makes. It may have been '
        'billed; check your Segmind request history for request req-123.',
        id='TooLarge'),
    pytest.param(
        lambda: errors.NoOutput(request_id=RID),
        "Request req-123 completed but Segmind's answer holds no usable output image address. It was "
        'probably billed; check your Segmind request history.',
        "Request req-123 completed but Segmind's answer holds no usable output image address. It was "
        'probably billed; check your Segmind request history.',
        id='NoOutput'),
    pytest.param(
        lambda: errors.Truncated(request_id=RID, phase="download", billed="yes"),
        'Request req-123 finished and was billed, but its image arrived incomplete (the connection '
        'broke mid-transfer), even after retrying. Press Resume to download it again (Segmind keeps '
        'it for an hour).',
        'Request req-123 finished and was billed, but its image arrived incomplete (the connection '
        'broke mid-transfer), even after retrying. Calling /edit again is not needed and would bill '
        'a new edit: find request req-123 in your Segmind request history and download its output '
        'there (kept for an hour).',
        id='Truncated-download'),
    pytest.param(
        lambda: errors.Truncated(request_id=RID, phase="submit", billed="yes"),
        'The image arrived incomplete (the connection broke mid-transfer). It was probably billed; '
        'check your Segmind request history for request req-123.',
        'The image arrived incomplete (the connection broke mid-transfer). It was probably billed; '
        'check your Segmind request history for request req-123.',
        id='Truncated-sync'),
    pytest.param(
        lambda: errors.Truncated(host=HOST, billed="maybe"),
        'The answer from api.segmind.com arrived incomplete (the connection broke mid-transfer). It '
        'may have been billed: check your Segmind request history before trying again.',
        'The answer from api.segmind.com arrived incomplete (the connection broke mid-transfer). It '
        'may have been billed: check your Segmind request history before trying again.',
        id='Truncated-maybe'),
    pytest.param(
        lambda: errors.Truncated(host=HOST),
        'The answer from api.segmind.com arrived incomplete (the connection broke mid-transfer). Try '
        'again.',
        'The answer from api.segmind.com arrived incomplete (the connection broke mid-transfer). Try '
        'again.',
        id='Truncated-no'),
    pytest.param(
        lambda: errors.NotJson(status=200, content_type="text/html"),
        'Segmind answered 200 with something other than JSON (text/html). Try again later.',
        'Segmind answered 200 with something other than JSON (text/html). Try again later.',
        id='NotJson'),
    pytest.param(
        lambda: errors.IncompleteAnswer(missing="request id", status=200, billed="maybe"),
        'Segmind queued the request but its answer has no request id, so the result cannot be '
        'fetched. It may still run and be billed: check your Segmind request history. Try sync mode '
        '(SEGMIND_API_MODE=sync).',
        'Segmind queued the request but its answer has no request id, so the result cannot be '
        "fetched. It may still run and be billed: check your Segmind request history. Tell the app's "
        'owner; sync mode (SEGMIND_API_MODE=sync) avoids the queue.',
        id='Incomplete-id'),
    pytest.param(
        lambda: errors.IncompleteAnswer(missing="urls", status=200, phase="upload"),
        "Segmind's storage did not return a URL for every image. Try again, or set "
        'SEGMIND_IMAGE_TRANSPORT=inline to send images inside the request.',
        "Segmind's storage did not return a URL for every image. Try again, or pass the images as "
        'image_urls (http links) instead.',
        id='Incomplete-urls'),
    pytest.param(
        lambda: errors.InvalidJob(),
        'The job has no valid request id; run the edit again.',
        'The job has no valid request id; call /edit again.',
        id='InvalidJob'),
    pytest.param(
        lambda: errors.JobExpired("Request req-123 not found", status=404, request_id=RID),
        'Segmind no longer knows request req-123 (results are kept for one hour after submitting). '
        'Run the edit again.',
        'Segmind no longer knows request req-123 (results are kept for one hour after submitting). '
        'Call /edit again.',
        id='JobExpired'),
    pytest.param(
        lambda: errors.DeadlineExceeded(deadline_s=600, request_id=RID),
        'Request req-123 did not finish within 600 s. Segmind may still finish and bill it: press '
        'Resume to keep waiting, or check your Segmind request history.',
        'Request req-123 did not finish within 600 s. Segmind may still finish and bill it: check '
        'your Segmind request history for its result before calling /edit again.',
        id='Deadline'),
    pytest.param(
        lambda: interrupted(errors.ServerError("x", status=503)),
        'Lost track of request req-123 while waiting (Segmind answered 503). The job may still '
        'finish and be billed: press Resume to fetch its result (Segmind keeps it for an hour).',
        'Lost track of request req-123 while waiting (Segmind answered 503). The job may still '
        'finish and be billed: check your Segmind request history for its result (kept for an hour) '
        'before calling /edit again.',
        id='Interrupted-503'),
    pytest.param(
        lambda: interrupted(errors.ConnectionFailed(cause="refused", host=HOST)),
        'Lost track of request req-123 while waiting (api.segmind.com refused the connection). The '
        'job may still finish and be billed: press Resume to fetch its result (Segmind keeps it for '
        'an hour).',
        'Lost track of request req-123 while waiting (api.segmind.com refused the connection). The '
        'job may still finish and be billed: check your Segmind request history for its result (kept '
        'for an hour) before calling /edit again.',
        id='Interrupted-refused'),
    pytest.param(
        lambda: errors.Stopped(billed="no"),
        'Stopped before the request was sent; nothing was billed.',
        'Stopped before the request was sent; nothing was billed.',
        id='Stopped-before'),
    pytest.param(
        lambda: errors.Stopped(request_id=RID, billed="maybe"),
        'Stopped waiting for request req-123. Segmind may still finish and bill it; press Resume to '
        'fetch its result (Segmind keeps it for an hour).',
        'Stopped waiting for request req-123. Segmind may still finish and bill it; check your '
        'Segmind request history for its result (kept for an hour) before calling /edit again.',
        id='Stopped-wait'),
]


@pytest.mark.parametrize(("make", "page", "api"), CASES)
def test_each_error_is_worded_for_the_page_and_for_the_api(make, page, api):
    error = make()
    assert messages.describe(error) == page
    assert messages.describe(error, surface="page") == page
    assert messages.describe(error, surface="api") == api


@pytest.mark.parametrize(("make", "page", "api"), CASES)
def test_str_of_an_error_is_its_page_wording(make, page, api):
    error = make()
    assert str(error) == error.message == page


@pytest.mark.parametrize(("make", "page", "api"), CASES)
def test_the_api_wording_never_mentions_what_only_the_page_has(make, page, api):
    assert "Resume" not in api and "API key box" not in api and "paste" not in api.lower()


@pytest.mark.parametrize(("make", "page", "api"), CASES)
def test_an_error_survives_a_copy_with_its_facts(make, page, api):
    error = make()
    for twin in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(twin) is type(error) and twin.__dict__ == error.__dict__
        if not isinstance(error, errors.Interrupted):  # its reason comes from __cause__, which a copy drops
            assert str(twin) == page


def test_every_error_class_has_a_case():
    classes = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.SegmindError)}
    covered = {type(param.values[0]()) for param in CASES}
    assert classes - covered == set()


def test_billing_facts():
    assert errors.ServerError(status=503).billed == "no"
    assert errors.MaybeBilled().billed == errors.Interrupted().billed == "maybe"
    assert errors.NoOutput().billed == "yes"
    assert errors.Truncated(billed="yes").billed == "yes" and errors.Truncated().billed == "no"
    with pytest.raises(ValueError):
        errors.SegmindError(billed="perhaps")


@pytest.mark.parametrize("surface", ["page", "api"])
@pytest.mark.parametrize("make", [errors.AuthError, errors.NotEnoughCredits, errors.ServerError, errors.BadRequest])
def test_a_key_echoed_in_segmind_s_text_is_blanked_out(make, surface):
    error = make("Unauthorized key SG_0123456789abcdef for this account", status=400)
    text = messages.describe(error, surface=surface)
    assert "0123456789abcdef" not in text


@pytest.mark.parametrize("surface", ["page", "api"])
def test_errors_of_the_inputs_keep_their_own_words(surface):
    assert messages.describe(ImageInputError("photo.png is empty."), surface=surface) == "photo.png is empty."
    assert messages.describe(MaskError("The mask is all black."), surface=surface) == "The mask is all black."


@pytest.mark.parametrize("surface", ["page", "api"])
def test_anything_else_is_unexpected_and_its_text_is_not_shown(surface):
    text = messages.describe(KeyError("SG_secret"), surface=surface)
    assert text == "Something unexpected went wrong (KeyError). Nothing was changed; try again."


def test_an_unknown_surface_is_refused():
    with pytest.raises(ValueError, match="surface"):
        messages.describe(errors.SegmindError(), surface="email")
