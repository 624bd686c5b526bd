"""Taking a run away from the page, in headless Chromium: its code, its zip, and a comparison report."""

import io
import re
import zipfile
from pathlib import Path

import pytest
from pages import KEY, upload_and_paint
from playwright.sync_api import expect
from test_browser_show import app, run  # noqa: F401  (a fixture and a helper shared with the showing tests)

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)
BUNDLED = {"input-1.png", "mask.png", "request.json", "record.json", "edit.py", "edit.sh", "edit_client.py",
           "report.html", "heatmap.png"}


def test_the_shown_run_brings_its_code_and_one_click_downloads_its_zip(app, fake, photo):  # noqa: F811
    app.locator("#api_key input").fill(KEY)  # the visitor's own key: in no snippet and no file
    upload_and_paint(app, photo)
    run(app, "a lighthouse at dusk")
    app.locator("#snippet .label-wrap").first.click()
    code = app.locator("#snippet_edit_py")
    expect(code).to_contain_text("SEGMIND_API_KEY")
    expect(code).to_contain_text("a lighthouse at dusk")
    assert KEY not in code.inner_text()

    with app.expect_download() as download:
        app.locator("#bundle").click()
    data = Path(download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert names >= BUNDLED and any(n.startswith("result.") for n in names), names
        for name in names:
            assert KEY.encode() not in archive.read(name), name


def test_a_history_entry_brings_its_own_code_and_compare_downloads_one_report(app, fake, photo):  # noqa: F811
    upload_and_paint(app, photo)
    run(app, "first version", quality="low")
    run(app, "second version", quality="high")
    app.locator("#history .hcard").nth(1).locator(".pick").click()
    expect(app.locator("#info")).to_contain_text("first version")
    app.locator("#snippet .label-wrap").first.click()
    expect(app.locator("#snippet_edit_py")).to_contain_text("first version")

    for box in app.locator("#history .cmp").all():
        box.check()
    app.locator("#history .compare-btn").click()
    expect(app.locator("#compare_download")).to_be_visible()
    with app.expect_download() as download:
        app.locator("#compare_download").click()
    report = Path(download.value.path()).read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", report)
    assert "first version" in text and "second version" in text
    assert report.count("<img") >= 2 and "http://" not in report.replace("http://www.w3.org", "")
