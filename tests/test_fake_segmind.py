"""The fake Segmind must be as strict as the contract, or client tests against it prove nothing."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests
from fake_segmind import FakeSegmind
from PIL import Image

from playground.params import MAX_IMAGES, MODEL

RED = (255, 0, 0, 255)
GREEN = (0, 255, 0, 255)
CYAN = (0, 255, 255, 255)
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def solid(size=(64, 64), color=RED, mode="RGBA", fmt="PNG") -> bytes:
    return encode(Image.new(mode, size, color[: len(mode)] if mode != "P" else 0), fmt)


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def half_mask(size=(64, 64)) -> bytes:
    """Opaque everywhere except the left half, which is the area to edit."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return encode(mask)


def body(**extra) -> dict:
    return {"prompt": "make it blue", "image_urls": [uri(solid())], **extra}


def post(fake: FakeSegmind, payload: object, version: str = "v1", key: str | None = "test-key", timeout=10):
    headers = {"x-api-key": key} if key is not None else {}
    return requests.post(f"{fake.url}/{version}/{MODEL}", json=payload, headers=headers, timeout=timeout)


def get(fake: FakeSegmind, url: str, key: str | None = "test-key"):
    headers = {"x-api-key": key} if key is not None else {}
    return requests.get(url if url.startswith("http") else fake.url + url, headers=headers, timeout=10)


def decoded(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_missing_and_wrong_keys_get_the_two_401_bodies(fake, version):
    missing = post(fake, body(), version, key=None)
    wrong = post(fake, body(), version, key="SG_0123456789abcdef")
    assert (missing.status_code, missing.json()) == (401, {"error": "Missing Authorization or x-api-key in header"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Unauthorized. API key is invalid or may have expired. Please check your API key."}


def test_key_is_checked_before_content_type(fake):
    response = requests.post(f"{fake.url}/v1/{MODEL}", data="prompt=x", timeout=10)
    assert response.status_code == 401


def test_non_json_content_type_is_406(fake):
    response = requests.post(f"{fake.url}/v1/{MODEL}", data=json.dumps(body()), timeout=10,
                             headers={"x-api-key": "test-key", "Content-Type": "text/plain"})
    assert (response.status_code, response.json()) == (406, {"error": "Invalid content type"})


def test_json_content_type_with_charset_is_accepted(fake):
    response = requests.post(f"{fake.url}/v1/{MODEL}", data=json.dumps(body()), timeout=10,
                             headers={"x-api-key": "test-key", "Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def masked(mask: bytes, image_size=(64, 64)) -> dict:
    return body(image_urls=[uri(solid(image_size))], mask=uri(mask))


BAD_REQUESTS = {
    "not an object": ([body()], "JSON object"),
    "empty prompt": (body(prompt=""), "Prompt"),
    "blank prompt": (body(prompt="   "), "Prompt"),
    "prompt not a string": (body(prompt=5), "Prompt"),
    "prompt too long": (body(prompt="x" * 32001), "32000"),
    "no images": (body(image_urls=[]), "image_urls"),
    "image_urls a bare string": (body(image_urls=uri(solid())), "image_urls"),
    "17 images": (body(image_urls=[uri(solid())] * (MAX_IMAGES + 1)), "image_urls"),
    "bad size": (body(size="512x512"), "Size"),
    "bad quality": (body(quality="ultra"), "Quality"),
    "compression 0": (body(output_compression=0), "between"),
    "compression 101": (body(output_compression=101), "between"),
    "compression float": (body(output_compression=80.0), "JSON integer"),
    "compression string": (body(output_compression="80"), "whole number"),
    "transparent jpeg": (body(background="transparent", output_format="jpeg"), "transparent"),
    "unknown field": (body(n=2), "'n'"),
    "unfetchable url": (body(image_urls=["https://example.com/a.png"]), "Could not fetch image https://example.com/a.png"),
    "not an image": (body(image_urls=[uri(b"definitely not pixels")]), "could not be decoded"),
    "gif image": (body(image_urls=[uri(solid(mode="P", fmt="GIF"), "image/gif")]), "png, jpeg or webp"),
    "mask not a string": (body(mask=5), "mask"),
    "jpeg mask": (masked(solid(mode="RGB", fmt="JPEG")), "PNG"),
    "mask without alpha": (masked(solid(mode="RGB")), "alpha"),
    "mask of the wrong size": (masked(half_mask((32, 32))), "same size"),
    "unfetchable mask": (body(mask="https://example.com/mask.png"), "Could not fetch mask"),
}


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize(("payload", "needle"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_are_400_and_cost_nothing(fake, payload, needle, version):
    response = post(fake, payload, version)
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]
    assert fake.credits == 50.0
    assert fake.edits == []


def test_invalid_json_is_400(fake):
    response = requests.post(f"{fake.url}/v1/{MODEL}", data=b'{"prompt": NaN', timeout=10,
                             headers={"x-api-key": "test-key", "Content-Type": "application/json"})
    assert response.status_code == 400


def test_not_enough_credits_is_406_naming_balance_and_cost(fake):
    fake.credits = 0.01
    response = post(fake, body())
    assert response.status_code == 406
    assert response.json() == {"error": "Not enough credits: balance 0.01, this run costs 0.028"}
    assert fake.credits == 0.01


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_success_returns_image_bytes_in_the_asked_format_with_headers(fake, fmt):
    response = post(fake, body(output_format=fmt, output_compression=80))
    assert response.status_code == 200
    assert response.content.startswith(MAGIC[fmt])
    assert response.headers["Content-Type"] == f"image/{fmt}"
    assert float(response.headers["x-cost"]) == pytest.approx(0.028)
    assert float(response.headers["x-remaining-credits"]) == pytest.approx(50.0 - 0.028)
    assert uuid.UUID(response.headers["x-request-id"]).version == 4
    assert float(response.headers["x-generation-time"]) >= 0
    assert decoded(response).size == (1024, 1024)
    assert fake.credits == pytest.approx(50.0 - 0.028)
    [record] = fake.edits
    assert record.output == response.content and record.output_format == fmt
    assert record.payload["output_format"] == fmt
    assert [image.size for image in record.images] == [(64, 64)] and record.mask is None


@pytest.mark.parametrize(("source", "size", "expected"), [
    ((64, 64), "auto", (1024, 1024)),
    ((120, 100), "auto", (1024, 1024)),
    ((200, 100), "auto", (1536, 1024)),
    ((100, 200), "auto", (1024, 1536)),
    ((64, 64), "1536x1024", (1536, 1024)),
])
def test_output_size_follows_the_size_parameter(fake, source, size, expected):
    response = post(fake, body(image_urls=[uri(solid(source))], size=size))
    assert decoded(response).size == expected


def test_without_mask_the_whole_image_is_inverted_and_opaque(fake):
    image = decoded(post(fake, body()))
    assert image.mode == "RGB"
    assert image.getpixel((10, 10)) == CYAN[:3] and image.getpixel((1000, 1000)) == CYAN[:3]


def test_mask_turns_exactly_the_transparent_area_green(fake):
    image = decoded(post(fake, masked(half_mask()))).convert("RGBA")
    assert image.getpixel((5, 500)) == GREEN and image.getpixel((505, 500)) == GREEN
    assert image.getpixel((520, 500)) == RED and image.getpixel((1020, 10)) == RED
    assert fake.edits[0].mask.size == (64, 64)


def test_palette_mask_with_transparency_is_accepted(fake):
    mask = Image.new("P", (64, 64), 1)
    mask.putpalette([0, 0, 0, 255, 255, 255])
    mask.paste(0, (0, 0, 32, 64))
    buf = io.BytesIO()
    mask.save(buf, "PNG", transparency=0)
    response = post(fake, masked(buf.getvalue()))
    assert response.status_code == 200, response.text
    image = decoded(response).convert("RGBA")
    assert image.getpixel((5, 5)) == GREEN and image.getpixel((1000, 5)) == RED


def test_null_mask_and_typed_asset_urls_are_accepted(fake):
    url = fake.add_asset(solid((80, 64)))
    assert requests.get(url, timeout=10).content == solid((80, 64))
    response = post(fake, body(image_urls=[url, uri(solid())], mask=None))
    assert response.status_code == 200
    assert [image.size for image in fake.edits[0].images] == [(80, 64), (64, 64)]


def test_unknown_asset_name_is_unfetchable(fake):
    response = post(fake, body(image_urls=[f"{fake.url}/assets/nothing.png"]))
    assert response.status_code == 400 and "Could not fetch image" in response.json()["error"]


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_transparent_background_clears_the_outer_eighth(fake, fmt):
    image = decoded(post(fake, body(background="transparent", output_format=fmt)))
    assert image.mode == "RGBA"
    assert image.getpixel((10, 500))[3] == 0 and image.getpixel((500, 1020))[3] == 0
    assert image.getpixel((500, 500))[3] == 255


def test_compression_changes_jpeg_bytes(fake):
    gradient = Image.linear_gradient("L").convert("RGB")
    payload = body(image_urls=[uri(encode(gradient))], output_format="jpeg")
    best = post(fake, {**payload, "output_compression": 100}).content
    worst = post(fake, {**payload, "output_compression": 1}).content
    assert len(worst) < len(best)


def test_concurrent_edits_each_charge_once(fake):
    responses = []
    threads = [threading.Thread(target=lambda: responses.append(post(fake, body()))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [200] * 6
    assert fake.credits == pytest.approx(50.0 - 6 * 0.028)
    assert len(fake.edits) == 6 and fake.count("POST", f"/v1/{MODEL}") == 6


@pytest.mark.parametrize("field", ["file_urls", "urls"])
def test_upload_asset_answers_the_configured_shape_and_serves_the_bytes(fake, field):
    fake.upload_field = field
    png, jpeg = solid(), solid(mode="RGB", fmt="JPEG")
    response = requests.post(fake.upload_url, json={"data_urls": [uri(png), uri(jpeg, "image/jpeg")]},
                             headers={"x-api-key": "test-key"}, timeout=10)
    assert response.status_code == 200
    assert list(response.json()) == [field]
    urls = response.json()[field]
    assert urls[0].startswith(f"{fake.url}/assets/") and urls[0].endswith(".png") and urls[1].endswith(".jpeg")
    assert requests.get(urls[0], timeout=10).content == png
    assert requests.get(urls[1], timeout=10).headers["Content-Type"] == "image/jpeg"
    assert post(fake, body(image_urls=urls)).status_code == 200


@pytest.mark.parametrize("entries", [[], ["https://example.com/a.png"], [uri(solid(), "image/gif")],
                                     [uri(b"junk")], ["data:image/png;base64,!!!"], [5]])
def test_upload_asset_rejects_bad_entries(fake, entries):
    response = requests.post(fake.upload_url, json={"data_urls": entries}, headers={"x-api-key": "test-key"},
                             timeout=10)
    assert response.status_code == 400 and response.json()["error"]


def test_upload_asset_needs_the_key(fake):
    response = requests.post(fake.upload_url, json={"data_urls": [uri(solid())]}, timeout=10)
    assert response.status_code == 401


def test_v2_lifecycle_moves_by_poll_count_and_charges_on_completion(fake):
    fake.queue_polls = (2, 1)
    submit = post(fake, body(output_format="webp"), "v2")
    assert submit.status_code == 200
    job = submit.json()
    rid = job["request_id"]
    base = f"{fake.url}/v2/requests/{rid}"
    assert job == {"request_id": rid, "status": "QUEUED", "poll_url": f"{fake.url}/v1/requests/{rid}",
                   "status_url": f"{base}/status", "response_url": base}
    assert fake.credits == 50.0 and len(fake.edits) == 1

    statuses = [get(fake, job["status_url"]).json() for _ in range(4)]
    assert [s["status"] for s in statuses] == ["QUEUED", "QUEUED", "PROCESSING", "COMPLETED"]
    assert statuses[0] == {"status": "QUEUED", "request_id": rid, "status_url": job["status_url"],
                           "response_url": job["response_url"], "metrics": {}}
    assert statuses[3] == {"status": "COMPLETED", "request_id": rid, "metrics": {"inference_time": 1.23}}
    assert fake.credits == pytest.approx(50.0 - 0.028)

    result = get(fake, job["response_url"]).json()
    assert result["output"] == f"{fake.url}/outputs/{rid}.webp"
    assert result["metrics"]["cost"] == 0.028
    assert result["metrics"]["remaining_credits"] == pytest.approx(50.0 - 0.028)
    assert {"inference_time", "queue_time", "total_time"} <= set(result["metrics"])
    assert get(fake, job["poll_url"]).json()["output"] == result["output"]
    assert fake.credits == pytest.approx(50.0 - 0.028)

    image = requests.get(result["output"], timeout=10)
    assert image.headers["Content-Type"] == "image/webp" and image.content == fake.edits[0].output
    assert image.content.startswith(b"RIFF")
    assert fake.count("GET", "/v2/requests/") == 5 and fake.count("GET", f"/v2/requests/{rid}/status") == 4


def test_v2_result_before_completion_has_status_but_no_output(fake):
    job = post(fake, body(), "v2").json()
    early = get(fake, job["response_url"])
    assert early.status_code == 200 and early.json()["status"] == "QUEUED" and "output" not in early.json()


def test_v2_with_no_queue_completes_on_first_poll(fake):
    fake.queue_polls = (0, 0)
    job = post(fake, body(), "v2").json()
    assert get(fake, job["status_url"]).json()["status"] == "COMPLETED"


def test_v2_job_seconds_keep_a_job_processing_until_its_time(fake):
    fake.queue_polls = (0, 0)
    fake.job_s = iter([1.0, 0.0]).__next__  # one draw per job
    before = time.time()
    slow = post(fake, body(), "v2").json()
    ends = fake.completes_at(slow["request_id"])
    assert before + 1.0 <= ends <= time.time() + 1.0
    assert get(fake, slow["status_url"]).json()["status"] == "PROCESSING"
    quick = post(fake, body(), "v2").json()
    assert get(fake, quick["status_url"]).json()["status"] == "COMPLETED"
    assert requests.get(f"{fake.url}/outputs/{slow['request_id']}.png", timeout=10).status_code == 404
    time.sleep(max(0.0, ends - time.time()) + 0.01)
    assert get(fake, slow["status_url"]).json()["status"] == "COMPLETED"


def test_v2_output_is_not_served_before_completion(fake):
    job = post(fake, body(), "v2").json()
    assert requests.get(f"{fake.url}/outputs/{job['request_id']}.png", timeout=10).status_code == 404


def test_v2_failed_job_is_422_on_status_and_result_and_free(fake):
    fake.queue_polls = (0, 1)
    fake.fail("job_failed", error="Model could not process the image")
    job = post(fake, body(), "v2")
    assert job.status_code == 200
    job = job.json()
    assert get(fake, job["status_url"]).json()["status"] == "PROCESSING"
    for url in (job["status_url"], job["response_url"], job["poll_url"]):
        failed = get(fake, url)
        assert failed.status_code == 422
        assert failed.json() == {"status": "FAILED", "error": "Model could not process the image",
                                 "metrics": {"inference_time": 0.007, "queue_time": 0.23, "total_time": 0.24}}
    assert fake.credits == 50.0 and fake.edits == []


def test_v2_expired_and_unknown_requests_are_404(fake):
    job = post(fake, body(), "v2").json()
    fake.expire(job["request_id"])
    for url in (job["status_url"], job["response_url"], f"{fake.url}/v2/requests/nope/status"):
        response = get(fake, url)
        rid = url.split("/requests/")[1].split("/")[0]
        assert (response.status_code, response.json()) == (404, {"error": f"Request {rid} not found"})


def test_v2_polls_need_the_key(fake):
    job = post(fake, body(), "v2").json()
    assert get(fake, job["status_url"], key=None).status_code == 401
    assert get(fake, job["response_url"], key="nope").status_code == 401


def test_v2_submit_checks_credits(fake):
    fake.credits = 0.0
    assert post(fake, body(), "v2").status_code == 406


def test_credits_endpoint(fake):
    post(fake, body())
    response = get(fake, "/v1/get-user-credits")
    assert response.json() == {"credits": pytest.approx(50.0 - 0.028), "free-credits": 0.0}
    assert get(fake, "/v1/get-user-credits", key=None).status_code == 401


@pytest.mark.parametrize(("method", "path"), [("GET", f"/v1/{MODEL}"), ("PUT", f"/v2/{MODEL}"),
                                              ("POST", "/v1/get-user-credits"), ("DELETE", "/v2/requests/x")])
def test_wrong_verb_is_405_html(fake, method, path):
    response = requests.request(method, fake.url + path, headers={"x-api-key": "test-key"}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<html>") and "405 Method Not Allowed" in response.text


@pytest.mark.parametrize("path", ["/v1/some-other-model", "/", "/v3/requests/x"])
def test_unknown_path_is_404_json(fake, path):
    response = requests.post(fake.url + path, json={}, timeout=10)
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


def test_every_request_is_recorded(fake):
    post(fake, body(), key=None)
    requests.get(fake.url + "/nowhere", timeout=10)
    post(fake, body())
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/v1/{MODEL}"), ("GET", "/nowhere"), ("POST", f"/v1/{MODEL}")]
    assert fake.requests[0].json["prompt"] == "make it blue"
    assert "x-api-key" not in fake.requests[0].headers and fake.requests[2].headers["x-api-key"] == "test-key"
    assert fake.count("POST", fake.url + "/v1/") == 2
    assert fake.crashes == []


def test_429_carries_reset_time_and_no_retry_after_then_recovers(fake):
    fake.fail("429", reset_in=30)
    limited = post(fake, body())
    assert limited.status_code == 429 and limited.json()["error"]
    assert "Retry-After" not in limited.headers
    reset_at = datetime.fromisoformat(limited.headers["x-rate-limit-reset-at-utc"].replace("Z", "+00:00"))
    assert 25 < (reset_at - datetime.now(timezone.utc)).total_seconds() <= 30
    assert post(fake, body()).status_code == 200
    assert fake.count("POST", f"/v1/{MODEL}") == 2


def test_429_retry_after_only_when_asked(fake):
    fake.fail("429", retry_after=2)
    assert post(fake, body()).headers["Retry-After"] == "2"


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_server_errors_carry_retry_after_only_when_asked(fake, kind):
    fake.fail(kind, retry_after=3)
    fake.fail(kind)
    assert post(fake, body()).headers["Retry-After"] == "3"
    assert "Retry-After" not in post(fake, body()).headers


def test_faults_repeat_times_and_queue_in_order(fake):
    fake.fail("500", times=2)
    fake.fail("503")
    assert [post(fake, body()).status_code for _ in range(4)] == [500, 500, 503, 200]


@pytest.mark.parametrize(("kind", "status"), [("400", 400), ("403", 403), ("404", 404), ("406", 406), ("410", 410),
                                              ("422", 422), ("500", 500), ("503", 503), ("504", 504)])
def test_status_faults_answer_json_errors(fake, kind, status):
    fake.fail(kind)
    response = post(fake, body())
    assert response.status_code == status and response.json()["error"]
    assert fake.credits == 50.0


def test_410_names_the_deprecated_model(fake):
    fake.fail("410")
    assert post(fake, body()).json() == {"error": f"Model {MODEL} has been deprecated"}


@pytest.mark.parametrize(("kind", "status"), [("405", 405), ("502", 502), ("html200", 200)])
def test_html_faults(fake, kind, status):
    fake.fail(kind)
    response = post(fake, body())
    assert response.status_code == status and response.headers["Content-Type"].startswith("text/html")


def test_json200_fault(fake):
    fake.fail("json200")
    response = post(fake, body())
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_reset_closes_without_an_answer_but_is_recorded(fake):
    fake.fail("reset")
    with pytest.raises(requests.ConnectionError):
        post(fake, body())
    assert fake.count("POST", f"/v1/{MODEL}") == 1


def test_truncated_body_breaks_the_read(fake):
    fake.fail("truncated")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(fake, body())


def test_slow_fault_times_out_a_short_read(fake):
    fake.fail("slow", seconds=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{fake.url}/v1/{MODEL}", json=body(), headers={"x-api-key": "test-key"}, timeout=0.2)


def test_faults_only_hit_their_route_group(fake):
    fake.fail("500", on="status")
    assert post(fake, body()).status_code == 200
    job = post(fake, body(), "v2").json()
    assert get(fake, job["status_url"]).status_code == 500
    assert get(fake, job["status_url"]).status_code == 200


def test_download_fault(fake):
    fake.queue_polls = (0, 0)
    fake.fail("404", on="download")
    job = post(fake, body(), "v2").json()
    output = get(fake, job["response_url"]).json()["output"]
    assert requests.get(output, timeout=10).status_code == 404
    assert requests.get(output, timeout=10).status_code == 200


def test_wrong_format_keeps_the_claimed_content_type(fake):
    fake.fail("wrong_format")
    response = post(fake, body(output_format="png"))
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(MAGIC["jpeg"])
    assert fake.edits[0].output_format == "jpeg"


def test_opaque_transparent_paints_a_checkerboard(fake):
    fake.fail("opaque_transparent")
    image = decoded(post(fake, body(background="transparent"))).convert("RGBA")
    assert image.getchannel("A").getextrema() == (255, 255)
    corner = {image.getpixel((x, 8)) for x in range(0, 64, 16)}
    assert corner == {(255, 255, 255, 255), (204, 204, 204, 255)}


def test_wrong_size_answers_512(fake):
    fake.fail("wrong_size")
    assert decoded(post(fake, body())).size == (512, 512)


def test_output_faults_apply_to_v2_jobs(fake):
    fake.queue_polls = (0, 0)
    fake.fail("wrong_size")
    job = post(fake, body(), "v2").json()
    output = get(fake, job["response_url"]).json()["output"]
    assert Image.open(io.BytesIO(requests.get(output, timeout=10).content)).size == (512, 512)


def test_delay_is_applied_to_edits(fake):
    fake.delay_s = 0.2
    response = post(fake, body())
    assert response.elapsed.total_seconds() >= 0.2


@pytest.mark.parametrize(("args", "kwargs"), [(("teapot",), {}), (("500",), {"on": "everything"}),
                                              (("wrong_size",), {"on": "status"}), (("slow",), {}),
                                              (("500",), {"times": 0}), (("400",), {"retry_after": 3}),
                                              (("reset",), {"retry_after": 3})])
def test_fail_rejects_nonsense(fake, args, kwargs):
    with pytest.raises(ValueError):
        fake.fail(*args, **kwargs)


def test_stop_does_not_wait_for_slow_answers():
    server = FakeSegmind().start()
    server.fail("slow", seconds=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(server, body(), timeout=0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
