"""What the browser tests do on the page: the test photo, the settings, putting an image into the editor and
painting on it.

The editor draws in software here: each pointer move while painting renders the whole stroke again at the image's
size (about half a second for 900×600 on two cores), so the photo is small and a stroke is one move.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

KEY = "test-key"
PHOTO_SIZE = (600, 400)


def gradient_png(path: Path, size: tuple[int, int] = PHOTO_SIZE) -> Path:
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    Image.fromarray(np.dstack([x, y, 255 - x]).astype(np.uint8), "RGB").save(path)
    return path


def open_app(page: Page, url: str) -> Page:
    page.set_default_timeout(20_000)
    page.goto(url)
    expect(page.locator("#go")).to_be_visible()
    return page


def open_settings(page: Page) -> None:
    """The settings sit in an accordion, closed at first so that Generate and the result fit the first screen."""
    page.locator("#settings .label-wrap").first.click()
    expect(page.locator("#size")).to_be_visible()


def upload_to_editor(page: Page, photo: str) -> None:
    # A file set before the editor has drawn its canvas is dropped (about one page load in twenty).
    expect(page.locator("#editor canvas").first).to_be_attached()
    page.locator("#editor input[type=file]").set_input_files(photo)


def paint(page: Page, reach: int = 50) -> None:
    """One horizontal stroke through the middle of the editor, 2 × `reach` CSS pixels long."""
    expect(page.locator("#editor button[aria-label='Brush Size']")).to_be_visible()
    page.locator("#editor canvas").first.scroll_into_view_if_needed()  # the mouse paints only what is on screen
    box = page.locator("#editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - reach, cy)
    page.mouse.down()
    page.mouse.move(cx + reach, cy)
    page.mouse.up()


def upload_and_paint(page: Page, photo: str) -> None:
    upload_to_editor(page, photo)
    paint(page)
