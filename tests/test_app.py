"""The `/edit` endpoint through gradio_client against the running app and the strict fake: the same checks and
request function as the Generate button."""

import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import requests
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from playground.api import SIGNATURE, upload_path
from playground.inputs import InputError
from playground.params import PARAMS

KEY = "test-key"


def save(tmp_path, name, image, fmt="PNG"):
    path = tmp_path / name
    image.save(path, fmt)
    return str(path)


def photo(size=(600, 400)):
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return Image.fromarray(np.dstack([x, y, 255 - x]).astype(np.uint8), "RGB")


def rect_mask(size, box):
    """API form: alpha 0 inside `box` (the area to edit), 255 elsewhere."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def call(client, **kw):
    kw.setdefault("api_key", KEY)
    return client.predict(api_name="/edit", **kw)


@pytest.mark.parametrize(("mode", "transport"), [("queue", "upload"), ("sync", "inline"), ("queue", "inline")])
def test_edit_with_a_mask_edits_exactly_the_painted_area(client, fake, app_env, tmp_path, mode, transport):
    app_env(SEGMIND_API_MODE=mode, SEGMIND_IMAGE_TRANSPORT=transport)
    image = save(tmp_path, "photo.png", photo((600, 400)))
    mask = save(tmp_path, "mask.png", rect_mask((600, 400), (100, 100, 300, 200)))
    path, record = call(client, prompt="add a red balloon", images=[handle_file(image)], mask=handle_file(mask),
                        size="1536x1024")
    assert path.endswith(".png")
    assert record["remaining_credits"] == pytest.approx(50 - 0.028)
    assert record["elapsed_s"] >= 0 and record["request_id"]
    sent = fake.edits[-1]
    assert sent.images[0].size == (600, 400)
    alpha = np.asarray(sent.mask.getchannel("A"))
    assert alpha[100:200, 100:300].max() == 0 and alpha[:100].min() == 255 and alpha[200:].min() == 255
    out = np.asarray(Image.open(path).convert("RGB"))
    assert out.shape == (1024, 1536, 3)
    green = (out[..., 1] > 240) & (out[..., 0] < 15) & (out[..., 2] < 15)
    ys, xs = np.nonzero(green)
    assert abs(xs.min() - 256) <= 3 and abs(xs.max() - 768) <= 3 and abs(ys.min() - 256) <= 3
    assert abs(ys.max() - 512) <= 3
    payload = fake.edits[-1].payload
    if transport == "inline":
        assert payload["image_urls"][0].startswith("data:image/") and payload["mask"].startswith("data:image/png")
    else:
        assert payload["image_urls"][0].startswith(fake.url + "/assets/")
        assert fake.count("POST", "/upload-asset") == 1


def test_typed_urls_go_through_unchanged_after_the_uploads(client, fake, app_env, tmp_path):
    buf = io.BytesIO()
    photo((300, 300)).save(buf, "JPEG")
    url = fake.add_asset(buf.getvalue(), "ref.jpg")
    image = save(tmp_path, "first.png", photo((400, 400)))
    call(client, prompt="match the style", images=[handle_file(image)], image_urls=[url])
    urls = fake.edits[-1].payload["image_urls"]
    assert len(urls) == 2 and urls[1] == url


def test_a_single_url_string_is_taken_as_a_list(client, fake):
    buf = io.BytesIO()
    photo((200, 200)).save(buf, "PNG")
    url = fake.add_asset(buf.getvalue(), "one.png")
    call(client, prompt="edit", image_urls=url)
    assert fake.edits[-1].payload["image_urls"] == [url]


def test_urls_alone_are_enough(client, fake, tmp_path):
    buf = io.BytesIO()
    photo((300, 200)).save(buf, "PNG")
    url = fake.add_asset(buf.getvalue(), "only.png")
    path, _ = call(client, prompt="make it night", image_urls=[url], output_format="jpeg", output_compression=70)
    assert path.endswith(".jpg")
    with open(path, "rb") as output:
        assert output.read(3) == b"\xff\xd8\xff"
    assert fake.edits[-1].payload["image_urls"] == [url]
    assert fake.edits[-1].payload["output_compression"] == 70


def test_the_server_key_is_used_when_none_is_given(client, fake, app_env, tmp_path):
    app_env(SEGMIND_API_KEY=KEY)
    image = save(tmp_path, "a.png", photo())
    path, record = call(client, prompt="brighter", images=[handle_file(image)], api_key=None)
    assert path.endswith(".png") and KEY not in repr(record)
    assert fake.requests[-1].headers.get("x-api-key") is None  # the last request is the keyless download
    assert all(r.headers.get("x-api-key") == KEY for r in fake.requests if not r.path.startswith("/outputs/"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prompt": "   "}, "Write a prompt"),
    ({"images": []}, "Add an image"),
    ({"image_urls": ["ftp://example.com/a.png"]}, r"not an http\(s\) URL"),
    ({"image_urls": ["https://example.com/x.png"] * 16}, "at most 16"),
    ({"background": "transparent", "output_format": "jpeg"}, "transparent background needs png or webp"),
    ({"api_key": ""}, "Paste your Segmind API key"),
])
def test_bad_input_is_refused_before_anything_is_sent(client, fake, tmp_path, kwargs, message):
    image = save(tmp_path, "a.png", photo())
    args = {"prompt": "edit", "images": [handle_file(image)], **kwargs}
    with pytest.raises(AppError, match=message):
        call(client, **args)
    assert fake.requests == []


@pytest.mark.parametrize("compression", [0, 101, "abc", None, "12.5"])
def test_compression_outside_1_to_100_is_refused(client, fake, tmp_path, compression):
    image = save(tmp_path, "a.png", photo())
    with pytest.raises(AppError, match=r"Output compression must be (between 1 and 100|a whole number)"):
        call(client, prompt="edit", images=[handle_file(image)], output_compression=compression)
    assert fake.requests == []


def test_a_mask_without_an_uploaded_first_image_is_refused(client, fake, tmp_path):
    mask = save(tmp_path, "m.png", rect_mask((100, 100), (0, 0, 50, 50)))
    with pytest.raises(AppError, match="mask needs an uploaded first image"):
        call(client, prompt="edit", image_urls=["https://example.com/a.png"], mask=handle_file(mask))
    assert fake.requests == []


@pytest.mark.parametrize(("mode", "fault", "message"), [
    ("queue", "406", "Not enough Segmind credits"),
    ("sync", "406", "Not enough Segmind credits"),
    ("queue", "job_failed", "failed: Prompt is Mandatory"),
    ("queue", "500", "Segmind failed with 500"),
    ("sync", "500", "Segmind failed with 500"),
    ("sync", "html200", "instead of an image"),
    ("queue", "429", "rate limit"),
])
def test_segmind_errors_reach_the_caller_as_clear_messages(client, fake, app_env, tmp_path, mode, fault, message):
    app_env(SEGMIND_API_MODE=mode)
    fake.fail(fault, times=5)
    image = save(tmp_path, "a.png", photo())
    with pytest.raises(AppError, match=message) as caught:
        call(client, prompt="edit", images=[handle_file(image)])
    assert KEY not in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_wrong_key_is_reported_without_echoing_it(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    with pytest.raises(AppError, match="rejected the API key") as caught:
        call(client, prompt="edit", images=[handle_file(image)], api_key="SG_not_a_real_key")
    assert "SG_not_a_real_key" not in str(caught.value)


def test_the_app_keeps_serving_after_errors(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    fake.fail("503", times=3)  # as many as the app tries
    with pytest.raises(AppError):
        call(client, prompt="edit", images=[handle_file(image)])
    path, _ = call(client, prompt="edit", images=[handle_file(image)])
    assert path.endswith(".png")


def test_keep_outside_mask_pastes_the_original_back_at_full_resolution(client, fake, tmp_path):
    original = photo((900, 600))
    image = save(tmp_path, "photo.png", original)
    mask = save(tmp_path, "mask.png", rect_mask((900, 600), (300, 200, 600, 400)))
    path, record = call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask),
                        size="1536x1024", keep_outside_mask=True)
    assert record["pasted_back"] and path.endswith(".png")
    out = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert out.shape == (600, 900, 3)
    src = np.asarray(original).astype(int)
    far = np.ones((600, 900), bool)
    far[200 - 20:400 + 20, 300 - 20:600 + 20] = False
    assert np.abs(out[far] - src[far]).max() <= 1
    inside = out[220:380, 320:580]
    assert (inside[..., 1] > 240).mean() > 0.99
    assert record["changed_outside_pct"] is not None


def test_without_paste_back_the_changes_outside_the_mask_are_measured(client, fake, tmp_path):
    texture = np.random.default_rng(1).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    image = save(tmp_path, "photo.png", Image.fromarray(texture, "RGB"))
    mask = save(tmp_path, "mask.png", rect_mask((600, 400), (0, 0, 300, 400)))
    fake.fail("wrong_size")  # a fine texture squeezed into 512x512 and stretched back: changed outside the mask
    _, record = call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask), size="1024x1024")
    assert not record["pasted_back"]
    assert record["changed_outside_pct"] > 1 and record["heatmap_file"] == "heatmap.png"
    assert any("1024x1024" in p for p in record["problems"])


def test_a_black_and_white_mask_is_converted_to_the_api_form(client, fake, tmp_path):
    bw = Image.new("L", (400, 300), 0)
    bw.paste(255, (50, 50, 150, 100))
    image = save(tmp_path, "photo.png", photo((400, 300)))
    mask = save(tmp_path, "bw.png", bw)
    call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask), mask_edit_colour="white")
    alpha = np.asarray(fake.edits[-1].mask.getchannel("A"))
    assert alpha[50:100, 50:150].max() == 0 and (alpha == 0).sum() == 100 * 50


def test_invert_mask(client, fake, tmp_path):
    image = save(tmp_path, "photo.png", photo((400, 300)))
    mask = save(tmp_path, "mask.png", rect_mask((400, 300), (0, 0, 100, 300)))
    call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask), invert_mask=True)
    alpha = np.asarray(fake.edits[-1].mask.getchannel("A"))
    assert alpha[:, :100].min() == 255 and alpha[:, 100:].max() == 0


def test_a_large_photo_is_scaled_down_with_its_mask_aligned(client, fake, tmp_path):
    image = save(tmp_path, "big.png", photo((3000, 2000)))
    mask = save(tmp_path, "mask.png", rect_mask((3000, 2000), (1500, 1000, 3000, 2000)))
    _, record = call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask))
    sent = fake.edits[-1]
    assert sent.images[0].size == sent.mask.size == (2048, 1365)
    alpha = np.asarray(sent.mask.getchannel("A"))
    assert alpha[683:, 1024:].max() == 0 and alpha[:682].min() == 255 and alpha[:, :1023].min() == 255
    assert any("scaled from 3000×2000 to 2048×1365" in n for n in record["notes"])


def test_a_rotated_phone_photo_is_sent_upright(client, fake, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "phone.jpg"
    photo((400, 300)).save(path, "JPEG", exif=exif.tobytes())
    call(client, prompt="edit", images=[handle_file(str(path))])
    assert fake.edits[-1].images[0].size == (300, 400)


def test_a_file_that_is_not_an_image_is_named_and_nothing_is_sent(client, fake, tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not an image")
    with pytest.raises(AppError, match=r"notes\.png"):
        call(client, prompt="edit", images=[handle_file(str(bogus))])
    assert fake.requests == []


def test_an_output_in_the_wrong_format_is_flagged(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    fake.fail("wrong_format")
    path, record = call(client, prompt="edit", images=[handle_file(image)], output_format="jpeg")
    assert path.endswith(".png")
    assert any("jpeg" in p for p in record["problems"])


def test_an_opaque_checkerboard_instead_of_transparency_is_flagged(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    fake.fail("opaque_transparent")
    _, record = call(client, prompt="cut out", images=[handle_file(image)], background="transparent")
    assert any("checkerboard" in p for p in record["problems"])


def test_the_record_names_its_run_and_no_server_path(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    _, record = call(client, prompt="edit", images=[handle_file(image)])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", record["run_id"])
    flat = json.dumps(record)
    assert tempfile.gettempdir() not in flat and str(tmp_path) not in flat and "/" not in record["result_file"]


def test_after_paste_back_the_record_names_the_format_delivered(client, fake, tmp_path):
    image = save(tmp_path, "photo.png", photo((600, 400)))
    mask = save(tmp_path, "mask.png", rect_mask((600, 400), (100, 100, 300, 200)))
    fake.fail("wrong_format")  # png was asked for; the model sends jpeg, and the pasted-back file is png
    path, record = call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask),
                        keep_outside_mask=True)
    assert Image.open(path).format == "PNG" and record["output_format"] == "png"
    assert record["model_output_format"] == "jpeg" and record["model_output_file"] == "model-output.jpg"


def test_an_all_transparent_mask_edits_everything_and_says_so(client, fake, tmp_path):
    image = save(tmp_path, "photo.png", photo((600, 400)))
    mask = save(tmp_path, "mask.png", Image.new("RGBA", (600, 400), (0, 0, 0, 0)))
    _, record = call(client, prompt="edit", images=[handle_file(image)], mask=handle_file(mask))
    assert any("whole image may change" in note for note in record["mask_notes"])


def test_the_api_description_names_every_parameter(client):
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/edit"]["parameters"]
    names = [p["parameter_name"] for p in params]
    assert not any(name.startswith("parameter_") for name in names)
    assert set(names) >= {"prompt", "images", "mask", "image_urls", "api_key", *(p.name for p in PARAMS)}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image_urls": 5}, "image_urls must be a list of http"),
    ({"api_key": "SG_ключ"}, "cannot be sent .*non-ASCII"),
    ({"api_key": "SG_abc\ndef"}, "cannot be sent .*line break"),
])
def test_values_of_the_wrong_kind_are_refused_at_once(client, fake, tmp_path, kwargs, message):
    image = save(tmp_path, "a.png", photo())
    with pytest.raises(AppError, match=message) as refused:
        call(client, prompt="edit", images=[handle_file(image)], **kwargs)
    assert "ключ" not in str(refused.value) and "abc" not in str(refused.value)
    assert fake.requests == []


@pytest.mark.parametrize("path", ["/etc/hostname", "../../etc/hostname", "https://example.com/a.png"])
def test_a_server_file_path_is_not_an_upload(app_url, fake, app_env, path):
    """A raw call (no client to upload anything) naming a file on the server is refused (by Gradio, before the
    handler runs), and nothing of the file comes back."""
    file = {"path": path, "meta": {"_type": "gradio.FileData"}}
    values = {**{name: p.default for name, p in SIGNATURE.parameters.items()}, "prompt": "edit", "images": [file],
              "api_key": "test-key"}
    started = requests.post(f"{app_url}gradio_api/call/edit", json={"data": list(values.values())}, timeout=30)
    events = requests.get(f"{app_url}gradio_api/call/edit/{started.json()['event_id']}", timeout=60).text
    assert "event: error" in events and Path("/etc/hostname").read_text().strip() not in events
    assert fake.requests == []


def test_a_broken_download_after_the_job_finished_says_so_without_resume(client, fake, tmp_path):
    image = save(tmp_path, "a.png", photo())
    fake.fail("truncated", on="download", times=10)
    with pytest.raises(AppError) as failed:
        call(client, prompt="edit", images=[handle_file(image)])
    text = str(failed.value)
    assert "Resume" not in text and "Lost track" not in text and "incomplete" in text


PARAMS_REVERSED = """
import json, sys
import playground.params as params
params.PARAMS = tuple(reversed(params.PARAMS))
sys.path.insert(0, "tests")
from fake_segmind import FakeSegmind
from gradio_client import Client, handle_file
from app import create_app
from playground.config import load_settings
from playground.service import Service
from playground.store import RunStore
with FakeSegmind() as fake:
    env = {"SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url, "SEGMIND_POLL_S": "0.01"}
    demo = create_app(Service(store=RunStore(sys.argv[1]), settings=lambda: load_settings(env)))
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    client.predict(prompt="edit", images=[handle_file(sys.argv[2])], size="1024x1536", quality="low",
                   output_format="webp", output_compression=55, moderation="low", api_key="test-key",
                   api_name="/edit")
    payload = fake.edits[-1].payload
    demo.close()
print("PAYLOAD", json.dumps(payload))
"""


def test_edit_does_not_depend_on_the_order_of_the_parameters(tmp_path):
    image = save(tmp_path, "a.png", photo())
    out = subprocess.run([sys.executable, "-c", PARAMS_REVERSED, str(tmp_path / "runs"), image], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout.split("PAYLOAD ")[-1])
    assert {k: payload[k] for k in ("size", "quality", "background", "output_format", "output_compression",
                                    "moderation")} == {"size": "1024x1536", "quality": "low", "background": "opaque",
                                                       "output_format": "webp", "output_compression": 55,
                                                       "moderation": "low"}


@pytest.mark.parametrize("file", ["/etc/hostname", {"path": "/etc/hostname"}, {"path": "https://example.com/a"},
                                  {"path": ""}, 5])
def test_only_files_uploaded_to_this_app_are_read(file):
    with pytest.raises(InputError):
        upload_path(file, "Image 1")


def test_an_answer_without_the_balance_asks_the_free_credits_endpoint(client, fake, tmp_path):
    fake.report_balance = False
    image = save(tmp_path, "photo.png", photo())
    _, record = call(client, prompt="edit", images=[handle_file(image)])
    assert record["remaining_credits"] == pytest.approx(50 - fake.cost)
    assert fake.count("GET", "/v1/get-user-credits") == 1
    fake.report_balance = True
    _, record = call(client, prompt="edit", images=[handle_file(image)])
    assert fake.count("GET", "/v1/get-user-credits") == 1  # a balance in the answer needs no second call
