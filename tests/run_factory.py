"""Real runs for the take-away tests: made by a Service against the local fake, over HTTP, and stored on disk."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from playground.config import load_settings
from playground.inputs import build_inputs
from playground.run import RunRecord
from playground.service import Service
from playground.store import Run, RunStore

# Quotes, shell and Python specials, a line break and characters beyond ASCII: what a snippet must carry intact.
AWKWARD_PROMPT = 'Make the "sky" a <b>sunset</b> & keep $HOME `as is` \\ it\'s 50% off\nsecond line: café 😀'


def photo(size=(600, 400), seed=0) -> Image.Image:
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return Image.fromarray(np.dstack([x, y, (255 - x + seed * 40) % 256]).astype(np.uint8), "RGB")


def rect_mask(size, box) -> Image.Image:
    """API form: alpha 0 inside `box` (the area to edit), 255 elsewhere."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def fake_env(fake, *, mode="queue", transport="upload") -> dict[str, str]:
    return {"SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url, "SEGMIND_POLL_S": "0.01",
            "SEGMIND_RETRY_BASE_S": "0.01", "SEGMIND_API_MODE": mode, "SEGMIND_IMAGE_TRANSPORT": transport}


def make_run(fake, tmp_path: Path, *, mode="queue", transport="upload", prompt="add a red balloon",
             params=None, images=1, mask=True, url_images=0, keep_outside=False, api_key=None,
             server_key=None, store: RunStore | None = None) -> tuple[Service, Run, RunRecord]:
    """One finished run; `images` uploads (the first 600×400), `url_images` typed URLs served by the fake."""
    env = fake_env(fake, mode=mode, transport=transport)
    service = Service(store=store or RunStore(tmp_path / "runs"), settings=lambda: load_settings(env),
                      server_key=lambda: server_key)
    files = []
    for i in range(images):
        path = tmp_path / f"upload-{i + 1}.png"
        photo((600, 400) if i == 0 else (300, 300), seed=i).save(path)
        files.append(str(path))
    urls = []
    for i in range(url_images):
        buf = io.BytesIO()
        photo((200, 200), seed=5 + i).save(buf, "JPEG")
        urls.append(fake.add_asset(buf.getvalue()))
    mask_file = None
    if mask:
        mask_file = str(tmp_path / "mask-upload.png")
        rect_mask((600, 400), (100, 100, 300, 200)).save(mask_file)
    inputs = build_inputs(prompt=prompt, params=params or {}, files=files, image_urls=urls or None,
                          mask_file=mask_file, keep_outside=keep_outside)
    key, own = service.key_for(api_key if api_key is not None else (None if server_key else fake.api_key))
    snap = service.start(inputs, api_key=key, own_key=own, owner="tests").result(timeout=60)
    assert snap.error is None, snap.error
    record = snap.outcome
    return service, service.store.get(record.run_id), record
