"""Showing results, in headless Chromium: history, before/after, compare, the ledger and budget, the draft.
(The first screen's layout is tested in demo mode, in test_browser_demo.py, which also makes the screenshots.)"""

import json

import pytest
from pages import KEY, open_app, open_settings, upload_and_paint, upload_to_editor
from playwright.sync_api import Page, expect
from ports import free_port

from playground.frontend import APPEND_JS
from playground.history import LIMIT

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)


@pytest.fixture
def app(page, app_url, app_env):
    app_env(SEGMIND_API_KEY=KEY)
    return open_app(page, app_url)


def run(page: Page, prompt: str, *, quality: str | None = None, runs: int = 1):
    """One more Generate; waits until its entry is in the history."""
    before = page.locator("#history .hcard").count()
    page.locator("#prompt textarea").fill(prompt)
    if quality:
        if not page.locator("#quality").is_visible():
            open_settings(page)
        page.locator("#quality label", has_text=quality).click()
    page.locator("#go").click()
    expect(page.locator("#history .hcard")).to_have_count(before + runs)


def thumbnails_rendered(page: Page) -> list[int]:
    return page.locator("#history .hcard img").evaluate_all("els => els.map(e => e.naturalWidth)")



def test_history_survives_a_reload_and_a_restart_and_stays_in_this_browser(new_page, service, app_env, fake, photo):
    from app import LAUNCH_KWARGS, create_app

    app_env(SEGMIND_API_KEY="SG_server_secret_1234")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    demo = create_app(service)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    page = new_page()
    try:
        page.goto(url)
        page.locator("#api_key input").fill(KEY)  # a visitor's own key: in no storage, in no entry
        upload_and_paint(page, photo)
        run(page, "first edit")
        run(page, "second edit")
        page.reload()
        expect(page.locator("#history .hcard")).to_have_count(2)
        expect(page.locator("#history .hcard .prompt").first).to_have_text("second edit")
        assert len(thumbnails_rendered(page)) == 4 and all(w > 0 for w in thumbnails_rendered(page))

        demo.close()
        demo = create_app(service)
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
        page.reload()
        expect(page.locator("#history .hcard")).to_have_count(2)
        assert all(w > 0 for w in thumbnails_rendered(page))
        stored = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        shown = page.locator("#history").inner_html()
        for secret in (KEY, "SG_server_secret_1234"):
            assert secret not in stored and secret not in shown and secret not in page.content()
        assert str(service.store.root) not in shown

        other = new_page()
        other.goto(url)
        expect(other.locator("#history")).to_contain_text("No runs yet")
        expect(other.locator("#history .hcard")).to_have_count(0)
    finally:
        demo.close()


def test_reuse_settings_delete_and_clear(app, fake, photo):
    upload_and_paint(app, photo)
    run(app, "a calm sea", quality="high")
    run(app, "a stormy sea", quality="low")
    assert len(fake.edits) == 2
    older = app.locator("#history .hcard").nth(1)
    older.locator(".pick").click()
    expect(app.locator("#info")).to_contain_text("From the history")
    expect(app.locator("#info")).to_contain_text("a calm sea")
    app.locator("#reuse_settings").click()
    expect(app.locator("#prompt textarea")).to_have_value("a calm sea")
    expect(app.locator("#quality input[type=radio]:checked")).to_have_value("high")
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()

    app.locator("#history_delete").click()
    expect(app.locator("#history .hcard")).to_have_count(1)
    expect(app.locator("#history .hcard .prompt")).to_have_text("a stormy sea")
    app.once("dialog", lambda dialog: dialog.accept())
    app.locator("#clear_history").click()
    expect(app.locator("#history .hcard")).to_have_count(0)
    app.reload()
    expect(app.locator("#history")).to_contain_text("No runs yet")


def test_the_history_keeps_the_newest_entries(app):
    """The append that runs in the browser, run in the browser: the 51st entry pushes out the oldest."""
    history = json.dumps([{"run_id": f"run-{i:03d}-abcdefghijkl", "prompt": str(i)} for i in range(LIMIT)])
    entry = json.dumps({"run_id": "run-new-abcdefghijklmn", "prompt": "new"})
    kept = json.loads(app.evaluate(f"([e, h]) => ({APPEND_JS})(e, h)", [entry, history]))
    assert len(kept) == LIMIT
    assert kept[0]["prompt"] == "new" and kept[-1]["prompt"] == str(LIMIT - 2)
    again = json.loads(app.evaluate(f"([e, h]) => ({APPEND_JS})(e, h)", [entry, json.dumps(kept)]))
    assert [e["prompt"] for e in again] == [e["prompt"] for e in kept]  # a run shown twice is kept once


def test_before_after_and_compare(app, fake, photo):
    upload_and_paint(app, photo)
    run(app, "a red balloon", quality="low")
    app.get_by_role("tab", name="Before / after").click()
    slider = app.locator("#before_after img")
    expect(slider).to_have_count(2)
    expect(slider.first).to_be_visible()
    widths = slider.evaluate_all("els => els.map(e => e.naturalWidth)")
    assert widths[0] == widths[1] == 1536  # the first image at the result's size

    run(app, "a red balloon", quality="high")
    for box in app.locator("#history .cmp").all():
        box.check()
    app.locator("#history .compare-btn").click()
    expect(app.locator("#compare")).to_be_visible()
    expect(app.locator("#compare_note")).to_contain_text("quality")
    expect(app.locator("#compare_image_0 img")).to_be_visible()
    expect(app.locator("#compare_image_1 img")).to_be_visible()
    expect(app.locator("#compare_image_2")).to_be_hidden()
    expect(app.locator("#compare_caption_0 mark")).to_contain_text("Quality: high")
    expect(app.locator("#compare_caption_1 mark")).to_contain_text("Quality: low")
    expect(app.locator("#compare_caption_0")).to_contain_text("0.028 credits")


def test_a_budget_refuses_the_run_that_would_pass_it_before_sending(app, fake, photo):
    fake.cost = 0.03
    app.locator("#budget input").fill("0.05")
    upload_and_paint(app, photo)
    run(app, "first")
    expect(app.locator("#ledger")).to_contain_text("0.03 credits spent of a 0.05 budget")
    app.locator("#go").click()
    expect(app.locator(".toast-body")).to_contain_text("would pass this session's budget")
    expect(app.locator(".toast-body")).to_contain_text("0.03 of 0.05")
    assert len(fake.edits) == 1
    expect(app.locator("#stop")).to_be_hidden()
    expect(app.locator("#prompt textarea")).to_have_value("first")


def test_the_page_keeps_up_with_the_user(app, fake, photo):
    expect(app.locator("#editor")).to_contain_text("Drop the image to edit here")
    expect(app.locator("#stop")).to_be_hidden()
    upload_to_editor(app, photo)
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    app.locator("#prompt textarea").fill("nothing painted")
    app.locator("#go").click()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#mask_note")).to_contain_text("Nothing was painted")
    expect(app.locator("#info")).not_to_contain_text("Nothing was painted")
    expect(app.locator("#stop")).to_be_hidden()
    upload_and_paint(app, photo)
    expect(app.locator("#mask_note")).not_to_contain_text("Nothing was painted")

    app.locator("#reuse").click()
    expect(app.locator("#editor")).to_be_in_viewport()

    expect(app.locator("#key_note")).to_contain_text("server's Segmind key is in use")
    app.locator("#api_key input").fill(KEY)
    expect(app.locator("#key_note")).to_contain_text("Your key is used for this page's runs")
    app.locator("#credits").click()
    expect(app.locator("#key_note")).to_contain_text("Credits left: 49.972 (free credits: 0)")


def test_the_draft_comes_back_after_a_reload(app):
    app.locator("#prompt textarea").fill("a draft worth keeping")
    open_settings(app)
    app.locator("#quality label", has_text="medium").click()
    app.locator("#output_format label", has_text="webp").click()
    expect(app.locator("#settings")).to_contain_text("quality medium")
    app.reload()
    expect(app.locator("#prompt textarea")).to_have_value("a draft worth keeping")
    expect(app.locator("#settings")).to_contain_text("quality medium · background opaque · format webp")
    open_settings(app)
    expect(app.locator("#quality input[type=radio]:checked")).to_have_value("medium")
    expect(app.locator("#output_format input[type=radio]:checked")).to_have_value("webp")
