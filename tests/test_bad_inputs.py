"""The bad-input matrix: empty, oversized, malformed and hostile inputs through /edit (gradio_client and a raw queue
POST) and the MCP tool's path, each refused with a message that says what to do, before anything billable reaches
the fake, and with the app still serving afterwards."""

import io

import numpy as np
import pytest
import requests
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from raw_queue import fn_index, queue_post
from test_images import png_header

from playground.api import SIGNATURE
from playground.params import MAX_IMAGES, PROMPT_MAX_CHARS

KEY = "test-key"


def photo(size=(320, 240)) -> Image.Image:
    x = np.linspace(0, 255, size[0]).astype(np.uint8)
    return Image.fromarray(np.dstack([np.tile(x, (size[1], 1))] * 3), "RGB")


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    if isinstance(data, Image.Image):
        data.save(path)
    else:
        path.write_bytes(data)
    return str(path)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


# (name, files to write, /edit arguments with {file} placeholders, the words the message must hold)
CASES = [
    ("empty prompt", {}, {"prompt": ""}, "Write a prompt"),
    ("blank prompt", {}, {"prompt": " \n\t "}, "Write a prompt"),
    ("prompt too long", {}, {"prompt": "x" * (PROMPT_MAX_CHARS + 1)}, "at most"),
    ("no image at all", {}, {"images": []}, "Add an image"),
    ("text file named png", {"bad.png": b"these are notes, not a picture\n"}, {"images": ["bad.png"]},
     "bad.png"),
    ("empty file", {"empty.png": b""}, {"images": ["empty.png"]}, "empty.png"),
    ("truncated png", {"cut.png": png_bytes(photo())[:200]}, {"images": ["cut.png"]}, "cut.png"),
    ("decompression bomb header", {"bomb.png": png_header(100_000, 100_000)}, {"images": ["bomb.png"]},
     "too large"),
    ("9400x9400 flat png", {"huge.png": Image.new("RGB", (9400, 9400), (9, 9, 9))}, {"images": ["huge.png"]},
     "too large"),
    ("html disguised as an image", {"page.jpg": b"<html><script>alert(1)</script></html>"},
     {"images": ["page.jpg"]}, "page.jpg"),
    ("zip disguised as an image", {"a.webp": b"PK\x03\x04" + b"\0" * 100}, {"images": ["a.webp"]}, "a.webp"),
    ("too many images", {"a.png": photo((40, 30))}, {"images": ["a.png"] * (MAX_IMAGES + 1)}, f"at most {MAX_IMAGES}"),
    ("mask that is not an image", {"m.png": b"not a mask"}, {"mask": "m.png"}, "m.png"),
    ("mask bomb", {"m.png": png_header(90_000, 90_000)}, {"mask": "m.png"}, "too large"),
    ("ftp url", {}, {"image_urls": ["ftp://example.com/a.png"]}, "http(s) URL"),
    ("file url", {}, {"image_urls": ["file:///etc/passwd"]}, "http(s) URL"),
    ("javascript url", {}, {"image_urls": ["javascript:alert(1)"]}, "http(s) URL"),
    ("data url in image_urls", {}, {"image_urls": ["data:text/html,<b>x</b>"]}, "http(s) URL"),
    ("too many urls", {}, {"image_urls": ["https://example.com/x.png"] * MAX_IMAGES}, f"at most {MAX_IMAGES}"),
    ("size not offered", {}, {"size": "2048x2048"}, "Size must be one of"),
    ("quality not offered", {}, {"quality": "ultra"}, "Quality must be one of"),
    ("background not offered", {}, {"background": "clear"}, "Background must be one of"),
    ("format not offered", {}, {"output_format": "gif"}, "Output format must be one of"),
    ("compression 0", {}, {"output_compression": 0}, "between 1 and 100"),
    ("compression 101", {}, {"output_compression": 101}, "between 1 and 100"),
    ("compression not whole", {}, {"output_compression": 50.5}, "whole number"),
    ("moderation not offered", {}, {"moderation": "none"}, "Moderation must be one of"),
    ("transparent jpeg", {}, {"background": "transparent", "output_format": "jpeg"}, "png or webp"),
    ("mask colour not offered", {}, {"mask_edit_colour": "purple"}, "purple"),
    ("no key anywhere", {}, {"api_key": ""}, "Paste your Segmind API key"),
    ("key with a line break", {}, {"api_key": "SG_abc\ndef"}, "line break"),
    ("key with non-ascii", {}, {"api_key": "SG_ключ"}, "non-ASCII"),
]


@pytest.mark.parametrize(("files", "kwargs", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_through_edit(client, fake, app_url, tmp_path, files, kwargs, words):
    names = {name: write(tmp_path, name, data) for name, data in files.items()}
    args = {"prompt": "an edit", "images": [handle_file(write(tmp_path, "ok.png", photo()))], "api_key": KEY}
    for key, value in kwargs.items():
        if key in ("images", "mask"):
            value = [handle_file(names[v]) for v in value] if isinstance(value, list) else handle_file(names[value])
        args[key] = value
    with pytest.raises(AppError) as refused:
        client.predict(api_name="/edit", **args)
    assert words.lower() in str(refused.value).lower(), str(refused.value)
    assert fake.count("POST") == 0, "something billable was sent"
    assert requests.get(app_url, timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../etc/hostname", "/proc/self/environ"])
def test_a_server_path_posted_as_an_upload_reads_nothing(app_url, app_env, fake, path):
    given = {"prompt": "an edit", "images": [{"path": path, "meta": {"_type": "gradio.FileData"}}],
             "api_key": KEY}
    data = [given.get(name, p.default) for name, p in SIGNATURE.parameters.items() if name != "request"]
    answer = queue_post(app_url, fn_index(app_url, "edit"), data)
    assert "root:" not in answer and "PATH=" not in answer
    assert '"success": true' not in answer.replace(" ", "").replace('"success":true', '"success": true')
    assert fake.count("POST") == 0
    assert requests.get(app_url, timeout=10).status_code == 200


def test_an_upload_over_the_size_limit_is_refused_before_the_app_reads_it(app_url, app_env, fake):
    big = io.BytesIO(b"\0" * (51 * 1024 * 1024))
    answer = requests.post(f"{app_url}gradio_api/upload", files={"files": ("big.png", big)}, timeout=60)
    assert answer.status_code == 413, answer.status_code
    assert requests.get(app_url, timeout=10).status_code == 200


PAGE_CASES = [
    ("no image", {"#api_key input": KEY}, "Add an image"),
    ("ftp url", {"#api_key input": KEY, "#image_urls textarea": "ftp://example.com/a.png"}, "http(s) URL"),
    ("prompt too long", {"#api_key input": KEY, "#prompt textarea": "x" * (PROMPT_MAX_CHARS + 1)}, "at most"),
    ("key with non-ascii", {"#api_key input": "SG_ключ", "#image_urls textarea": "https://example.com/a.png"},
     "non-ASCII"),
]


@pytest.mark.browser
def test_bad_input_through_the_page(page, app_url, app_env, fake):
    """The same refusals on the page: a message, nothing sent, and what was typed is still there."""
    from playwright.sync_api import expect

    for name, fields, words in PAGE_CASES:
        page.goto(app_url)
        expect(page.locator("#go")).to_be_visible()
        fields = {"#prompt textarea": "an edit", **fields}
        for selector, value in fields.items():
            page.locator(selector).fill(value)
        page.locator("#go").click()
        expect(page.locator(".toast-body").first).to_contain_text(words, timeout=20_000)
        for selector, value in fields.items():
            assert page.locator(selector).input_value() == value, (name, selector)
        expect(page.locator("#stop")).to_be_hidden()
    assert fake.count("POST") == 0
