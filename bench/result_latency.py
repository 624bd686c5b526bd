"""Completion-to-result latency: how long after Segmind finishes a job does the edited image reach the caller?

Run from the repository root: python bench/result_latency.py

The app runs as `python app.py` in a process of its own with its defaults (queue mode, upload transport, status
polled every second: SEGMIND_POLL_S), pointed at the local fake of Segmind (tests/fake_segmind.py, a real HTTP
server on 127.0.0.1 in this process). Every job runs a random time on the fake's clock, drawn uniformly from 2 to
12 s (`FakeSegmind.job_s`; the submit itself is answered at once), so jobs end at random moments between two
polls; the fake says when each one ended (`FakeSegmind.completes_at`). Ten callers, each a gradio_client Client of
its own, send one photo-like 768×512 JPEG each through `/edit` at the same moment and wait for the edited image
(downloaded, as gradio_client does). Latency = the moment `predict` returns − the moment the job ended at the fake:
the wait for the next poll, then the result, the download, the output checks, the run's files, Gradio's answer and
the client's download.

Goal: median latency ≤ 1.5 s. Exits non-zero if missed.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client, handle_file
from harness import app_with_fake, load_note, median, photo_file, print_table, verdict

JOBS = 10
JOB_S = (2.0, 12.0)
GOAL_S = 1.5
SEED = 20261201


def main() -> int:
    draw = random.Random(SEED)
    lock = threading.Lock()

    def job_seconds() -> float:
        with lock:
            return draw.uniform(*JOB_S)

    with app_with_fake(credits=1e9, queue_polls=(0, 0)) as (fake, app, folder), ThreadPoolExecutor(JOBS) as pool:
        image = photo_file(folder / "photo.jpg", (768, 512))
        clients = list(pool.map(lambda _: Client(app.url, verbose=False, download_files=str(folder / "downloads"),
                                                 analytics_enabled=False, ssl_verify=False,
                                                 httpx_kwargs={"timeout": 120}), range(JOBS)))
        try:
            clients[0].predict(prompt="warm-up", images=[handle_file(str(image))], api_name="/edit")  # not counted
            fake.job_s = job_seconds
            gate = threading.Barrier(JOBS + 1)

            def caller(i: int) -> dict:
                gate.wait()
                sent = time.time()
                result, record = clients[i].predict(prompt=f"caller {i}: add a kite", images=[handle_file(str(image))],
                                                    api_name="/edit")
                got = time.time()
                if not Path(result).is_file() or record["problems"]:
                    raise RuntimeError(f"caller {i} got {result!r} with problems {record['problems']}")
                ended = fake.completes_at(record["request_id"])
                return {"caller": i, "sent": sent, "ended": ended, "got": got, "latency": got - ended}

            futures = [pool.submit(caller, i) for i in range(JOBS)]
            gate.wait()
            rows = sorted((f.result() for f in futures), key=lambda r: r["ended"])
        finally:
            for client in clients:
                client.close()

    start = min(r["sent"] for r in rows)
    header = f"{'caller':>6} {'job ended at':>13} {'result at':>10} {'latency':>8}"
    print_table(header)
    for r in rows:
        print(f"{r['caller']:>6} {r['ended'] - start:>11.2f} s {r['got'] - start:>8.2f} s {r['latency']:>6.2f} s")
    latencies = [r["latency"] for r in rows]
    med, worst = median(latencies), max(latencies)
    print(f"latency: median {med:.2f} s, max {worst:.2f} s, min {min(latencies):.2f} s over {JOBS} jobs of "
          f"{JOB_S[0]:.0f}-{JOB_S[1]:.0f} s (times from the first send); goal: median ≤ {GOAL_S} s; "
          f"{load_note()}")
    return verdict([f"median latency {med:.2f} s > {GOAL_S} s"] if med > GOAL_S else [])


if __name__ == "__main__":
    sys.exit(main())
