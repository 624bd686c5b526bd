"""The run bundle: every file a run leaves, none holding a key, and /bundle refusing whatever is not a run's id."""

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from run_factory import make_run, photo, rect_mask

from playground.bundle import BundleError, bundle

KEY = "SG_b7e2c91d4f0a6358"
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (archive.read(info), info) for info in archive.infolist()}


def test_the_bundle_holds_every_file_of_the_run(fake, tmp_path):
    fake.fail("wrong_format")  # png asked, jpeg sent: the model's own output keeps its real format
    service, run, record = make_run(fake, tmp_path, transport="inline", images=2, url_images=1, keep_outside=True)
    files = members(bundle(run, service.settings()))
    inputs = sorted(name for name in files if name.startswith("input-"))
    assert [re.sub(r"\.(png|jpg|webp)$", "", n) for n in inputs] == ["input-1", "input-2"]
    assert set(files) == {*inputs, "mask.png", "result.png", "model-output.jpg", "heatmap.png", "request.json",
                          "record.json", "edit.py", "edit.sh", "edit_client.py", "report.html"}
    for name, (data, _) in files.items():
        if name.endswith((".png", ".jpg", ".webp")):
            assert Image.open(io.BytesIO(data)).format == FORMATS[name.rsplit(".", 1)[1]]
            assert data == run.read(name)  # the files as sent and received, not re-encoded
    assert files["edit.sh"][1].external_attr >> 16 & 0o111

    body, sent = json.loads(files["request.json"][0]), run.read_json("request.json")
    for note, uri, name in zip([*body["image_urls"][:2], body["mask"]], [*sent["image_urls"][:2], sent["mask"]],
                               [*inputs, "mask.png"], strict=True):
        data = files[name][0]
        assert base64.b64decode(uri.split(",", 1)[1]) == data
        assert name in note and hashlib.sha256(data).hexdigest() in note and f"{len(data)} bytes" in note
    assert body["image_urls"][2] == sent["image_urls"][2]  # a typed URL stays as it was
    assert {k: v for k, v in body.items() if k not in ("image_urls", "mask")} == {
        k: v for k, v in sent.items() if k not in ("image_urls", "mask")}
    assert json.loads(files["record.json"][0]) == record.to_dict() | {"output_size": list(record.output_size)}
    assert len(files["report.html"][0]) < 1_000_000


@pytest.mark.parametrize("whose", ["server", "visitor"])
@pytest.mark.parametrize("transport", ["upload", "inline"])
def test_no_file_in_the_bundle_holds_the_key(fake, tmp_path, whose, transport):
    fake.api_key = KEY
    keys = {"server_key": KEY} if whose == "server" else {"api_key": KEY}
    service, run, _ = make_run(fake, tmp_path, transport=transport, **keys)
    path = bundle(run, service.settings())
    raw = path.read_bytes()
    forms = [KEY.encode(), base64.b64encode(KEY.encode()), KEY[3:].encode()]
    assert not any(form in raw for form in forms)
    for name, (data, _) in members(path).items():
        assert not any(form in data for form in forms), name


def test_a_run_without_a_result_is_not_bundled(fake, tmp_path):
    service, run, _ = make_run(fake, tmp_path)
    unfinished = service.store.create("tests", state="sending")
    with pytest.raises(BundleError, match="no result"):
        bundle(unfinished, service.settings())
    assert bundle(run, service.settings()).is_file()


@pytest.fixture
def bundle_client(gradio_client):
    """/edit and /bundle of the app itself (app.py), so that a clash of endpoint names would show here."""
    return gradio_client


def test_bundle_through_gradio_client(bundle_client, fake, app_env, tmp_path):
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    photo().save(image)
    rect_mask((600, 400), (100, 100, 300, 200)).save(mask)
    _, record = bundle_client.predict(prompt="add a red balloon", images=[handle_file(str(image))],
                                      mask=handle_file(str(mask)), api_key=fake.api_key, api_name="/edit")
    path = bundle_client.predict(record["run_id"], api_name="/bundle")
    assert Path(path).name == f"segmind-edit-{record['run_id'].lower()}.zip"
    files = members(path)
    assert {"mask.png", record["result_file"], "request.json", "record.json", "edit.py", "edit.sh",
            "edit_client.py", "report.html"} <= set(files)
    assert json.loads(files["record.json"][0])["run_id"] == record["run_id"]


def test_bundle_refuses_anything_but_a_kept_run_id(bundle_client, service, tmp_path):
    outside = service.store.root.parent / "not-a-run"
    outside.mkdir(exist_ok=True)
    (outside / "meta.json").write_text('{"created_at": 9e99}')
    real = service.store.create("tests")
    expired = service.store.create("tests")
    expired.update(created_at=1.0)
    crafted = ["A" * 22, "../" + "A" * 19, "../../../../etc/passwd", "/etc/passwd", str(real.folder),
               str(outside), "..%2F..%2Fetc%2Fpasswd", real.run_id + "/../" + real.run_id, "", expired.run_id]
    for run_id in crafted:
        with pytest.raises(AppError, match="No run with this run_id is kept here") as refused:
            bundle_client.predict(run_id, api_name="/bundle")
        assert "root:" not in str(refused.value) and str(service.store.root) not in str(refused.value)
    with pytest.raises(AppError, match="no result to take away"):
        bundle_client.predict(real.run_id, api_name="/bundle")

