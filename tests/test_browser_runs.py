"""Runs that outlive the page, in headless Chromium: reload, Stop and Resume, expiry, the clock, uploaded masks.

Jobs are held at the fake with `fake.queue_polls` and let go with `fake.release()`; every wait is on a state.
`STRESS=20` runs the reload and Stop/Resume tests twenty times each.
"""

import os
import re

import numpy as np
import pytest
from pages import KEY, PHOTO_SIZE, open_app, upload_and_paint, upload_to_editor
from PIL import Image
from playwright.sync_api import Page, expect

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)  # software-rendered Chromium on two cores is slow; polls are counted, not timed
STRESS = range(int(os.environ.get("STRESS", 1)))
HOLD = (10_000, 0)  # a job that stays queued until fake.release()
REQUEST_PATH = re.compile(r"/v2/requests/([^/?]+)")


@pytest.fixture
def app(page, app_url, app_env):
    return open_app(page, app_url)


class Events:
    """The page's Gradio traffic: how many events were sent (queue/join) and answered since `reset()`."""

    def __init__(self, page: Page):
        self.sent = self.joined = 0
        page.on("request", self._started)
        page.on("requestfinished", self._finished)

    def reset(self):
        self.sent = self.joined = 0

    def _started(self, request):
        if "/gradio_api/queue/join" in request.url:
            self.sent += 1

    def _finished(self, request):
        if "/gradio_api/queue/join" in request.url:
            self.joined += 1

    def settled(self, request) -> bool:
        """A finished event stream while every event sent is in the queue: the server has run them all
        (Gradio closes a session's stream only when it has no event left)."""
        return "/gradio_api/queue/data" in request.url and self.sent > 0 and self.joined == self.sent


def reload_and_settle(page: Page, events: Events):
    """Reload, then wait until the page's load events (key status, following the run) have finished."""
    events.reset()
    with page.expect_request_finished(events.settled):
        page.reload()
    expect(page.locator("#go")).to_be_visible()
    expect(page.locator("#key_note")).not_to_be_empty()
    # Let the page apply the last messages of the stream before anything is read from the DOM.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))")


def generate(page: Page, photo: str, prompt: str = "an edit", *, key: bool = True, paint: bool = True):
    if key:
        page.locator("#api_key input").fill(KEY)
    if paint:
        upload_and_paint(page, photo)
    else:
        upload_to_editor(page, photo)
        expect(page.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#go").click()


def request_ids(fake) -> list[str]:
    return list(dict.fromkeys(m.group(1) for r in fake.requests if (m := REQUEST_PATH.match(r.path))))


def stop_while_queued(page: Page):
    expect(page.locator("#progress")).to_contain_text("Queued")
    page.locator("#stop").click()
    expect(page.locator(".toast-body")).to_contain_text("may still finish and bill")


@pytest.mark.parametrize("attempt", STRESS)
def test_a_reload_after_a_finished_run_shows_nothing_old_and_polls_nothing(app, fake, photo, attempt):
    """Defect: the finished run's id stayed in the browser, so every reload brought the old result back
    (and asked Segmind about it again)."""
    events = Events(app)
    generate(app, photo, "finished")
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("remaining credits")
    polls = fake.count("GET", "/v2/requests")
    assert polls > 0
    reload_and_settle(app, events)
    expect(app.locator("#result img")).to_have_count(0)
    expect(app.locator("#info")).to_have_text("")
    expect(app.locator("#progress")).not_to_contain_text("Done")
    assert fake.count("GET", "/v2/requests") == polls
    assert fake.count("POST", "/v2/") == 1


def test_a_job_that_expired_at_segmind_brings_no_error_back_on_the_next_loads(app, fake, app_env, photo):
    """Defect: a stopped job that Segmind had since forgotten (404) raised an error toast on every page load."""
    events = Events(app)
    app_env(SEGMIND_API_KEY=KEY, SEGMIND_POLL_S="0.2")
    fake.queue_polls = HOLD
    generate(app, photo, "expires", key=False)
    stop_while_queued(app)
    expect(app.locator("#resume")).to_be_visible()
    [request_id] = request_ids(fake)
    fake.expire(request_id)
    shown = {}
    for load in ("the next load", "the load after it"):
        reload_and_settle(app, events)
        shown[load] = app.locator(".toast-body.error").all_inner_texts()
        expect(app.locator("#result img")).to_have_count(0)
    assert shown == {"the next load": [], "the load after it": []}, f"error toasts: {shown}"
    assert fake.count("POST", "/v2/") == 1


@pytest.mark.parametrize("away", ["reload", "stop-then-reload"])
def test_a_resumed_job_keeps_the_masks_work(app, fake, app_env, photo, away):
    """Defect: a job picked up after a reload lost the mask's work: no paste-back and no heat map."""
    app_env(SEGMIND_API_KEY=KEY, SEGMIND_POLL_S="0.05")
    fake.queue_polls = HOLD
    upload_and_paint(app, photo)
    app.locator("#keep_outside label").click()  # after painting: the click scrolls the editor away
    app.locator("#prompt textarea").fill("keep the rest")
    app.locator("#go").click()
    expect(app.locator("#progress")).to_contain_text("Queued")
    assert fake.edits[-1].mask is not None
    if away == "stop-then-reload":
        stop_while_queued(app)
    app.reload()
    expect(app.locator("#progress")).to_contain_text("Queued")  # followed again after the reload
    fake.release()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("pasted back")
    expect(app.locator("#heatmap img")).to_be_visible()
    assert fake.count("POST", "/v2/") == 1


def test_a_reload_before_the_job_id_is_back_still_gets_the_result(app, fake, app_env, photo):
    """Defect: reloading while the submit was in flight lost the run (or sent the edit a second time)."""
    app_env(SEGMIND_POLL_S="0.05")
    fake.fail("slow", on="edit", seconds=3)
    before = app.evaluate("localStorage.getItem('segmind-edit-run')")
    generate(app, photo, "reload at once")
    # The browser has the run's id as soon as the run exists; Segmind's request id is seconds away.
    app.wait_for_function("before => localStorage.getItem('segmind-edit-run') !== before", arg=before)
    assert fake.edits == [], "the submit was answered before the reload; the test did not reload early enough"
    app.reload()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("remaining credits")
    assert fake.count("POST", "/v2/") == 1


@pytest.mark.parametrize("attempt", STRESS)
def test_stop_then_resume_after_a_reload(app, fake, app_env, photo, attempt):
    """Defects: Resume came back blank (no label) after Stop; a reload after Stop forgot the run; Resume sent the
    edit again. With the visitor's own key, which the page never stores, a reload offers Resume and asks for it."""
    events = Events(app)
    app_env(SEGMIND_POLL_S="0.05")
    fake.queue_polls = HOLD
    generate(app, photo, "stop and resume")
    stop_while_queued(app)
    expect(app.locator("#resume")).to_be_visible()
    expect(app.locator("#resume")).to_have_text("Resume")
    expect(app.locator("#stop")).to_be_hidden()
    reload_and_settle(app, events)
    expect(app.locator("#resume")).to_be_visible()
    expect(app.locator("#resume")).to_have_text("Resume")
    expect(app.locator(".toast-body")).to_contain_text("Paste the API key it was run with")
    fake.release()
    app.locator("#api_key input").fill(KEY)
    app.locator("#resume").click()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("remaining credits")
    expect(app.locator("#resume")).to_be_hidden()
    assert fake.count("POST", "/v2/") == 1


def test_with_the_servers_key_a_reload_after_stop_follows_the_run(app, fake, app_env, photo):
    """Defect: a reload after Stop forgot the run. With the server's key the page can wait again by itself, as
    Service.follow does for a stopped job, and the edit is not sent twice."""
    app_env(SEGMIND_API_KEY=KEY, SEGMIND_POLL_S="0.05")
    fake.queue_polls = HOLD
    generate(app, photo, "stop, reload", key=False)
    stop_while_queued(app)
    expect(app.locator("#resume")).to_have_text("Resume")
    app.reload()
    expect(app.locator("#progress")).to_contain_text("Queued")
    expect(app.locator("#stop")).to_be_visible()
    fake.release()
    expect(app.locator("#result img")).to_be_visible()
    assert fake.count("POST", "/v2/") == 1


def test_stop_in_sync_mode_before_sending_bills_nothing(app, fake, app_env, photo):
    """Defect: Stop during the upload in sync mode still sent the (billed) edit, or said it may have been billed."""
    app_env(SEGMIND_API_MODE="sync")
    fake.fail("slow", on="upload", seconds=2)
    generate(app, photo, "never mind")
    expect(app.locator("#stop")).to_be_visible()
    app.locator("#stop").click()
    expect(app.locator(".toast-body")).to_contain_text("nothing was billed")
    expect(app.locator("#stop")).to_be_hidden()
    assert fake.count("POST", "/v1/") == 0
    assert fake.edits == []
    expect(app.locator("#result img")).to_have_count(0)


def test_the_clock_counts_from_the_click(app, fake, photo):
    """Defect: the progress and its clock only appeared once the server answered, so the time spent sending the
    images was neither shown nor counted."""
    gate = {"open": False, "held": []}  # the server hears of the click only when the test lets it

    def hold(route):
        if gate["open"]:
            route.continue_()
        else:
            gate["held"].append(route)

    app.route("**/gradio_api/queue/join*", hold)
    generate(app, photo, "time me", paint=False)
    progress = app.locator("#progress")
    expect(progress).to_contain_text("Sending the images to the server")
    expect(progress.locator(".run-clock")).to_have_text(re.compile(r"^[1-9]\d*$"))  # counting, server still silent
    assert gate["held"], "Generate never reached the server"
    gate["open"] = True
    for route in gate["held"]:
        route.continue_()
    expect(progress).to_contain_text(re.compile(r"Done in \d+(\.\d+)? s"))
    # The server writes its own elapsed time; the page's clock replaces it (within 200 ms) and freezes it.
    expect(progress.locator(".run-clock.done")).to_have_attribute("data-frozen", "1")
    seconds = float(re.search(r"Done in (\d+(?:\.\d+)?) s", progress.inner_text()).group(1))
    assert seconds >= 1.0  # includes the second the request was held in the browser


def test_an_uploaded_mask_keeps_its_transparency(app, fake, photo, tmp_path):
    """Defect: the mask box flattened the uploaded PNG, so the API's own convention (alpha 0 = edit) was lost."""
    w, h = PHOTO_SIZE
    mask = np.full((h, w, 4), 255, np.uint8)
    mask[:, :w // 4, 3] = 0  # the left quarter is transparent: edit there
    mask_path = tmp_path / "left-quarter.png"
    Image.fromarray(mask, "RGBA").save(mask_path)
    app.locator("#api_key input").fill(KEY)
    upload_to_editor(app, photo)
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    app.locator("#mask_upload input[type=file]").set_input_files(str(mask_path))
    expect(app.locator("#mask_note")).to_contain_text("Painted: 25.0%")
    app.locator("#prompt textarea").fill("change the left quarter")
    app.locator("#go").click()
    expect(app.locator("#result img")).to_be_visible()
    sent = fake.edits[-1].mask
    assert sent.size == PHOTO_SIZE
    alpha = np.asarray(sent.convert("RGBA").getchannel("A"))
    assert alpha[:, :w // 4].max() == 0 and alpha[:, w // 4:].min() == 255


def test_a_file_that_is_not_an_image_in_the_mask_box_is_named(app, fake, photo, tmp_path):
    """Defect: a non-image in the mask box showed only Gradio's "Error" badges, and Generate failed without
    saying which file was wrong."""
    bad = tmp_path / "notes-not-a-mask.png"
    bad.write_text("these are my notes, not a picture\n")
    app.locator("#api_key input").fill(KEY)
    upload_to_editor(app, photo)
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    app.locator("#mask_upload input[type=file]").set_input_files(str(bad))
    expect(app.locator("#mask_note")).to_contain_text("cannot be used")
    expect(app.locator("#mask_note")).to_contain_text(bad.name)
    expect(app.locator(".toast-body").filter(has_text=bad.name)).to_have_count(1)
    expect(app.locator("[data-testid='status-tracker']:not(.hide) .error")).to_have_count(0)  # no shown "Error" badge
    app.locator("#prompt textarea").fill("use this mask")
    app.locator("#go").click()
    expect(app.locator(".toast-body.error")).to_contain_text(bad.name)
    expect(app.locator("[data-testid='status-tracker']:not(.hide) .error")).to_have_count(0)
    expect(app.locator("#stop")).to_be_hidden()
    expect(app.locator("#result img")).to_have_count(0)
    assert fake.requests == []
