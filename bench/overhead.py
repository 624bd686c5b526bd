"""The app's overhead per request: its whole path against a plain `requests.post` of the same payload.

Run from the repository root: python bench/overhead.py

What is timed, side by side and interleaved (the order rotates every repetition), against the local fake of
Segmind (tests/fake_segmind.py, a real HTTP server on 127.0.0.1) answering at once:
- app: `inputs.build_inputs` from the files as uploaded, then `run.execute` with the real Segmind backend: decode,
  scale, encode, write the run's files, send, receive, check the output (`verify.check_output`) and, with a mask,
  measure what changed outside it (the heat map), as every run does;
- plain: the same payload the app sent (its request.json, and for the upload transport the same image bytes),
  sent with bare `requests` through the same HTTP calls, the result's bytes read and nothing else done;
- naive: base64 of the files as uploaded (what Segmind's sample code sends), sent the same way.
Inputs: a photo-like 1024×1024 PNG and a 12 MP (4000×3000) photo-like phone JPEG (quality 92), each without a
mask and with a mask file of its own size (the edit area a centred ninth). Two ways of sending: `sync` + `inline`
(one v1 POST with data URIs) and the app's default, `queue` + `upload` (storage upload, v2 submit, status,
result, download).

Overhead = app − plain, the median over the repetitions of each interleaved pair.
Goal: overhead ≤ 50 ms for 1024×1024 and ≤ 400 ms for 12 MP, in every row. Exits non-zero if one is missed.
The fake runs in this process and does the same work for app and plain; "naive" makes it decode larger images.
"cpu ovh" is the same difference in this process's CPU time (the fake's handlers count on both sides): on a busy
machine it shows what the app itself costs when the wall clock also counts other programs.
"""

from __future__ import annotations

import base64
import gc
import sys
import time
from pathlib import Path

import requests
from harness import FakeSegmind, load_note, median, photo_file, print_table, rect_mask_file, tmp_dir, verdict

from playground.backend import SegmindBackend
from playground.config import load_settings
from playground.inputs import build_inputs
from playground.params import MODEL
from playground.run import execute
from playground.store import RunStore

CASES = (  # label, size, format as uploaded, repetitions, goal in ms
    ("1024×1024 PNG", (1024, 1024), "PNG", 7, 50.0),
    ("4000×3000 JPEG", (4000, 3000), "JPEG", 5, 400.0),
)
WAYS = (("sync", "inline"), ("queue", "upload"))
PROMPT = "Replace the sky with a warm sunset; keep the hills unchanged"
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


class Sender:
    """The same HTTP exchange the app makes, done with bare `requests`: one v1 POST, or upload + v2 job."""

    def __init__(self, fake: FakeSegmind, mode: str, transport: str):
        self.fake, self.mode, self.transport = fake, mode, transport
        self.headers = {"x-api-key": fake.api_key}

    def send(self, payload: dict, data_urls: list[str] | None = None, has_mask: bool = False) -> bytes:
        """`payload` as is, or with `data_urls` (the images, then the mask if any) put in it, uploaded first when
        the transport is "upload"."""
        if data_urls is not None:
            urls = data_urls
            if self.transport == "upload":
                answer = requests.post(self.fake.upload_url, json={"data_urls": data_urls}, headers=self.headers,
                                       timeout=120)
                urls = self._ok(answer).json()["file_urls"]
            images, mask = (urls[:-1], urls[-1]) if has_mask else (urls, None)
            payload = {**payload, "image_urls": images, "mask": mask}
        if self.mode == "sync":
            return self._ok(requests.post(f"{self.fake.url}/v1/{MODEL}", json=payload, headers=self.headers,
                                          timeout=120)).content
        job = self._ok(requests.post(f"{self.fake.url}/v2/{MODEL}", json=payload, headers=self.headers,
                                     timeout=120)).json()
        while self._ok(requests.get(job["status_url"], headers=self.headers, timeout=30)).json()["status"] != \
                "COMPLETED":
            time.sleep(0.01)
        result = self._ok(requests.get(job["response_url"], headers=self.headers, timeout=30)).json()
        return self._ok(requests.get(result["output"], timeout=120)).content

    @staticmethod
    def _ok(response: requests.Response) -> requests.Response:
        if response.status_code != 200:
            raise RuntimeError(f"the fake answered {response.status_code}: {response.text[:200]}")
        return response


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def timed(work) -> tuple[float, float, object]:
    """Wall and CPU seconds (the whole process's: the fake's handlers included) of `work()`, and its result."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def measure(fake: FakeSegmind, store: RunStore, image: Path, mask: Path | None, mode: str, transport: str,
            reps: int) -> dict[str, list[tuple[float, float]]]:
    settings = load_settings({"SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url,
                              "SEGMIND_API_MODE": mode, "SEGMIND_IMAGE_TRANSPORT": transport})
    backend = SegmindBackend(settings)
    sender = Sender(fake, mode, transport)
    naive_mime = "image/png" if image.suffix == ".png" else "image/jpeg"

    def app():
        inputs = build_inputs(prompt=PROMPT, params={}, files=[str(image)], mask_file=mask and str(mask))
        run = store.create("bench")
        record = execute(inputs, run, api_key=fake.api_key, backend=backend, transport=settings.transport,
                         max_side=settings.max_side)
        if record.problems or (mask is not None) != (record.heatmap_file is not None):
            raise RuntimeError(f"the app's run went wrong: {record.problems}")
        return run

    def naive():
        files = [(image, naive_mime)] + ([(mask, "image/png")] if mask else [])
        urls = [data_url(path.read_bytes(), mime) for path, mime in files]
        return sender.send({"prompt": PROMPT}, urls, has_mask=mask is not None)

    # A warm-up run, not counted: it gives the payload the app sends (the same every time) for the plain sender.
    run = app()
    request = run.read_json("request.json")
    urls = None
    if transport == "upload":  # the same bytes the app uploads, as data URLs ready to send
        sent = sorted(run.folder.glob("input-1.*"))[0]
        urls = [data_url(sent.read_bytes(), MIME[sent.suffix[1:]])]
        urls += [data_url(run.read("mask.png"), "image/png")] if mask else []
        request = {k: v for k, v in request.items() if k not in ("image_urls", "mask")}
    work = {"app": app, "plain": lambda: sender.send(request, urls, has_mask=mask is not None), "naive": naive}
    names = list(work)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % 3:] + names[:rep % 3]:
            wall, cpu, _ = timed(work[name])
            times[name].append((wall, cpu))
        with fake._lock:  # what the fake keeps of every request and edit; not needed here
            fake.requests.clear()
            fake.edits.clear()
    return times


def main() -> int:
    rows, missed = [], []
    started = time.perf_counter()
    with tmp_dir() as tmp, FakeSegmind(credits=1e9, queue_polls=(0, 0)) as fake:
        folder = Path(tmp)
        store = RunStore(folder / "runs")
        for label, size, fmt, reps, goal in CASES:
            image = photo_file(folder / f"photo-{size[0]}.{fmt.lower()}", size, fmt)
            mask_file = rect_mask_file(folder / f"mask-{size[0]}.png", size)
            print(f"{label}: {image.stat().st_size / 1e6:.2f} MB, mask {mask_file.stat().st_size / 1e3:.0f} KB",
                  flush=True)
            for mask in (None, mask_file):
                for mode, transport in WAYS:
                    times = measure(fake, store, image, mask, mode, transport, reps)
                    wall = {k: median([w for w, _ in v]) * 1000 for k, v in times.items()}
                    row = {"label": label, "mask": "mask" if mask else "none", "way": f"{mode}+{transport}",
                           "reps": reps, "goal": goal, **wall,
                           "overhead": median([a[0] - p[0] for a, p in zip(times["app"], times["plain"],
                                                                           strict=True)]) * 1000,
                           "cpu": median([a[1] - p[1] for a, p in zip(times["app"], times["plain"],
                                                                      strict=True)]) * 1000}
                    rows.append(row)
                    print(f"  {row['mask']:<5} {row['way']:<13} app {row['app']:6.0f} ms, plain {row['plain']:6.0f} "
                          f"ms, naive {row['naive']:6.0f} ms", flush=True)
                    if row["overhead"] > goal:
                        missed.append(f"{label}, mask {row['mask']}, {row['way']}: overhead {row['overhead']:.0f} ms "
                                      f"> {goal:.0f} ms")

    header = (f"{'input':<15} {'mask':<5} {'sent as':<13} {'n':>2} {'plain ms':>8} {'app ms':>7} {'overhead':>9} "
              f"{'goal':>6} {'app/plain':>9} {'cpu ovh':>8} {'naive ms':>8} {'app/naive':>9}")
    print_table(header)
    for r in rows:
        print(f"{r['label']:<15} {r['mask']:<5} {r['way']:<13} {r['reps']:>2} {r['plain']:>8.0f} {r['app']:>7.0f} "
              f"{r['overhead']:>6.0f} ms {r['goal']:>3.0f} ms {r['app'] / r['plain']:>8.2f}x {r['cpu']:>5.0f} ms "
              f"{r['naive']:>8.0f} {r['app'] / r['naive']:>8.2f}x")
    print("overhead = median of (app − plain) wall time over interleaved repetitions; cpu ovh = the same in CPU time "
          "of this process; goal: ≤ 50 ms (1024×1024), ≤ 400 ms (12 MP)")
    print(f"{time.perf_counter() - started:.0f} s in all; {load_note()}")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
