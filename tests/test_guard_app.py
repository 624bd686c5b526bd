"""The guard on the owner's credits, through the app: /edit with gradio_client, and raw queue POSTs that skip the
page (a private event is hidden, not protected), each counted by the edits the fake received."""

import json

import numpy as np
import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from ports import free_port
from raw_queue import queue_post

from playground.api import SIGNATURE
from playground.guard import Guard, GuardSettings
from playground.service import Service
from playground.store import RunStore

KEY = "test-key"  # the fake's key, used here as the server owner's



@pytest.fixture
def guarded(app_config, app_env, tmp_path):
    """make(**GuardSettings fields) -> (service, url): an app of its own whose server key is the fake's."""
    from app import LAUNCH_KWARGS, create_app

    app_env(SEGMIND_API_KEY=KEY)
    started = []

    def make(**settings):
        service = Service(store=RunStore(tmp_path / f"runs{len(started)}"), settings=app_config.settings,
                          server_key=app_config.server_key, guard=Guard(GuardSettings(**settings)))
        demo = create_app(service)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
        started.append(demo)
        return service, f"http://127.0.0.1:{port}/"

    yield make
    for demo in started:
        demo.close()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "photo.png"
    x = np.linspace(0, 255, 320).astype(np.uint8)
    Image.fromarray(np.dstack([np.tile(x, (240, 1))] * 3), "RGB").save(path)
    return str(path)


def edit(url, image, headers=None, **kw):
    client = Client(url, verbose=False, headers=headers or {})
    try:
        return client.predict(prompt="an edit", images=[handle_file(image)], api_name="/edit", **kw)
    finally:
        client.close()


def refused(url, image, words, **kw):
    with pytest.raises(AppError) as info:
        edit(url, image, **kw)
    assert words in str(info.value), str(info.value)


def test_a_password_guards_the_server_key_but_not_a_visitors_own(guarded, fake, image):
    _, url = guarded(password="open sesame")
    refused(url, image, "password")
    refused(url, image, "password", password="open sesam")
    assert fake.edits == []
    edit(url, image, password="open sesame")
    edit(url, image, api_key=KEY)  # the visitor's own key needs no password
    assert len(fake.edits) == 2


def test_each_visitor_has_runs_per_hour_and_refused_runs_do_not_count(guarded, fake, image):
    _, url = guarded(runs_per_hour=2)
    alice = {"x-forwarded-for": "203.0.113.7, 10.0.0.1"}
    fake.credits = 0.0  # Segmind refuses (406): nothing billed, nothing counted
    refused(url, image, "credits", headers=alice)
    fake.credits = 50.0
    edit(url, image, headers=alice)
    edit(url, image, headers=alice)
    refused(url, image, "The next run is possible in", headers=alice)
    assert len(fake.edits) == 2
    edit(url, image, headers={"x-forwarded-for": "198.51.100.9"})  # another visitor has runs of their own
    edit(url, image, headers=alice, api_key=KEY)  # and Alice's own key is not limited
    assert len(fake.edits) == 4


def test_all_visitors_share_the_runs_per_day(guarded, fake, image):
    _, url = guarded(runs_per_day=2)
    for visitor in ("192.0.2.1", "192.0.2.2"):
        edit(url, image, headers={"x-forwarded-for": visitor})
    refused(url, image, "all visitors together", headers={"x-forwarded-for": "192.0.2.3"})
    assert len(fake.edits) == 2


def test_below_the_credit_floor_the_server_key_stops_and_hides_its_balance(guarded, fake, image):
    service, url = guarded(credit_floor=49.99)
    _, record = edit(url, image)
    assert record["remaining_credits"] is None  # the owner's balance is not shown to visitors
    assert service.guard.balance == pytest.approx(50 - fake.cost)
    refused(url, image, "running low")
    assert len(fake.edits) == 1
    _, record = edit(url, image, api_key=KEY)
    assert record["remaining_credits"] == pytest.approx(50 - 2 * fake.cost)  # their own key: their own balance


def upload(url: str, path: str) -> dict:
    with open(path, "rb") as f:
        paths = requests.post(f"{url}gradio_api/upload", files={"files": f}, timeout=10).json()
    return {"path": paths[0], "meta": {"_type": "gradio.FileData"}, "orig_name": "photo.png"}


def test_raw_queue_posts_meet_the_same_guard(guarded, fake, image):
    """Generate's event is private and /edit is public; posting to the queue directly is refused all the same."""
    _, url = guarded(runs_per_hour=1)
    config = requests.get(f"{url}config", timeout=10).json()
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    kinds = {c["id"]: c.get("type") for c in config["components"]}
    deps = config["dependencies"]
    go = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "go")
    generate = next(i for i, d in enumerate(deps) if d.get("backend_fn") and [go, "click"] in
                    [list(t) for t in d["targets"]])
    photo = upload(url, image)
    values = {"prompt": "an edit", "editor": {"background": photo, "layers": [], "composite": None, "id": None},
              "budget": 0, "mask_colour": "auto", "invert": False, "keep_outside": False, "image_urls": "",
              "api_key": "", "password": "", "refs": [], "mask_upload": None}
    defaults = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}

    def value(cid):
        if elem[cid] in values:
            return values[elem[cid]]
        return defaults[cid] if kinds[cid] != "state" else None

    data = [value(cid) for cid in deps[generate]["inputs"]]
    first = queue_post(url, generate, data)
    assert '"success": true' in first.replace("'", '"') or "process_completed" in first
    assert len(fake.edits) == 1
    second = queue_post(url, generate, data)
    assert "most one visitor may" in second
    edit_index = next(i for i, d in enumerate(deps) if d.get("api_name") == "edit")
    given = {"prompt": "an edit", "images": [photo]}
    args = [given.get(name, p.default) for name, p in SIGNATURE.parameters.items() if name != "request"]
    third = queue_post(url, edit_index, args)
    assert "most one visitor may" in third, third[-500:]
    assert len(fake.edits) == 1
    assert json.dumps(config).find(KEY) == -1
