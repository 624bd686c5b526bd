"""Demo mode in headless Chromium: the whole app, or one visitor's choice when no key is at hand. Nothing reaches
Segmind (the fake counts every request) and nothing is spent. The first screen's layout is checked here too, and
`SCREENSHOT_DIR=docs` (`make screenshots`) keeps the screenshots it takes for the README.
"""

import io
import os
import zipfile
from pathlib import Path

import pytest
from pages import upload_and_paint
from PIL import Image, ImageDraw
from playwright.sync_api import expect
from ports import free_port
from test_browser_show import run

from playground.demo import DemoBackends
from playground.service import Service
from playground.store import RunStore

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)



@pytest.fixture
def demo_url(app_config, app_env, tmp_path):
    from app import LAUNCH_KWARGS, create_app

    service = Service(store=RunStore(tmp_path / "runs"), settings=app_config.settings, server_key=lambda: None,
                      demo=DemoBackends(seconds=1.0), demo_only=True)
    demo = create_app(service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_the_whole_app_in_demo_mode_needs_no_key_and_spends_nothing(page, demo_url, fake, photo):
    page.goto(demo_url)
    expect(page.locator("#demo_banner")).to_contain_text("Results are not the model's")
    expect(page.locator("#key_note")).to_contain_text("Demo mode")
    expect(page.locator("#api_key")).to_be_hidden()
    upload_and_paint(page, photo)
    page.locator("#prompt textarea").fill("a demo edit")
    page.locator("#go").click()
    expect(page.locator("#progress")).to_contain_text("Processing")
    expect(page.locator("#result img")).to_be_visible()
    expect(page.locator("#info")).to_contain_text("cost 0 credits")
    expect(page.locator("#history .hcard")).to_have_count(1)
    page.get_by_role("tab", name="Before / after").click()
    expect(page.locator("#before_after img")).to_have_count(2)
    expect(page.locator("#ledger")).to_contain_text("0 credits spent")
    assert fake.requests == []


def test_a_visitor_without_a_key_can_try_the_demo(page, app_url, app_env, fake, photo):
    page.goto(app_url)
    expect(page.locator("#key_note")).to_contain_text("Try the demo")
    page.locator("#try_demo label").click()
    expect(page.locator("#demo_banner")).to_be_visible()
    upload_and_paint(page, photo)
    run(page, "try it")
    expect(page.locator("#info")).to_contain_text("cost 0 credits")
    page.locator("#credits").click()
    expect(page.locator("#key_note")).to_contain_text("Demo runs use no credits")
    assert fake.requests == []


@pytest.fixture
def scene(tmp_path):
    """A small landscape to edit: sky, sun, hills."""
    image = Image.new("RGB", (900, 600), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    for y in range(300):
        draw.line([(0, y), (900, y)], fill=(90 + y // 6, 150 + y // 8, 235))
    draw.ellipse((620, 80, 740, 200), fill=(255, 214, 90))
    draw.polygon([(0, 420), (260, 300), (520, 430), (780, 320), (900, 380), (900, 600), (0, 600)], fill=(70, 140, 80))
    draw.polygon([(0, 520), (400, 440), (900, 540), (900, 600), (0, 600)], fill=(50, 110, 60))
    path = tmp_path / "scene.png"
    image.save(path)
    return str(path)


def test_the_first_screen_holds_prompt_editor_generate_and_result(new_page, demo_url, scene):
    out = Path(os.environ.get("SCREENSHOT_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "playground-shots")
    out.mkdir(parents=True, exist_ok=True)
    desk = new_page(viewport={"width": 1440, "height": 900})
    desk.goto(demo_url)
    upload_and_paint(desk, scene)
    run(desk, "Replace the sky with a warm sunset")
    run(desk, "Add a red hot-air balloon above the hills")
    desk.evaluate("window.scrollTo(0, 0)")
    for element in ("#prompt", "#editor", "#go", "#result", "#settings", "#preset-0", "#ledger"):
        box = desk.locator(element).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 900, (element, box)
    desk.screenshot(path=out / "screenshot.png")
    desk.screenshot(path=out / "screenshot-full.png", full_page=True)

    with desk.expect_download() as download:
        desk.locator("#bundle").click()
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        report, snippet = archive.read("report.html").decode(), archive.read("edit.py").decode()
    (out / "snippet-edit.py").write_text(snippet)
    offline = new_page(viewport={"width": 1100, "height": 900}, offline=True)
    offline.set_content(report)
    expect(offline.locator("h1")).to_be_visible()
    offline.screenshot(path=out / "report.png")

    phone = new_page(viewport={"width": 390, "height": 844})
    phone.goto(demo_url)
    expect(phone.locator("#go")).to_be_visible()
    order = [phone.locator(e).bounding_box()["y"] for e in ("#editor", "#prompt", "#go", "#result", "#key_note",
                                                            "#settings", "#history")]
    assert order == sorted(order), order
    phone.screenshot(path=out / "screenshot-phone.png", full_page=True)
