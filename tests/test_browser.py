"""The page in headless Chromium: controls, presets, a painted mask, Generate, errors, progress and reload."""

import io
import re

import numpy as np
import pytest
from pages import KEY, PHOTO_SIZE, open_app, open_settings, upload_and_paint, upload_to_editor
from PIL import Image
from playwright.sync_api import expect

from playground.params import PARAMS
from playground.presets import PRESET_FIELDS, load_presets

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)  # software-rendered Chromium on two cores is slow; polls are counted, not timed


@pytest.fixture
def app(page, app_url, app_env):
    open_app(page, app_url)
    open_settings(page)
    return page


def radio_values(page, name):
    return page.locator(f"#{name} input[type=radio]").evaluate_all("els => els.map(e => e.value)")


def checked(page, name):
    return page.locator(f"#{name} input[type=radio]:checked").get_attribute("value")


def compression(page):
    return int(page.locator("#output_compression input[type=number]").input_value())


def test_controls_offer_exactly_the_allowed_values_at_the_api_defaults(app):
    for param in PARAMS:
        if param.choices:
            assert radio_values(app, param.name) == list(param.choices), param.name
            assert checked(app, param.name) == param.default
            expect(app.locator(f"#{param.name}")).to_contain_text(param.label)
        else:
            number = app.locator(f"#{param.name} input[type=number]")
            assert (number.get_attribute("min"), number.get_attribute("max")) == ("1", "100")
            assert compression(app) == param.default
            expect(app.locator(f"#{param.name}")).to_contain_text(param.label)


def test_each_preset_sets_its_values_and_leaves_the_rest_alone(app):
    app.locator("#prompt textarea").fill("keep this prompt")
    app.locator("#moderation label", has_text="low").click()
    for i, preset in enumerate(load_presets()):
        app.locator(f"#preset-{i}").click()
        expect(app.locator("#advice")).to_contain_text(preset.label)
        for name in PRESET_FIELDS:
            if name == "output_compression":
                expect(app.locator("#output_compression input[type=number]")).to_have_value(str(preset.params[name]))
            else:
                expect(app.locator(f"#{name} input[type=radio]:checked")).to_have_value(preset.params[name])
    assert app.locator("#prompt textarea").input_value() == "keep this prompt"
    assert checked(app, "moderation") == "low"


def test_choosing_transparent_with_jpeg_switches_to_png_and_says_so(app):
    app.locator("#output_format label", has_text="jpeg").click()
    app.locator("#background label", has_text="transparent").click()
    expect(app.locator("#output_format input[type=radio]:checked")).to_have_value("png")
    expect(app.locator(".toast-body")).to_contain_text("switched to png")


def test_paint_generate_and_get_the_result_with_credits(app, fake, photo):
    app.locator("#api_key input").fill(KEY)
    upload_and_paint(app, photo)
    app.locator("#prompt textarea").fill("a red balloon")
    app.locator("#go").click()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("remaining credits")
    expect(app.locator("#info")).to_contain_text("49.972")
    assert app.locator("#result img").get_attribute("src").endswith(".png")  # the API's own bytes, not webp
    sent = fake.edits[-1]
    assert sent.images[0].size == PHOTO_SIZE
    alpha = np.asarray(sent.mask.getchannel("A"))
    assert sent.mask.size == PHOTO_SIZE
    assert 0 < (alpha == 0).mean() < 0.3 and alpha[0, 0] == 255
    ys, xs = np.nonzero(alpha == 0)
    w, h = PHOTO_SIZE
    assert abs(xs.mean() - w / 2) < w / 20 and abs(ys.mean() - h / 2) < h / 20  # where it was painted
    assert KEY not in app.content()
    assert KEY not in app.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    app.locator("#reuse").click()
    app.locator("#go").click()
    expect(app.locator("#info")).to_contain_text("49.944")
    assert fake.edits[-1].images[0].size == (1536, 1024)  # the first result, now the image being edited


def test_shift_enter_in_the_prompt_runs_the_edit(app, fake):
    app.locator("#prompt textarea").fill("by keyboard")
    app.locator("#prompt textarea").press("Shift+Enter")
    expect(app.locator(".toast-body")).to_contain_text("Add an image to edit")
    expect(app.locator(".toast-body")).to_contain_text("Paste your Segmind API key")


def test_generate_without_a_key_explains_and_keeps_the_inputs(app, fake, photo):
    upload_and_paint(app, photo)
    app.locator("#prompt textarea").fill("keep me")
    app.locator("#size label", has_text="1024x1536").click()
    app.locator("#go").click()
    expect(app.locator(".toast-body")).to_contain_text("Paste your Segmind API key")
    assert app.locator("#prompt textarea").input_value() == "keep me"
    assert checked(app, "size") == "1024x1536"
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    assert fake.requests == []


def test_a_server_key_is_announced_and_never_reaches_the_page(page, app_url, app_env):
    app_env(SEGMIND_API_KEY="SG_server_secret_1234")
    page.goto(app_url)
    expect(page.locator("#key_note")).to_contain_text("server's Segmind key is in use")
    assert "SG_server_secret_1234" not in page.content()
    assert "SG_server_secret_1234" not in page.request.get(app_url.rstrip("/") + "/config").text()


def test_a_queued_job_shows_progress_and_survives_a_reload(app, fake, app_env, photo):
    app_env(SEGMIND_API_KEY=KEY, SEGMIND_POLL_S="0.25")
    fake.queue_polls = (8, 8)
    app.reload()
    upload_and_paint(app, photo)
    app.locator("#prompt textarea").fill("slow one")
    app.locator("#go").click()
    expect(app.locator("#progress")).to_contain_text(re.compile("Queued|Processing"))
    expect(app.locator("#progress")).to_contain_text("of a typical 42 s")
    submitted = fake.count("POST", "/v2/")
    app.reload()
    expect(app.locator("#result img")).to_be_visible()
    expect(app.locator("#info")).to_contain_text("remaining credits")
    assert fake.count("POST", "/v2/") == submitted == 1


def test_stop_stops_waiting_and_warns_about_billing(app, fake, app_env, photo):
    app_env(SEGMIND_POLL_S="0.2")
    fake.queue_polls = (10_000, 0)
    app.locator("#api_key input").fill(KEY)
    upload_and_paint(app, photo)
    app.locator("#prompt textarea").fill("never mind")
    app.locator("#go").click()
    expect(app.locator("#progress")).to_contain_text("Queued")
    app.locator("#stop").click()
    expect(app.locator(".toast-body")).to_contain_text("may still finish and bill")
    assert app.locator("#prompt textarea").input_value() == "never mind"
    fake.release()
    app.locator("#resume").click()
    expect(app.locator("#result img")).to_be_visible()
    assert fake.count("POST", "/v2/") == 1


def test_the_first_reference_image_goes_into_the_editor_and_is_sent_once(app, fake, tmp_path):
    paths = []
    for i, size in enumerate([(640, 480), (300, 300)]):
        path = tmp_path / f"ref{i}.png"
        Image.new("RGB", size, (40 * i, 120, 200)).save(path)
        paths.append(str(path))
    app.locator("#api_key input").fill(KEY)
    app.locator("#refs input[type=file]").set_input_files(paths)
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    app.locator("#prompt textarea").fill("combine them")
    app.locator("#go").click()
    expect(app.locator("#result img")).to_be_visible()
    assert [im.size for im in fake.edits[-1].images] == [(640, 480), (300, 300)]


def test_an_uploaded_mask_can_be_inverted_and_the_outside_kept(app, fake, photo, tmp_path):
    w, h = PHOTO_SIZE
    mask = Image.new("L", PHOTO_SIZE, 0)
    mask.paste(255, (0, 0, w // 2, h))
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    app.locator("#api_key input").fill(KEY)
    upload_to_editor(app, photo)
    expect(app.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    app.locator("#mask_upload input[type=file]").set_input_files(str(mask_path))
    app.locator("#mask_colour label", has_text="white").click()
    app.locator("#invert label").click()
    app.locator("#keep_outside label").click()
    app.locator("#show_mask").click()
    expect(app.locator("#mask_note")).to_contain_text("Painted: 50.0%")
    expect(app.locator("#mask_preview img")).to_be_visible()
    app.locator("#prompt textarea").fill("paint the right half")
    app.locator("#go").click()
    expect(app.locator("#info")).to_contain_text("pasted back")
    expect(app.locator("#heatmap img")).to_be_visible()
    alpha = np.asarray(fake.edits[-1].mask.getchannel("A"))
    assert alpha[:, :w // 2].min() == 255 and alpha[:, w // 2:].max() == 0
    src = app.locator("#result img").get_attribute("src")
    assert src.endswith(".png")
    shown = Image.open(io.BytesIO(app.request.get(src).body()))
    assert shown.size == PHOTO_SIZE  # the original's pixels pasted back, at the original's size


def test_check_credits_asks_segmind(app, fake):
    app.locator("#api_key input").fill(KEY)
    app.locator("#credits").click()
    expect(app.locator("#key_note")).to_contain_text("Credits left: 50")
    assert fake.count("GET", "/v1/get-user-credits") == 1
