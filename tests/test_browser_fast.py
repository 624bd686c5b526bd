"""Fast where it counts, in headless Chromium against the local fake: variations and a sweep (the estimate before,
the runs side by side, the grid after, each run in the history, a swept value applied with one click), and an
image larger than what is sent, scaled down once in the editor so the browser sends less on every Generate."""

import time

import numpy as np
import pytest
from pages import KEY, gradient_png, paint, upload_and_paint, upload_to_editor
from playwright.sync_api import expect
from ports import free_port
from test_browser_show import app  # noqa: F401  (a fixture shared with the showing tests)

from playground.service import Service
from playground.store import RunStore

pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)


def open_batch(page):
    page.locator("#batch_section .label-wrap").first.click()
    expect(page.locator("#variations")).to_be_visible()


def test_variations_then_a_sweep_whose_value_is_applied(app, fake, photo):  # noqa: F811
    page = app
    upload_and_paint(page, photo)
    page.locator("#prompt textarea").fill("add a red balloon")
    open_batch(page)

    page.locator("#variations label", has_text="2").click()
    expect(page.locator("#go")).to_have_text("Generate 2 runs")
    expect(page.locator("#estimate")).to_contain_text("the cost is known after the first run")
    page.locator("#go").click()
    expect(page.locator("#batch_results .thumbnail-item")).to_have_count(2)
    expect(page.locator("#batch_results")).to_contain_text("Variation 1")
    expect(page.locator("#batch_results")).to_contain_text("Variation 2")
    expect(page.locator("#batch_note")).to_contain_text("0.028")
    expect(page.locator("#history .hcard")).to_have_count(2)
    expect(page.locator("#ledger")).to_contain_text("2")
    expect(page.locator("#result img")).to_be_visible()
    assert len(fake.edits) == 2 and len({e.output for e in fake.edits}) >= 1

    page.locator("#variations label", has_text="1").click()
    page.locator("#sweep input").click()
    page.get_by_role("option", name="Quality").click()
    expect(page.locator("#sweep_values")).to_be_visible()
    expect(page.locator("#estimate")).to_contain_text("Tick at least two values of Quality")
    page.locator("#sweep_values label", has_text="low").click()
    page.locator("#sweep_values label", has_text="high").click()
    expect(page.locator("#go")).to_have_text("Generate 2 runs")
    expect(page.locator("#estimate")).to_contain_text("about 0.056 credits (2 × 0.028")
    page.locator("#go").click()
    expect(page.locator("#batch_results")).to_contain_text("Quality low")
    expect(page.locator("#batch_results")).to_contain_text("Quality high")
    expect(page.locator("#batch_results .thumbnail-item")).to_have_count(2)
    expect(page.locator("#history .hcard")).to_have_count(4)
    assert sorted(e.payload["quality"] for e in fake.edits[2:]) == ["high", "low"]

    page.locator("#batch_results .thumbnail-item").nth(1).click()
    expect(page.locator("#batch_apply")).to_have_text("Use Quality high")
    expect(page.locator("#info")).to_contain_text("quality high")
    page.locator("#batch_apply").click()
    expect(page.locator("#go")).to_have_text("Generate")
    expect(page.locator("#sweep_values")).to_be_hidden()
    page.locator("#settings .label-wrap").first.click()
    expect(page.locator("#quality input[value='high']")).to_be_checked()

    # A reload in the middle of a batch loses none of it: the page follows every run again.
    fake.queue_polls = (10**6, 0)  # the jobs wait at Segmind until released
    page.locator("#variations label", has_text="2").click()
    page.locator("#go").click()
    expect(page.locator("#progress")).to_contain_text("0 of 2 runs done")  # the page holds the batch's run ids
    deadline = time.monotonic() + 60
    while len(fake.edits) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.edits) == 6
    page.reload()
    expect(page.locator("#progress")).to_contain_text("0 of 2 runs done")
    fake.queue_polls = (1, 1)
    fake.release()
    expect(page.locator("#batch_results .thumbnail-item")).to_have_count(2)
    expect(page.locator("#history .hcard")).to_have_count(6)
    assert len(fake.edits) == 6


@pytest.fixture
def fitting_app(page, app_config, app_env, tmp_path):
    """An app of its own that sends 512 px at most, so a small test image is "larger than what is sent"."""
    from app import LAUNCH_KWARGS, create_app

    app_env(SEGMIND_API_KEY=KEY, SEGMIND_MAX_SIDE="512")
    service = Service(store=RunStore(tmp_path / "runs"), settings=app_config.settings,
                      server_key=app_config.server_key)
    demo = create_app(service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    page.set_default_timeout(20_000)
    page.goto(f"http://127.0.0.1:{port}/")
    yield page
    demo.close()


def drop_into_editor(page, path):
    """What dropping a file from the desktop does: a drop event carrying the file, on the editor."""
    data = list(path.read_bytes())
    page.locator("#editor .image-container").first.evaluate(
        """(node, [data, name]) => {
             const t = new DataTransfer();
             t.items.add(new File([new Uint8Array(data)], name, {type: 'image/png'}));
             node.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: t}));
           }""", [data, path.name])


def generate_and_check_sent(page, fake, size):
    sent = []
    page.on("request", lambda r: sent.append(len(r.post_data_buffer or b"")) if r.method == "POST" else None)
    paint(page)
    page.locator("#go").click()
    expect(page.locator("#progress")).to_contain_text("Done")
    expect(page.locator("#info")).to_contain_text("request")
    expect(page.locator("#info")).not_to_contain_text("before sending")  # the server had nothing left to scale
    edit = fake.edits[-1]
    assert edit.images[0].size == size and edit.mask is not None and edit.mask.size == size
    alpha = np.asarray(edit.mask.getchannel("A"))
    assert 0 < (alpha == 0).mean() < 0.5  # the painted stroke, exactly where it was painted on what is sent
    assert sum(sent) < 3 * size[0] * size[1] * 4  # the editor's images at the size sent, not the photo's


def paste_into_editor(page, path):
    """What pasting an image does: the image on the clipboard, then the editor's Paste button."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("""async (data) => {
        const blob = new Blob([new Uint8Array(data)], {type: 'image/png'});
        await navigator.clipboard.write([new ClipboardItem({'image/png': blob})]);
      }""", list(path.read_bytes()))
    page.locator("#editor button[aria-label='Paste']").click()


def test_an_image_larger_than_what_is_sent_is_scaled_in_the_browser_before_the_editor_takes_it(
        fitting_app, fake, tmp_path):
    page = fitting_app
    page.locator("#prompt textarea").fill("add a red balloon")
    expect(page.locator("#editor canvas").first).to_be_attached()
    paste_into_editor(page, gradient_png(tmp_path / "wide.png", (900, 600)))
    expect(page.locator("#editor_note")).to_contain_text("The image was scaled from 900×600 to 512×341")
    generate_and_check_sent(page, fake, (512, 341))

    drop_into_editor(page, gradient_png(tmp_path / "tall.png", (600, 900)))
    expect(page.locator("#editor_note")).to_contain_text("The image was scaled from 600×900 to 341×512")
    generate_and_check_sent(page, fake, (341, 512))

    upload_to_editor(page, str(gradient_png(tmp_path / "square.png", (800, 800))))
    expect(page.locator("#editor_note")).to_contain_text("The image was scaled from 800×800 to 512×512")
    generate_and_check_sent(page, fake, (512, 512))

    upload_to_editor(page, str(gradient_png(tmp_path / "small.png", (400, 300))))  # fits already: taken as it is
    expect(page.locator("#editor_note")).not_to_contain_text("scaled")

    page.locator("#editor button[aria-label='Clear canvas']").click()  # an empty editor takes the first reference
    page.locator("#refs input[type=file]").set_input_files(str(gradient_png(tmp_path / "ref.png", (900, 600))))
    expect(page.locator("#editor_note")).to_contain_text("The first reference image was scaled from 900×600 to 512×341")
    generate_and_check_sent(page, fake, (512, 341))
