"""The snippets of a run, run for real: each sends the run's JSON body to the local fake again and saves the image."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from run_factory import AWKWARD_PROMPT, make_run

from playground.bundle import bundle_files
from playground.snippets import snippets

FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
CASES = {
    "queue-upload": dict(mode="queue", transport="upload", params={"quality": "low"}),
    "queue-inline": dict(mode="queue", transport="inline", images=2, url_images=1,
                         params={"output_format": "webp", "output_compression": 80}),
    "sync-upload": dict(mode="sync", transport="upload", mask=False, url_images=1,
                        params={"output_format": "jpeg", "size": "1024x1024"}),
    "sync-inline": dict(mode="sync", transport="inline", params={"background": "transparent"}),
}
RUNNERS = {"edit.py": [sys.executable, "edit.py"], "edit.sh": ["bash", "edit.sh"]}


def unpack(service, run, folder, app_url="http://127.0.0.1:7860/"):
    """The run's bundle files in `folder`, as someone who downloaded it would have them."""
    folder.mkdir()
    for name, data in bundle_files(run, service.settings(), app_url=app_url).items():
        (folder / name).write_bytes(data)
    return folder


def run_snippet(command, folder, fake, **env):
    env = {**os.environ, "SEGMIND_API_KEY": fake.api_key, "SEGMIND_BASE_URL": fake.url, "SEGMIND_POLL_S": "0.01",
           **env}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def saved_image(folder):
    (path,) = folder.glob("edited.*")
    with Image.open(path) as img:
        img.load()
        assert img.format == FORMATS[path.suffix[1:]]  # saved under its real extension
        return img.copy()


@pytest.mark.parametrize("name", RUNNERS)
@pytest.mark.parametrize("case", CASES)
def test_a_snippet_sends_the_run_body_again(fake, tmp_path, case, name):
    if name == "edit.sh" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    service, run, record = make_run(fake, tmp_path, prompt=AWKWARD_PROMPT, **CASES[case])
    folder = unpack(service, run, tmp_path / "bundle")
    run_snippet(RUNNERS[name], folder, fake)
    assert len(fake.edits) == 2
    assert fake.edits[-1].payload == run.read_json("request.json")
    assert saved_image(folder).size == record.output_size or record.pasted_back
    if record.mode == "queue":
        assert fake.count("GET", "/v2/requests/") >= 4  # polled until COMPLETED, then fetched, both times


@pytest.mark.parametrize("case", CASES)
def test_snippets_carry_no_key_no_base64_and_the_run_settings(fake, tmp_path, case):
    service, run, _ = make_run(fake, tmp_path, **CASES[case])
    texts = snippets(run, service.settings())
    assert set(texts) == {"edit.py", "edit.sh", "edit_client.py"}
    for text in texts.values():
        assert fake.api_key not in text and ";base64,iVBOR" not in text and len(text) < 8000
    assert fake.url in texts["edit.py"] and fake.url in texts["edit.sh"]
    assert ("/v2/" in texts["edit.py"]) == (CASES[case]["mode"] == "queue")


@pytest.mark.parametrize("case", ["queue-upload", "sync-inline"])
def test_the_gradio_client_snippet_runs_the_edit_through_the_app(fake, app_env, app_url, tmp_path, case):
    service, run, record = make_run(fake, tmp_path, prompt=AWKWARD_PROMPT, **CASES[case])
    app_env(SEGMIND_API_MODE=record.mode, SEGMIND_IMAGE_TRANSPORT=CASES[case]["transport"])
    folder = unpack(service, run, tmp_path / "bundle", app_url=app_url)
    run_snippet([sys.executable, "edit_client.py"], folder, fake)
    first, again = fake.edits
    body = run.read_json("request.json")
    # The app uploads (or inlines) the files anew, so their references differ; what they hold must not.
    assert {k: v for k, v in again.payload.items() if k not in ("image_urls", "mask")} == {
        k: v for k, v in body.items() if k not in ("image_urls", "mask")}
    assert len(again.images) == len(first.images) and (again.mask is None) == (first.mask is None)
    for sent, original in zip([*again.images, again.mask], [*first.images, first.mask], strict=True):
        if original is not None:
            assert np.array_equal(np.asarray(sent.convert("RGBA")), np.asarray(original.convert("RGBA")))
    assert saved_image(folder).size == record.output_size


def test_the_gradio_client_snippet_defaults_to_the_app_url_given(fake, tmp_path):
    service, run, _ = make_run(fake, tmp_path)
    text = snippets(run, service.settings(), app_url="https://example.hf.space/")["edit_client.py"]
    assert "else 'https://example.hf.space/'" in text or 'else "https://example.hf.space/"' in text
