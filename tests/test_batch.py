"""Variations and sweeps: several runs from one set of inputs, run at once, each through the same request function
and guard as a single edit; through the Service and through /batch, against the local fake over HTTP."""

import time

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from run_factory import fake_env, photo, rect_mask

from playground.batch import MAX_RUNS, build_batch, run_count, sweep_choices
from playground.config import load_settings
from playground.guard import Guard, GuardSettings, Refused
from playground.history import Ledger
from playground.inputs import InputError, build_inputs
from playground.run import RunRecord
from playground.service import Busy, Service
from playground.store import RunStore


def inputs(tmp_path, params=None, mask=True):
    path = tmp_path / "photo.png"
    photo((600, 400)).save(path)
    mask_file = None
    if mask:
        mask_file = str(tmp_path / "mask.png")
        rect_mask((600, 400), (100, 100, 300, 200)).save(mask_file)
    return build_inputs(prompt="add a red balloon", params=params or {}, files=[str(path)], mask_file=mask_file)


def service_for(fake, tmp_path, **env):
    settings = {**fake_env(fake), **env}
    return Service(store=RunStore(tmp_path / "runs"), settings=lambda: load_settings(settings),
                   server_key=lambda: None)


def finish(lives, timeout=30):
    return [live.result(timeout) for live in lives]


# -- building a batch -------------------------------------------------------------------------------------------


def test_variations_repeat_the_inputs_and_a_sweep_sets_one_value_per_run(tmp_path):
    base = inputs(tmp_path, {"quality": "high"})
    cells = build_batch(base, 3)
    assert [c.variation for c in cells] == [1, 2, 3] and all(c.inputs is base for c in cells)
    swept = build_batch(base, 2, "quality", ["low", "medium", "low"])
    assert [(c.sweep_value, c.variation) for c in swept] == [("low", 1), ("low", 2), ("medium", 1), ("medium", 2)]
    assert [c.inputs.params["quality"] for c in swept] == ["low", "low", "medium", "medium"]
    assert base.params["quality"] == "high"  # the page's own settings are not touched
    compression = build_batch(inputs(tmp_path, {"output_format": "webp"}), 1, "output_compression", ["50", 90])
    assert [c.inputs.params["output_compression"] for c in compression] == [50, 90]


@pytest.mark.parametrize("args, words", [
    ((0,), "Variations must be a whole number from 1 to 4"),
    ((5,), "Variations must be a whole number from 1 to 4"),
    ((2.5,), "Variations must be"),
    ((True,), "Variations must be"),
    ((1, "background", ["opaque", "transparent"]), "A sweep goes over one of size, quality"),
    ((1, "prompt", ["a", "b"]), "A sweep goes over one of"),
    ((1, "quality", ["low"]), "at least two values of Quality"),
    ((1, "quality", []), "at least two values of Quality"),
    ((1, "quality", ["low", "best"]), "Quality must be one of auto, low, medium, high"),
    ((1, "output_compression", ["50", "fifty"]), "must be whole numbers"),
    ((1, "output_compression", ["0", "50"]), "between 1 and 100"),
    ((4, "size", ["auto", "1024x1024", "1536x1024"]), f"at most {MAX_RUNS} edits"),
])
def test_a_batch_that_cannot_run_is_refused_whole(tmp_path, args, words):
    with pytest.raises(InputError, match=words):
        build_batch(inputs(tmp_path), *args)


def test_a_sweep_that_would_be_refused_or_pointless_is_named(tmp_path):
    transparent = inputs(tmp_path, {"background": "transparent", "output_format": "png"})
    with pytest.raises(InputError, match="Sweep value jpeg cannot run: A transparent background needs png or webp"):
        build_batch(transparent, 1, "output_format", ["png", "jpeg"])
    with pytest.raises(InputError, match="Output compression applies to jpeg and webp only"):
        build_batch(inputs(tmp_path, {"output_format": "png"}), 1, "output_compression", ["50", "100"])


def test_the_page_offers_every_allowed_value_and_counts_runs():
    assert sweep_choices("size") == ["auto", "1024x1024", "1536x1024", "1024x1536"]
    assert sweep_choices("output_compression") == ["25", "50", "75", "90", "100"]
    assert run_count(3, "", ["low", "high"]) == 3
    assert run_count(2, "quality", ["low", "high"]) == 4
    assert run_count(None, "quality", None) == 1


def test_the_budget_and_the_estimate_count_every_run_of_a_batch():
    ledger = Ledger()
    assert "cost is known after the first run" in ledger.estimate(4)
    ledger.last_cost, ledger.spent = 0.03, 0.03
    assert "about **0.12** credits (4 × 0.03" in ledger.estimate(4)
    assert ledger.refusal(0.2, runs=4) is None  # 0.03 + 0.12 fits
    refusal = ledger.refusal(0.1, runs=4)
    assert refusal.startswith("These 4 runs would pass this session's budget") and "Nothing was sent" in refusal


# -- running a batch --------------------------------------------------------------------------------------------


def test_variations_run_at_once_and_share_one_upload(fake, tmp_path):
    fake.queue_polls = (10**6, 0)  # no job finishes until released
    service = service_for(fake, tmp_path)
    lives = service.start_many([inputs(tmp_path)] * 4, api_key=fake.api_key, own_key=True, owner="o" * 16)
    deadline = time.monotonic() + 30
    while len(fake.edits) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(fake.edits) == 4 and not any(live.snapshot().done for live in lives)  # side by side, not in turn
    fake.release()
    snaps = finish(lives)
    assert all(s.error is None for s in snaps), [s.error for s in snaps]
    records: list[RunRecord] = [s.outcome for s in snaps]
    assert len({r.request_id for r in records}) == 4 and len({r.run_id for r in records}) == 4
    assert fake.count("POST", "/upload-asset") == 1  # the image and the mask, uploaded once for all four runs
    for record in records:
        run = service.store.get(record.run_id)
        assert run.has("input-1.png") or run.find("input-1") is not None
        assert run.has("mask.png") and run.has(record.result_file)
        assert record.mask_share is not None and record.cost == pytest.approx(fake.cost)


def test_each_sweep_value_reaches_segmind_and_one_failing_run_leaves_the_others(fake, tmp_path):
    service = service_for(fake, tmp_path)
    cells = build_batch(inputs(tmp_path), 1, "quality", ["low", "medium", "high"])
    fake.fail("job_failed", on="edit")  # the first job Segmind takes fails
    lives = service.start_many([c.inputs for c in cells], api_key=fake.api_key, own_key=True, owner="o" * 16)
    snaps = finish(lives)
    sent = [r.json["quality"] for r in fake.requests if r.method == "POST" and r.path.startswith("/v2/")]
    assert sorted(sent) == ["high", "low", "medium"]
    failed = [s for s in snaps if s.error is not None]
    assert len(failed) == 1 and type(failed[0].error).__name__ == "JobFailed"
    done = [s.outcome for s in snaps if s.error is None]
    assert len(done) == 2 and all(r.result_file for r in done)
    failed_run = next(live for live, snap in zip(lives, snaps, strict=True) if snap.error is not None)
    assert service.store.get(failed_run.run_id).meta["state"] == "failed"


def test_the_guard_admits_a_whole_batch_or_none_of_it(fake, tmp_path):
    service = service_for(fake, tmp_path)
    service.server_key = lambda: fake.api_key
    service.guard = Guard(GuardSettings(runs_per_hour=3, runs_per_day=100))
    with pytest.raises(Refused, match="This batch needs 4 runs on this Space's key and you may start 3 now"):
        service.start_many([inputs(tmp_path)] * 4, api_key=fake.api_key, own_key=False, owner="o" * 16,
                           visitor="1.2.3.4")
    assert fake.edits == [] and service.guard.runs_left("1.2.3.4")[0] == 3  # nothing sent, nothing counted
    finish(service.start_many([inputs(tmp_path)] * 3, api_key=fake.api_key, own_key=False, owner="o" * 16,
                              visitor="1.2.3.4"))
    assert len(fake.edits) == 3 and service.guard.runs_left("1.2.3.4")[0] == 0


def test_more_runs_than_the_app_takes_at_once_are_refused_before_anything_is_sent(fake, tmp_path):
    fake.queue_polls = (10**6, 0)
    service = service_for(fake, tmp_path, PLAYGROUND_MAX_RUNS="3")
    first = service.start_many([inputs(tmp_path)] * 2, api_key=fake.api_key, own_key=True, owner="o" * 16)
    with pytest.raises(Busy, match=r"busy: 2 runs are in flight and it takes 3 at once\. Try again in a minute"):
        service.start_many([inputs(tmp_path)] * 2, api_key=fake.api_key, own_key=True, owner="o" * 16)
    for live in first:
        live.stop.set()
    finish(first)
    assert len(fake.edits) <= 2


# -- /batch through the app's own client ------------------------------------------------------------------------


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "photo.png"
    x = np.linspace(0, 255, 320).astype(np.uint8)
    Image.fromarray(np.dstack([np.tile(x, (240, 1))] * 3), "RGB").save(path)
    return str(path)


def test_batch_endpoint_returns_every_file_and_record_in_order(client, fake, image_file):
    files, records = client.predict(prompt="an edit", images=[handle_file(image_file)], api_key=fake.api_key,
                                    sweep_param="size", sweep_values=["1024x1024", "1536x1024"], variations=2,
                                    api_name="/batch")
    assert [(r["sweep_value"], r["variation"], r["file"]) for r in records] == [
        ("1024x1024", 1, 0), ("1024x1024", 2, 1), ("1536x1024", 1, 2), ("1536x1024", 2, 3)]
    assert [Image.open(f).size for f in files] == [(1024, 1024)] * 2 + [(1536, 1024)] * 2
    assert sorted(e.payload["size"] for e in fake.edits) == ["1024x1024"] * 2 + ["1536x1024"] * 2
    assert all(r["sweep_param"] == "size" and r["request_id"] and r["cost"] for r in records)


def test_batch_endpoint_reports_a_failed_run_beside_the_others(client, fake, image_file):
    fake.fail("job_failed", on="edit")
    files, records = client.predict(prompt="an edit", images=[handle_file(image_file)], api_key=fake.api_key,
                                    variations=3, api_name="/batch")
    assert len(files) == 2 and len(records) == 3
    failed = [r for r in records if "error" in r]
    assert len(failed) == 1 and "file" not in failed[0] and failed[0]["error"] and failed[0]["run_id"]
    assert sorted(r["file"] for r in records if "error" not in r) == [0, 1]


def test_batch_endpoint_refuses_a_bad_batch_before_anything_is_sent(client, fake, image_file):
    with pytest.raises(AppError, match="at least two values of Quality"):
        client.predict(prompt="an edit", images=[handle_file(image_file)], api_key=fake.api_key,
                       sweep_param="quality", sweep_values=["low"], api_name="/batch")
    with pytest.raises(AppError, match="Variations must be a whole number from 1 to 4"):
        client.predict(prompt="an edit", images=[handle_file(image_file)], api_key=fake.api_key, variations=9,
                       api_name="/batch")
    assert fake.edits == [] and fake.count("POST") == 0


def test_edit_is_refused_as_busy_when_the_app_has_its_most_runs_in_flight(client, app_env, fake, image_file):
    app_env(PLAYGROUND_MAX_RUNS="1")
    fake.queue_polls = (10**6, 0)  # the first run waits at Segmind until released
    first = client.submit(prompt="an edit", images=[handle_file(image_file)], api_key=fake.api_key, api_name="/edit")
    deadline = time.monotonic() + 30
    while len(fake.edits) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(AppError, match="busy: 1 runs are in flight and it takes 1 at once"):
        client.predict(prompt="another", images=[handle_file(image_file)], api_key=fake.api_key, api_name="/edit")
    assert len(fake.edits) == 1  # the refused run sent nothing
    fake.queue_polls = (1, 1)
    fake.release()
    assert first.result(timeout=30)[1]["request_id"]
    client.predict(prompt="now there is room", images=[handle_file(image_file)], api_key=fake.api_key,
                   api_name="/edit")
    assert len(fake.edits) == 2
