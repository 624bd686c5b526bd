import time

from playwright.sync_api import expect


def test_explore(page, app_url, app_env):
    log = []
    t0 = time.time()
    page.on("request", lambda r: log.append((round(time.time() - t0, 2), "req", r.method, r.url)))
    page.on("requestfinished", lambda r: log.append((round(time.time() - t0, 2), "fin", r.method, r.url)))
    page.goto(app_url)
    expect(page.locator("#go")).to_be_visible()
    expect(page.locator("#key_note")).to_contain_text("Paste")
    page.wait_for_timeout(3000)
    for entry in log:
        if "gradio_api" in entry[3]:
            print(entry)
    print(page.evaluate("JSON.stringify(Object.keys(localStorage))"))
