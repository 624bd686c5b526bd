"""The request function against the strict fake over real HTTP: the exact body sent, each error, the retry policy."""

import base64
import io
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from playground import errors, messages, segmind
from playground.params import DEFAULTS, build_payload

KEY = "test-key"
FAST_POLL = segmind.PollPolicy(first_s=0.01, factor=1.0, max_s=0.01, deadline_s=20)


def png_data_url(size=(64, 48), colour=(200, 30, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def payload(**params):
    return build_payload("make it blue", [png_data_url()], None, {**DEFAULTS, **params})


class Sleeps(list):
    """Records the waits the retry policy asks for, instead of waiting."""

    def __call__(self, seconds):
        self.append(seconds)


def policy(sleeps=None, attempts=3):
    return segmind.RetryPolicy(attempts=attempts, sleep=sleeps if sleeps is not None else Sleeps(),
                               jitter=lambda: 0.0)


def sync(fake, body=None, key=KEY, **kw):
    kw.setdefault("retry", policy())
    return segmind.edit_image(body or payload(), api_key=key, base_url=fake.url, mode="sync", **kw)


def queued(fake, body=None, key=KEY, **kw):
    kw.setdefault("retry", policy())
    kw.setdefault("poll", FAST_POLL)
    return segmind.edit_image(body or payload(), api_key=key, base_url=fake.url, mode="queue", **kw)


def test_sync_sends_exactly_the_documented_body_and_headers(fake):
    body = payload(size="1024x1024", quality="high", output_format="webp", output_compression=80)
    result = sync(fake, body)
    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/gpt-image-1-edit-mini")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["content-type"].startswith("application/json")
    assert sent.json == {"prompt": "make it blue", "image_urls": [body["image_urls"][0]], "size": "1024x1024",
                         "quality": "high", "background": "opaque", "output_format": "webp",
                         "output_compression": 80, "moderation": "auto"}
    assert result.format == "webp" and result.mode == "sync"
    assert Image.open(io.BytesIO(result.image)).size == (1024, 1024)
    assert result.remaining_credits == pytest.approx(50.0 - 0.028)
    assert result.cost == pytest.approx(0.028)
    assert result.request_id


def test_output_compression_from_a_slider_is_sent_as_an_integer(fake):
    sync(fake, build_payload("p", [png_data_url()], None, {**DEFAULTS, "output_compression": 60.0}))
    assert fake.requests[-1].json["output_compression"] == 60
    assert isinstance(fake.requests[-1].json["output_compression"], int)


def test_queue_mode_submits_polls_and_downloads(fake):
    fake.queue_polls = (2, 2)
    phases = []
    result = queued(fake, on_status=lambda s: phases.append(s.phase))
    assert result.mode == "queue" and result.format == "png"
    assert fake.count("POST", "/v2/gpt-image-1-edit-mini") == 1
    assert fake.count("GET", "/v2/requests/") >= 5
    assert phases[0] == "submitting" and "queued" in phases and "processing" in phases
    assert phases[-1] == "downloading"
    assert result.remaining_credits == pytest.approx(50.0 - 0.028)
    assert result.cost == pytest.approx(0.028)
    download = [r for r in fake.requests if r.path.startswith("/outputs/")]
    assert download and "x-api-key" not in download[0].headers


@pytest.mark.parametrize("mode", ["sync", "queue"])
@pytest.mark.parametrize(("fault", "error", "words", "api_words"), [
    ("400", errors.BadRequest, "refused", "Check the prompt"),
    ("403", errors.Forbidden, "permissions", "permissions"),
    ("404", errors.NotFound, "Check SEGMIND_BASE_URL", "tell the app's owner"),
    ("405", errors.MethodNotAllowed, "method not allowed", "tell the app's owner"),
    ("406", errors.NotEnoughCredits, "Top up", "Top up"),
    ("410", errors.ModelRetired, "retired", "retired"),
    ("422", errors.BadRequest, "validate", "validate"),
    ("429", errors.RateLimited, "rate limit", "Wait a little"),
    ("500", errors.ServerError, "try again", "Nothing was billed"),
    ("502", errors.ServerError, "502", "502"),
    ("503", errors.ServerError, "503", "503"),
    ("504", errors.ServerError, "504", "504"),
])
def test_each_error_status_has_its_own_message(fake, mode, fault, error, words, api_words):
    fake.fail(fault, times=5)
    run = sync if mode == "sync" else queued
    with pytest.raises(error) as caught:
        run(fake)
    exc = caught.value
    assert (exc.status, exc.phase, exc.billed) == (int(fault), "submit", "no")
    page, api = messages.describe(exc), messages.describe(exc, surface="api")
    assert str(exc) == page and words.lower() in page.lower() and api_words.lower() in api.lower()
    for text in (page, api):
        assert KEY not in text and "<html" not in text.lower() and "Resume" not in text


def test_a_rejected_content_type_is_not_mistaken_for_missing_credits(fake):
    fake.fail("406", error="Invalid content type")
    with pytest.raises(errors.BadRequest, match="content type"):
        sync(fake)


def test_missing_and_invalid_keys_are_told_apart(fake):
    with pytest.raises(errors.KeyMissing, match="no API key"):
        sync(fake, key="")
    with pytest.raises(errors.AuthError, match="rejected the API key") as caught:
        sync(fake, key="SG_wrongwrongwrong")
    assert "SG_wrongwrongwrong" not in str(caught.value)


@pytest.mark.parametrize("fault", ["json200", "html200"])
def test_a_200_that_is_not_an_image(fake, fault):
    fake.fail(fault)
    with pytest.raises(errors.NotAnImage, match="instead of an image"):
        sync(fake)


def test_a_truncated_image(fake):
    fake.fail("truncated")
    with pytest.raises(errors.Truncated, match="incomplete"):
        sync(fake)


def test_a_truncated_download_in_queue_mode_is_retried(fake):
    fake.fail("truncated", on="download")
    assert queued(fake).format == "png"
    assert fake.count("GET", "/outputs/") == 2


def test_rate_limit_is_retried_after_the_reset_header(fake):
    fake.fail("429", times=2, reset_in=3.0)
    sleeps = Sleeps()
    result = sync(fake, retry=policy(sleeps))
    assert result.format == "png"
    assert fake.count("POST", "/v1/") == 3
    assert len(sleeps) == 2 and all(1.5 < s <= 3.5 for s in sleeps)


def test_retry_after_is_honoured_when_present(fake):
    fake.fail("429", reset_in=0.0, retry_after=7)
    sleeps = Sleeps()
    sync(fake, retry=policy(sleeps))
    assert len(sleeps) == 1 and 6 <= sleeps[0] <= 7.5


def test_rate_limit_reset_far_away_is_not_waited_for(fake):
    fake.fail("429", reset_in=3600)
    sleeps = Sleeps()
    with pytest.raises(errors.RateLimited, match="resets at"):
        sync(fake, retry=policy(sleeps))
    assert sleeps == [] and fake.count("POST", "/v1/") == 1


def test_server_errors_are_retried_a_bounded_number_of_times_with_growing_waits(fake):
    fake.fail("503", times=10)
    sleeps = Sleeps()
    with pytest.raises(errors.ServerError):
        sync(fake, retry=policy(sleeps, attempts=3))
    assert fake.count("POST", "/v1/") == 3
    assert sleeps[1] > sleeps[0] > 0


@pytest.mark.parametrize("fault", ["400", "403", "406", "410", "422"])
def test_client_errors_are_never_retried(fake, fault):
    fake.fail(fault, times=5)
    with pytest.raises(errors.SegmindError):
        queued(fake)
    assert fake.count("POST", "/v2/") == 1


def test_a_broken_connection_after_sending_is_not_retried(fake):
    fake.fail("reset")
    with pytest.raises(errors.MaybeBilled, match="may still run and bill"):
        sync(fake)
    assert fake.count("POST", "/v1/") == 1


def test_a_read_timeout_after_sending_is_not_retried(fake):
    fake.fail("slow", seconds=1.5)
    with pytest.raises(errors.MaybeBilled, match=r"no reply within 0\.5 s"):
        sync(fake, timeouts=segmind.Timeouts(connect=2, read=0.5))
    assert fake.count("POST", "/v1/") == 1


def test_status_polls_are_retried_on_broken_connections(fake):
    fake.fail("reset", on="status", times=2)
    assert queued(fake).format == "png"
    assert fake.count("POST", "/v2/") == 1


def test_status_poll_timeouts_are_retried(fake):
    fake.fail("slow", on="status", seconds=1.0)
    result = queued(fake, timeouts=segmind.Timeouts(connect=2, poll=0.3))
    assert result.format == "png"


def test_a_failed_job_shows_segmind_s_error_and_the_request_id(fake):
    fake.fail("job_failed", error="Prompt violates the content policy")
    with pytest.raises(errors.JobFailed) as caught:
        queued(fake)
    assert "Prompt violates the content policy" in caught.value.message
    assert caught.value.request_id and caught.value.request_id in caught.value.message


def test_an_expired_job_names_its_request_id(fake):
    fake.queue_polls = (50, 0)
    seen = []

    def expire_on_first_status(status):
        if status.request_id and not seen:
            seen.append(status.request_id)
            fake.expire(status.request_id)

    with pytest.raises(errors.JobExpired) as caught:
        queued(fake, on_status=expire_on_first_status)
    assert seen[0] in caught.value.message


def test_the_overall_deadline_names_the_request_id(fake):
    fake.queue_polls = (10_000, 0)
    with pytest.raises(errors.DeadlineExceeded) as caught:
        queued(fake, poll=segmind.PollPolicy(first_s=0.01, factor=1.0, max_s=0.01, deadline_s=0.3))
    assert caught.value.request_id in caught.value.message


def test_stop_ends_the_wait_and_warns_about_billing(fake):
    fake.queue_polls = (10_000, 0)
    stop = threading.Event()
    with pytest.raises(errors.Stopped, match="may still finish and bill"):
        queued(fake, stop=stop, on_status=lambda s: s.phase == "queued" and stop.set())


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.ConnectionFailed, match="refused"):
        segmind.edit_image(payload(), api_key=KEY, base_url=f"http://127.0.0.1:{port}", mode="sync",
                           retry=policy())


def test_connect_timeout_is_safe_to_report_and_never_reaches_the_model():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]  # a full backlog: further connects hang
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            with pytest.raises(errors.RequestTimedOut, match="Could not connect"):
                segmind.edit_image(payload(), api_key=KEY, base_url=f"http://127.0.0.1:{port}", mode="sync",
                                   retry=policy(), timeouts=segmind.Timeouts(connect=0.3, read=1))
        finally:
            for filler in fillers:
                filler.close()


def test_dns_failure():
    with pytest.raises(errors.ConnectionFailed, match="DNS"):
        segmind.edit_image(payload(), api_key=KEY, base_url="http://no-such-host.invalid", mode="sync",
                           retry=policy())


@pytest.mark.parametrize("field", ["file_urls", "urls"])
def test_upload_assets_reads_both_answer_shapes(fake, field):
    fake.upload_field = field
    urls = segmind.upload_assets([png_data_url(), png_data_url()], api_key=KEY, upload_url=fake.upload_url)
    assert len(urls) == 2 and all(u.startswith(fake.url) for u in urls)
    assert fake.requests[-1].json == {"data_urls": [png_data_url(), png_data_url()]}


def test_get_credits(fake):
    assert segmind.get_credits(api_key=KEY, base_url=fake.url)["credits"] == pytest.approx(50.0)
    with pytest.raises(errors.AuthError):
        segmind.get_credits(api_key="nope", base_url=fake.url)


def test_the_format_comes_from_the_bytes_not_the_header(fake):
    fake.fail("wrong_format")
    result = sync(fake, payload(output_format="jpeg"))
    assert result.format == "png"


def test_stop_before_sending_sends_nothing(fake):
    stop = threading.Event()
    stop.set()
    with pytest.raises(errors.Stopped, match="nothing was billed"):
        queued(fake, stop=stop)
    assert fake.requests == []


def test_lost_contact_while_waiting_keeps_the_request_id_and_says_how_to_resume(fake):
    fake.fail("503", on="status", times=10)
    with pytest.raises(errors.Interrupted, match="press Resume") as caught:
        queued(fake)
    assert caught.value.request_id in caught.value.message and "Nothing was billed" not in caught.value.message


def test_a_job_picked_up_long_after_submitting_still_gets_a_full_deadline(fake):
    job = segmind.submit_job(payload(), api_key=KEY, base_url=fake.url, retry=policy())
    old = segmind.Job.for_request(fake.url, job.request_id, time.time() - 3000)
    result = segmind.wait_for_job(old, api_key=KEY, poll=FAST_POLL, retry=policy())
    assert result.format == "png" and result.elapsed_s > 2999


@pytest.mark.parametrize("request_id", ["../../etc", "a/b", "", "x" * 101, None])
def test_a_job_is_only_ever_polled_at_the_configured_api(request_id):
    with pytest.raises(errors.SegmindError, match="no valid request id"):
        segmind.Job.for_request("https://api.segmind.com", request_id)
    assert segmind.Job.for_request("https://api.segmind.com/", "abc-123").status_url == (
        "https://api.segmind.com/v2/requests/abc-123/status")


def test_an_output_url_on_a_foreign_plain_http_host_is_not_fetched(fake):
    # The fake names its outputs by 127.0.0.1; seen from "localhost" that is another origin, and not https.
    port = fake.url.rsplit(":", 1)[1]
    with pytest.raises(errors.NotAnImage, match="no usable output image address"):
        segmind.edit_image(payload(), api_key=KEY, base_url=f"http://localhost:{port}", poll=FAST_POLL,
                           retry=policy())
    assert fake.count("GET", "/outputs/") == 0


class Recorder(BaseHTTPRequestHandler):
    """A second host: records the requests that reach it, sets a cookie, and can redirect elsewhere."""

    def do_GET(self):
        self.server.seen.append(dict(self.headers))
        if self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + "/v1/get-user-credits")
        else:
            self.send_response(200)
            self.send_header("Set-Cookie", "visitor=someone-else; Path=/")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"credits": 1.0}')

    def log_message(self, *args):
        pass


@pytest.fixture
def host():
    def start(redirect_to=None):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen, server.redirect_to = [], redirect_to
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_port}"

    servers = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_key_never_follows_a_redirect_to_another_host(host):
    elsewhere, elsewhere_url = host()
    _, api_url = host(redirect_to=elsewhere_url)
    with pytest.raises(errors.SegmindError):
        segmind.get_credits(api_key="SG_secret", base_url=api_url, retry=policy())
    assert elsewhere.seen == []


def test_no_cookie_carries_over_from_one_call_to_the_next(host):
    server, url = host()
    segmind.get_credits(api_key="SG_one", base_url=url, retry=policy())
    segmind.get_credits(api_key="SG_two", base_url=url, retry=policy())
    assert all("Cookie" not in seen for seen in server.seen)


def test_retry_after_on_a_server_error_is_honoured(fake):
    fake.fail("503", retry_after=3)
    sleeps = Sleeps()
    assert sync(fake, retry=policy(sleeps)).format == "png"
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.5


def test_retry_after_as_an_http_date_is_honoured(fake):
    fake.fail("502", retry_after=formatdate(time.time() + 5, usegmt=True))
    sleeps = Sleeps()
    assert sync(fake, retry=policy(sleeps)).format == "png"
    assert len(sleeps) == 1 and 3.5 < sleeps[0] <= 5.5


def test_a_rate_limit_on_the_upload_is_reported_as_waiting(fake):
    fake.fail("429", on="upload", reset_in=2.0)
    sleeps, statuses = Sleeps(), []
    urls = segmind.upload_assets([png_data_url()], api_key=KEY, upload_url=fake.upload_url, retry=policy(sleeps),
                                 on_status=statuses.append)
    assert len(urls) == 1 and len(sleeps) == 1
    [waiting] = statuses
    assert waiting.phase == "waiting" and waiting.reason == "rate limit (429)"
    assert 1.0 < waiting.until - time.time() <= 2.5
    assert waiting.until == pytest.approx(time.time() + sleeps[0], abs=1.0)


def test_a_retried_status_poll_is_reported_as_waiting_with_the_request_id(fake):
    fake.fail("503", on="status")
    statuses = []
    queued(fake, on_status=statuses.append)
    waiting = [s for s in statuses if s.phase == "waiting"]
    assert len(waiting) == 1 and waiting[0].reason == "Segmind answered 503"
    assert waiting[0].request_id == statuses[-1].request_id and waiting[0].until is not None


def test_job_status_keeps_its_positional_fields():
    status = segmind.JobStatus("queued", "abc", 1.5)
    assert (status.phase, status.request_id, status.elapsed_s, status.until, status.reason) == (
        "queued", "abc", 1.5, None, None)


UNSENDABLE_KEYS = {"SG_é…": "a non-ASCII character", "ключ": "a non-ASCII character",
                   "SG_0123\n": "a line break", "SG_01\r\n23": "a line break", "SG_01 23": "a space",
                   "SG_01\t23": "a tab", " SG_0123": "a space", "SG_\x0001": "a control character"}


@pytest.mark.parametrize("key", list(UNSENDABLE_KEYS))
def test_key_problem_names_what_cannot_be_sent_without_quoting_the_key(key):
    assert segmind.key_problem(key) == UNSENDABLE_KEYS[key]


@pytest.mark.parametrize("key", ["SG_0123456789abcdef", "", "any-printable_ASCII.key~"])
def test_key_problem_accepts_sendable_keys(key):
    assert segmind.key_problem(key) is None


@pytest.mark.parametrize("call", ["sync", "queue", "upload", "credits", "wait"])
@pytest.mark.parametrize("key", list(UNSENDABLE_KEYS))
def test_an_unsendable_key_is_refused_before_anything_is_sent(fake, key, call):
    job = segmind.Job.for_request(fake.url, "abc-123")
    run = {"sync": lambda: sync(fake, key=key), "queue": lambda: queued(fake, key=key),
           "upload": lambda: segmind.upload_assets([png_data_url()], api_key=key, upload_url=fake.upload_url,
                                                   retry=policy()),
           "credits": lambda: segmind.get_credits(api_key=key, base_url=fake.url, retry=policy()),
           "wait": lambda: segmind.wait_for_job(job, api_key=key, poll=FAST_POLL, retry=policy())}[call]
    with pytest.raises(errors.BadKey) as caught:
        run()
    assert fake.requests == []
    assert isinstance(caught.value, errors.AuthError) and caught.value.problem == UNSENDABLE_KEYS[key]
    text = str(caught.value)
    assert text.startswith("The API key contains characters that cannot be sent (")
    assert key.strip() not in text and "copy the key again from your Segmind console" in text


def test_a_download_that_keeps_breaking_is_reported_as_such_not_as_lost_track(fake):
    fake.fail("truncated", on="download", times=3)
    with pytest.raises(errors.Truncated) as caught:
        queued(fake)
    error = caught.value
    assert fake.count("GET", "/outputs/") == 3
    assert (error.phase, error.billed) == ("download", "yes")
    assert error.request_id and error.request_id in str(error) and "Resume" in str(error)
    api = messages.describe(error, surface="api")
    assert error.request_id in api and "request history" in api and "Resume" not in api


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", float("nan"), float("inf")])
def test_number_refuses_values_that_are_not_finite(value):
    assert errors.number(value) is None


@pytest.mark.parametrize(("value", "expected"), [("0.028", 0.028), ("12", 12.0), (3, 3.0), (None, None),
                                                 ("", None), ("cheap", None)])
def test_number_reads_finite_values(value, expected):
    assert errors.number(value) == expected
