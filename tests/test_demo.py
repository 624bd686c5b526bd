"""Demo mode: real edits with no key, no network and no cost, through the same service, phases, Stop and Resume."""

import io
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image
from run_factory import photo, rect_mask

from playground import errors, images
from playground import mask as masks
from playground.config import load_settings
from playground.demo import STAMP_FILL, DemoBackend, DemoBackends, demo_seconds, render
from playground.inputs import InputError, build_inputs
from playground.params import build_payload
from playground.service import Service
from playground.store import RunStore

SIZE = (600, 400)
BOX = (100, 100, 300, 200)


def demo_service(tmp_path, *, seconds=0.2, transport="upload"):
    env = {"SEGMIND_IMAGE_TRANSPORT": transport}
    return Service(store=RunStore(tmp_path / "runs"), settings=lambda: load_settings(env),
                   demo=DemoBackends(seconds), demo_only=True, server_key=lambda: None)


def demo_inputs(tmp_path, *, prompt="add a red balloon", params=None, mask=True):
    image = tmp_path / "photo.png"
    photo(SIZE).save(image)
    mask_file = None
    if mask:
        mask_file = str(tmp_path / "mask.png")
        rect_mask(SIZE, BOX).save(mask_file)
    return build_inputs(prompt=prompt, params=params or {}, files=[str(image)], mask_file=mask_file)


def start(service, inputs):
    key, own = service.key_for(None)
    return service.start(inputs, api_key=key, own_key=own, owner="tests")


def finished(live, timeout=20):
    snap = live.result(timeout=timeout)
    assert snap.done and snap.error is None, snap.error
    return snap.outcome


def decoded(service, record):
    with Image.open(io.BytesIO(service.store.get(record.run_id).read(record.result_file))) as img:
        img.load()
        return img.copy(), img.format


def demo_payload(prompt="add a red balloon", *, mask=True, **params):
    data, mime = images.encode_for_api(photo(SIZE))
    mask_url = images.to_data_url(masks.to_png_bytes(rect_mask(SIZE, BOX)), "image/png") if mask else None
    return build_payload(prompt, [images.to_data_url(data, mime)], mask_url, params)


@pytest.mark.parametrize("transport", ["upload", "inline"])
def test_an_edit_changes_the_masked_area_only_stamps_it_and_costs_nothing(tmp_path, transport):
    service = demo_service(tmp_path, transport=transport)
    record = finished(start(service, demo_inputs(tmp_path)))
    result, fmt = decoded(service, record)
    assert (fmt, result.size, record.output_size) == ("PNG", (1536, 1024), (1536, 1024))  # auto for 3:2
    assert record.backend == "demo" and record.mode == "queue" and record.request_id.startswith("demo-")
    assert record.cost == 0.0 and record.remaining_credits is None and record.problems == []

    after = np.asarray(result.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS), dtype=np.float32)
    before = np.asarray(photo(SIZE), dtype=np.float32)
    difference = np.abs(after - before).max(axis=2)
    x0, y0, x1, y1 = BOX
    inside = np.zeros(difference.shape, bool)
    inside[y0 + 4:y1 - 4, x0 + 4:x1 - 4] = True
    near = np.zeros(difference.shape, bool)
    near[y0 - 4:y1 + 4, x0 - 4:x1 + 4] = True
    assert difference[inside].mean() > 40
    assert difference[~near].max() < 8
    assert record.changed_outside_pct < 1.0

    pixels = np.asarray(result.convert("RGB"))
    stamp = np.all(pixels == STAMP_FILL, axis=2)
    sx0, sy0, sx1, sy1 = (round(v * 1536 / 600) for v in BOX)
    assert stamp[sy0:sy1, sx0:sx1].sum() > 500
    assert stamp.sum() == stamp[sy0:sy1, sx0:sx1].sum()


@pytest.mark.parametrize(("params", "fmt", "size", "transparent"), [
    ({"size": "1024x1024", "output_format": "jpeg", "output_compression": 70}, "JPEG", (1024, 1024), False),
    ({"size": "1024x1536", "output_format": "webp", "background": "transparent"}, "WEBP", (1024, 1536), True),
    ({"output_format": "png", "background": "transparent"}, "PNG", (1536, 1024), True),
])
def test_the_output_has_the_size_format_and_background_asked_for(tmp_path, params, fmt, size, transparent):
    service = demo_service(tmp_path, seconds=0)
    record = finished(start(service, demo_inputs(tmp_path, params=params, mask=False)))
    result, got = decoded(service, record)
    assert (got, result.size) == (fmt, size) and record.problems == []
    assert images.has_transparency(result) is transparent


def test_prompts_pick_the_edit_and_the_same_prompt_gives_the_same_image():
    first, again, other = (render(demo_payload(p))[0] for p in ("a red balloon", "a red balloon", "night"))
    assert first == again and first != other


def test_without_a_mask_the_whole_image_is_edited():
    data, fmt = render(demo_payload(mask=False))
    with Image.open(io.BytesIO(data)) as img:
        after = np.asarray(img.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS), dtype=np.float32)
    changed = np.abs(after - np.asarray(photo(SIZE), dtype=np.float32)).max(axis=2) > 24
    assert fmt == "png" and changed.mean() > 0.8


def test_a_job_goes_through_the_queued_phases_in_about_its_time():
    backend, statuses, jobs = DemoBackend(0.6), [], []
    started = time.monotonic()
    result = backend.edit(demo_payload(), api_key="", on_status=statuses.append, on_submit=jobs.append)
    assert 0.55 < time.monotonic() - started < 3
    phases = [s.phase for s in statuses]
    assert phases[0] == "submitting" and phases.index("queued") < phases.index("processing") < phases.index(
        "downloading")
    assert [j.request_id for j in jobs] == [result.request_id] and result.request_id.startswith("demo-")
    assert all(s.request_id == result.request_id for s in statuses[1:])
    assert (result.cost, result.remaining_credits, result.format, result.mode) == (0.0, None, "png", "queue")


def test_stop_then_resume_finishes_the_same_job(tmp_path):
    service = demo_service(tmp_path, seconds=1.5)
    live = start(service, demo_inputs(tmp_path))
    run = service.store.get(live.run_id)
    deadline = time.monotonic() + 10
    while run.meta.get("state") != "submitted" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.snapshot().status is None or live.snapshot().status.phase in ("submitting", "queued", "processing")
    assert service.runner.stop(live.run_id)
    snap = live.result(timeout=10)
    assert isinstance(snap.error, errors.Stopped) and snap.error.request_id == run.meta["request_id"]
    assert run.meta["state"] == "stopped"

    resumed = service.follow(run, typed_key=None)
    record = finished(resumed)
    assert record.request_id == run.meta["request_id"] and record.cost == 0.0 and run.meta["state"] == "done"
    assert decoded(service, record)[0].size == (1536, 1024)


def test_stop_before_sending_bills_nothing():
    stop = threading.Event()
    stop.set()
    with pytest.raises(errors.Stopped) as caught:
        DemoBackend(0).edit(demo_payload(), api_key="", stop=stop)
    assert caught.value.billed == "no"


def test_an_unknown_or_forgotten_job_has_expired():
    backend = DemoBackend(0, keep=2)
    ids = [backend.edit(demo_payload(), api_key="").request_id for _ in range(3)]
    with pytest.raises(errors.JobExpired):
        backend.wait(ids[0], api_key="")
    assert backend.wait(ids[2], api_key="").request_id == ids[2]
    with pytest.raises(errors.JobExpired):
        DemoBackend(0).wait(ids[2], api_key="")


def test_the_service_keeps_one_backend_so_resume_finds_its_jobs(tmp_path):
    service = demo_service(tmp_path)
    assert service.backend()[1] is service.backend()[1]
    assert demo_service(tmp_path).backend()[1] is not service.backend()[1]


def test_no_connection_is_ever_opened(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    service = demo_service(tmp_path, transport="upload")
    record = finished(start(service, demo_inputs(tmp_path)))
    assert record.problems == [] and service.backend()[1].credits(api_key="") == {
        "credits": 0.0, "free-credits": 0.0, "demo": True}


def test_an_image_url_cannot_be_fetched_and_says_so():
    payload = build_payload("p", ["https://example.com/a.png"], None, {})
    with pytest.raises(InputError, match="no network"):
        render(payload)


def test_the_duration_comes_from_the_environment():
    assert demo_seconds({}) == 3.0 and demo_seconds({"PLAYGROUND_DEMO_S": " 0.5 "}) == 0.5
    for bad in ("-1", "nan", "soon", "601"):
        with pytest.raises(ValueError, match="PLAYGROUND_DEMO_S"):
            demo_seconds({"PLAYGROUND_DEMO_S": bad})
