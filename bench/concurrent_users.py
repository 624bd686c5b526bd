"""Sixteen users at once: does the app serve them side by side, or one after another?

Run from the repository root: python bench/concurrent_users.py

The app runs as `python app.py` in a process of its own (the server's key, a guard that never refuses, the default
queue mode, upload transport and 1 s polling), pointed at the local fake of Segmind (tests/fake_segmind.py, a real
HTTP server on 127.0.0.1 in this process) whose every job takes 2 s (the fake's `delay_s`, spent answering the
submit). Each user is a gradio_client Client of its own, connected before the clock starts, that sends a photo-like
JPEG of its own through `/edit` and waits for the edited image (downloaded, as gradio_client does). Rounds
alternate: one user alone, then sixteen together, three times each. "CPU a run" is the CPU time used in a round of
16, per run, by the app's process, and by this one (the fake and the 16 clients). "at once" is the most jobs the
fake had in hand at the same moment (the lowest of the rounds): 16 when the app sends every user's job at once.

Ratio = median wall time of a round of 16 users / median wall time of one user alone.
Goal: ≤ 1.3, judged on 512×384 images: this benchmark asks whether the app runs users side by side. A row with
1024×1024 images follows for comparison: there the app, the fake and the 16 clients, all on this machine, spend
seconds of CPU on image work, and on two cores that, not the app's concurrency, sets the wall time (the app's own
cost per image is bench/overhead.py's subject). Exits non-zero if the goal is missed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from harness import FakeSegmind, app_with_fake, camera_photo, load_note, median, print_table, verdict
from PIL import Image

USERS = 16
ROUNDS = 3
JOB_S = 2.0
GOAL = 1.3
SIZES = ((512, 384), (1024, 1024))  # the goal is judged on the first; see the module's docstring


def user_images(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    """One photo, shifted differently for each user, so that every upload has bytes of its own."""
    base = np.asarray(camera_photo(*size, seed=3))
    paths = []
    for i in range(count):
        path = folder / f"user-{size[0]}-{i:02d}.jpg"
        Image.fromarray(np.roll(base, 37 * i, axis=1)).save(path, "JPEG", quality=92)
        paths.append(path)
    return paths


def edit(client: Client, image: Path, user: int) -> tuple[float, str]:
    """One `/edit` call; its wall time and request id. Fails loudly if the edit did not come back right."""
    started = time.perf_counter()
    result, record = client.predict(prompt=f"user {user}: make it dusk", images=[handle_file(str(image))],
                                    api_name="/edit")
    seconds = time.perf_counter() - started
    if not Path(result).is_file() or record["problems"]:
        raise RuntimeError(f"user {user} got {result!r} with problems {record['problems']}")
    return seconds, record["request_id"]


def together(clients: list[Client], images: list[Path], pool: ThreadPoolExecutor
             ) -> tuple[float, list[float], list[str]]:
    """All users at once, released together: the wall time until the last one has its image, each one's time and
    request id."""
    gate = threading.Barrier(len(clients) + 1)

    def one(i: int) -> tuple[float, str]:
        gate.wait()
        return edit(clients[i], images[i], i)

    futures = [pool.submit(one, i) for i in range(len(clients))]
    gate.wait()
    started = time.perf_counter()
    each = [f.result() for f in futures]
    return time.perf_counter() - started, [s for s, _ in each], [r for _, r in each]


def most_at_once(fake: FakeSegmind, request_ids: list[str]) -> int:
    """The most jobs the fake was working on at the same moment: each spent its JOB_S there, up to the moment it
    ended (`completes_at`). 16 means the app had every user's job at Segmind at once; 1, one after another."""
    ends = sorted(fake.completes_at(r) for r in request_ids)
    return max(sum(1 for other in ends if end - JOB_S < other <= end) for end in ends)


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (user and system)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    rows = []
    with app_with_fake(credits=1e9, queue_polls=(0, 0), delay_s=JOB_S) as (fake, app, folder), \
            ThreadPoolExecutor(USERS) as pool:
        # The users' machines are not the server: no certificate store is loaded for every request to a plain-http
        # address (gradio_client would spend a third of its CPU on that), so the clients here take less of the CPU.
        clients = list(pool.map(lambda _: Client(app.url, verbose=False, download_files=str(folder / "downloads"),
                                                 analytics_enabled=False, ssl_verify=False,
                                                 httpx_kwargs={"timeout": 120}), range(USERS)))
        try:
            for size in SIZES:
                images = user_images(folder, size, USERS)
                edit(clients[0], images[0], 0)  # warm-up: not counted
                alone, crowd, each, app_cpu, own_cpu, at_once = [], [], [], [], [], []
                for _ in range(ROUNDS):
                    alone.append(together(clients[:1], images[:1], pool)[0])
                    before, own = cpu_s(app.proc.pid), time.process_time()
                    wall, users, request_ids = together(clients, images, pool)
                    at_once.append(most_at_once(fake, request_ids))
                    app_cpu.append((cpu_s(app.proc.pid) - before) / USERS)
                    own_cpu.append((time.process_time() - own) / USERS)
                    crowd.append(wall)
                    each += users
                    with fake._lock:  # the fake keeps every edit's decoded images; not needed here
                        fake.edits.clear()
                        fake.requests.clear()
                    print(f"  {size[0]}×{size[1]}: one user {alone[-1]:.2f} s, {USERS} users {wall:.2f} s", flush=True)
                rows.append({"size": size, "alone": alone, "crowd": crowd, "each": each,
                             "ratio": median(crowd) / median(alone), "app_cpu": median(app_cpu),
                             "own_cpu": median(own_cpu), "at_once": min(at_once)})
        finally:
            for client in clients:
                client.close()

    header = (f"{'image':<10} {'one user':>9} {f'{USERS} users':>9} {'each of them':>13} {'slowest':>8} "
              f"{'CPU a run: app':>14} {'fake+client':>11} {'at once':>7} {'ratio':>6}")
    print_table(header)
    for r in rows:
        print(f"{r['size'][0]}×{r['size'][1]:<5} {median(r['alone']):>7.2f} s {median(r['crowd']):>7.2f} s "
              f"{median(r['each']):>11.2f} s {max(r['each']):>6.2f} s {r['app_cpu'] * 1000:>11.0f} ms "
              f"{r['own_cpu'] * 1000:>8.0f} ms {r['at_once']:>7} {r['ratio']:>5.2f}x")
    print(f"medians of {ROUNDS} rounds; each job takes {JOB_S:.0f} s at the fake; goal: {USERS} users ≤ {GOAL}× one "
          f"user, on the {SIZES[0][0]}×{SIZES[0][1]} images; {load_note()}")
    ratio = rows[0]["ratio"]
    return verdict([f"{USERS} users took {ratio:.2f}× one user's time (goal ≤ {GOAL}×)"] if ratio > GOAL else [])


if __name__ == "__main__":
    sys.exit(main())
