"""The leak crawler: the app runs with a known server key, a visitor brings a known key of their own, both are used,
and then everything a browser or caller could get is searched for either key: every response the page received
(event streams included), the pages and API descriptions, every file served, the browser's storage, the bundle and
its snippets, the run store's records, and the app's log."""

import base64
import io
import logging
import re
import zipfile
from pathlib import Path

import pytest
import requests
from pages import upload_and_paint
from playwright.sync_api import expect
from ports import free_port
from test_browser_show import run

from playground.guard import Guard, GuardSettings
from playground.service import Service
from playground.store import RunStore

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser

SERVER_KEY = "SG_server_owner_secret_7f3a"
VISITOR_KEY = "SG_visitor_own_secret_9c1d"
expect.set_options(timeout=20_000)


def forms(key: str) -> list[bytes]:
    raw = key.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), key.encode("utf-16-le")]



@pytest.fixture
def crawled_app(app_config, app_env, tmp_path):
    from app import LAUNCH_KWARGS, create_app

    app_env(SEGMIND_API_KEY=SERVER_KEY)
    service = Service(store=RunStore(tmp_path / "runs"), settings=app_config.settings,
                      server_key=app_config.server_key, guard=Guard(GuardSettings()))
    demo = create_app(service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    yield service, f"http://127.0.0.1:{port}/"
    demo.close()


def test_no_key_reaches_any_page_file_storage_record_bundle_or_log(crawled_app, page, fake, photo, caplog):
    service, url = crawled_app
    caplog.set_level(logging.DEBUG)
    received: list[tuple[str, bytes]] = []

    def keep(request):
        # Read once the response has ended: an event stream's body is only whole then.
        response = request.response()
        try:
            received.append((request.url, response.body() if response else b""))
        except Exception:  # a stream cut short by a reload has no body to read
            received.append((request.url, b""))

    page.on("requestfinished", keep)
    requested: list[str] = []  # every file the page showed was fetched by it, whatever became of the streams
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    fake.api_key = SERVER_KEY
    upload_and_paint(page, photo)
    run(page, "on the owner's key")
    fake.api_key = VISITOR_KEY
    page.locator("#api_key input").fill(VISITOR_KEY)
    run(page, "on my own key")
    page.locator("#credits").click()
    expect(page.locator("#key_note")).to_contain_text("Credits left")
    with page.expect_download() as download:
        page.locator("#bundle").click()
    bundle = Path(download.value.path()).read_bytes()
    requested.append(download.value.url)  # a download's request may not be reported as the page's
    page.locator("#history .hcard").nth(1).locator(".pick").click()
    expect(page.locator("#info")).to_contain_text("on the owner's key")
    expect(page.locator("#result img")).to_be_visible()
    shown = page.content().encode()  # the result and before/after images, linked by file URL until the reload
    page.reload()
    expect(page.locator("#history .hcard")).to_have_count(2)

    places: list[tuple[str, bytes]] = list(received)
    places += [("page before the reload", shown), ("page", page.content().encode())]
    places.append(("storage", page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + "
                                            "document.cookie").encode()))
    for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json"):
        places.append((path or "/", requests.get(url + path, timeout=10).content))
    served = set(re.findall(rb"/gradio_api/file=[^\"'\s)\\]+", b"".join(body for _, body in places)))
    served |= {url[url.index("/gradio_api/file="):].encode() for url in requested if "/gradio_api/file=" in url}
    for link in served:
        places.append((link.decode(), requests.get(url.rstrip("/") + link.decode(), timeout=10).content))
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        places += [(f"bundle/{name}", archive.read(name)) for name in archive.namelist()]
    places += [(str(f), f.read_bytes()) for f in service.store.root.rglob("*") if f.is_file()]
    places.append(("log", caplog.text.encode()))

    # The crawl saw what matters: the result and heat map the page showed, the bundle, and the streams. (Files are
    # served by content, so two runs with the same result share one link: their number is not a measure.)
    kinds = {kind for link in served for kind in ("result.", "heatmap.", ".zip") if kind.encode() in link}
    assert kinds == {"result.", "heatmap.", ".zip"}, served
    assert len(received) > 20
    for name, body in places:
        for key in (SERVER_KEY, VISITOR_KEY):
            assert not any(form in body for form in forms(key)), f"{key[:12]}… in {name}"
    print(f"\nleak crawl: {len(places)} places searched ({len(received)} responses, {len(served)} files served), "
          f"{sum(len(b) for _, b in places) / 1e6:.1f} MB, no key found")
