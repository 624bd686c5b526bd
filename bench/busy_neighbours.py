"""Nobody waits for anybody: how soon one caller gets a small edit's result while others keep the app's CPU busy
with 12 MP photos (decoding, scaling, encoding, checking).

Run from the repository root: python bench/busy_neighbours.py

The app runs as `python app.py` in a process of its own with its defaults (queue mode, upload transport, status
polled every second), pointed at the local fake of Segmind (tests/fake_segmind.py, a real HTTP server on 127.0.0.1
in this process); every job takes 2 s on the fake's clock (`FakeSegmind.job_s`) and the fake says when each one
ended (`FakeSegmind.completes_at`). One watcher, a gradio_client Client of its own, sends a 640×480 JPEG through
`/edit` several times in a row, first on a quiet app, then while three other callers send a 4000×3000 phone JPEG
each, over and over. Latency = the moment the watcher's `predict` returns − the moment its job ended at the fake.

Goal: the watcher's median latency stays ≤ 1.5 s while the others keep the app busy (the completion-to-result
goal, under load). Exits non-zero if missed.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client, handle_file
from harness import app_with_fake, load_note, median, photo_file, print_table, verdict

WATCHES = 6
HEAVY_CALLERS = 3
JOB_S = 2.0
GOAL_S = 1.5


def watch(client: Client, image: Path, fake, runs: int) -> list[float]:
    latencies = []
    for i in range(runs):
        result, record = client.predict(prompt=f"watch {i}: add a kite", images=[handle_file(str(image))],
                                        api_name="/edit")
        got = time.time()
        if not Path(result).is_file() or record["problems"]:
            raise RuntimeError(f"the watcher got {result!r} with problems {record['problems']}")
        latencies.append(got - fake.completes_at(record["request_id"]))
    return latencies


def main() -> int:
    with app_with_fake(credits=1e9, queue_polls=(0, 0)) as (fake, app, folder), \
            ThreadPoolExecutor(HEAVY_CALLERS + 1) as pool:
        fake.job_s = lambda: JOB_S
        small = photo_file(folder / "small.jpg", (640, 480))
        large = photo_file(folder / "large.jpg", (4000, 3000))
        clients = [Client(app.url, verbose=False, download_files=str(folder / f"downloads-{i}"),
                          analytics_enabled=False, httpx_kwargs={"timeout": 300})
                   for i in range(HEAVY_CALLERS + 1)]
        watcher, heavy = clients[0], clients[1:]
        try:
            watcher.predict(prompt="warm-up", images=[handle_file(str(large))], api_name="/edit")  # not counted
            quiet = watch(watcher, small, fake, WATCHES)

            stop = threading.Event()
            done = [0] * HEAVY_CALLERS

            def busy(i: int) -> None:
                while not stop.is_set():
                    heavy[i].predict(prompt=f"caller {i}: a warm sunset", images=[handle_file(str(large))],
                                     api_name="/edit")
                    done[i] += 1

            callers = [pool.submit(busy, i) for i in range(HEAVY_CALLERS)]
            time.sleep(JOB_S)  # the others' photos are on their way before the watcher starts
            started = time.perf_counter()
            loaded = watch(watcher, small, fake, WATCHES)
            watched_s = time.perf_counter() - started
            stop.set()
            for caller in callers:
                caller.result()
        finally:
            for client in clients:
                client.close()

    header = f"{'app':<32} {'median':>7} {'max':>7} {'each':>40}"
    print_table(header)
    for name, values in (("quiet", quiet), (f"{HEAVY_CALLERS} others sending 12 MP photos", loaded)):
        print(f"{name:<32} {median(values):>5.2f} s {max(values):>5.2f} s "
              f"{'  '.join(f'{v:.2f}' for v in values):>40}")
    print(f"the others finished {sum(done)} 12 MP edits while the watcher made {WATCHES} "
          f"({watched_s:.1f} s); jobs take {JOB_S:.0f} s at the fake; ratio loaded / quiet "
          f"{median(loaded) / median(quiet):.2f}x; goal: median ≤ {GOAL_S} s under load; {load_note()}")
    worst = median(loaded)
    return verdict([f"median latency under load {worst:.2f} s > {GOAL_S} s"] if worst > GOAL_S else [])


if __name__ == "__main__":
    sys.exit(main())
