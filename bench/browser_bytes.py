"""Bytes the browser sends per Generate with a 12 MP photo in the editor: the editor at full size (before) against
the editor holding the image scaled in the browser, as it was dropped in, to the size that is sent (after).

Run from the repository root: python bench/browser_bytes.py   (needs Chromium: `apt-get install -y chromium`)
Both apps run in this process in demo mode (no key, no network); headless Chromium drops a 4000x3000 JPEG into
the editor, paints a stroke and presses Generate. The page talks to the app through a counting TCP proxy, so every
byte the browser sends is counted: when the photo is dropped in (once) and from the click on Generate to the
result on screen (every Generate).
Goal: at least 3x fewer bytes per Generate after than before. Exits non-zero when missed.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import free_port, photo_file
from playwright.sync_api import expect, sync_playwright

from app import LAUNCH_KWARGS, create_app
from playground.demo import DemoBackends
from playground.service import Service
from playground.store import RunStore

GOAL = 3.0
SIZE = (4000, 3000)
expect.set_options(timeout=120_000)


class CountingProxy:
    """Forwards 127.0.0.1:port to the app's port and counts the bytes going from the browser to the app."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sent = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                if counted:
                    with self._lock:
                        self.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()


def measure(browser, proxy: CountingProxy, photo: Path, fitted: bool) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(600_000)
    page.goto(f"http://127.0.0.1:{proxy.port}/")
    loaded = proxy.sent
    expect(page.locator("#editor canvas").first).to_be_attached()
    page.locator("#editor input[type=file]").set_input_files(str(photo))
    if fitted:
        expect(page.locator("#editor_note")).to_contain_text("was scaled", timeout=600_000)
    expect(page.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    time.sleep(1.0)  # let the editor settle on its image before painting
    page.locator("#editor canvas").first.scroll_into_view_if_needed()
    box = page.locator("#editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 60, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy, steps=6)
    page.mouse.up()
    page.locator("#prompt textarea").fill("add a red balloon")
    time.sleep(1.0)  # the stroke's own messages, if any, are not the Generate's
    dropped = proxy.sent
    clicked = time.perf_counter()
    page.locator("#go").click()
    expect(page.locator("#result img")).to_be_visible(timeout=600_000)
    expect(page.locator("#progress")).to_contain_text("Done")
    result = {"drop": dropped - loaded, "generate": proxy.sent - dropped, "seconds": time.perf_counter() - clicked}
    context.close()
    return result


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Chromium is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        photo = photo_file(Path(tmp) / "photo.jpg", SIZE)
        rows = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            for name, fitted in (("before: editor at full size", False), ("after: scaled in the browser", True)):
                service = Service(store=RunStore(Path(tmp) / name[:5]), server_key=lambda: None,
                                  demo=DemoBackends(seconds=0.5), demo_only=True)
                demo = create_app(service, fit_editor_uploads=fitted)
                port = free_port()
                demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                            **LAUNCH_KWARGS)
                proxy = CountingProxy(port)
                try:
                    rows[name] = measure(browser, proxy, photo, fitted)
                finally:
                    proxy.close()
                    demo.close()
            browser.close()
    mb = 1024 * 1024
    print(f"photo: {SIZE[0]}x{SIZE[1]} JPEG")
    print(f"{'':36} {'on drop MB':>10} {'per Generate MB':>16} {'click to result s':>18}")
    for name, r in rows.items():
        print(f"{name:36} {r['drop'] / mb:10.1f} {r['generate'] / mb:16.1f} {r['seconds']:18.1f}")
    before, after = (r["generate"] for r in rows.values())
    ratio = before / max(after, 1)
    print(f"bytes per Generate: {ratio:.1f}x fewer (goal: at least {GOAL}x)" + ("" if ratio >= GOAL else "; MISSED"))
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
