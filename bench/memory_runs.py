"""Memory and disk over many runs: does the app's memory stay flat, and what do its runs leave on disk?

Run from the repository root: python bench/memory_runs.py

The app runs as `python app.py` in a process of its own (the server's key, a guard that never refuses, its default
queue mode and upload transport), pointed at the local fake of Segmind (tests/fake_segmind.py, a real HTTP server
on 127.0.0.1 in this process) answering at once. 200 runs go through `/edit` from 4 gradio_client callers at a
time, each a photo-like 512×384 JPEG of its own with a mask file (so that every run also makes its heat map). The
app's resident memory (VmRSS of its process) is read after 10 runs and after 200, each time once the runs have
ended and a second has passed; its high-water mark (VmHWM) is printed too. Then the disk used (allocated blocks,
as du counts) by the run store (PLAYGROUND_RUN_DIR) and by Gradio's cache (GRADIO_TEMP_DIR: uploads and the files
it serves), both in a temporary folder.

Goal: resident memory after 200 runs within 10 % of that after 10. Exits non-zero if missed.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from gradio_client import Client, handle_file
from harness import app_with_fake, camera_photo, du_mb, load_note, print_table, rect_mask_file, verdict
from PIL import Image

from playground.config import load_store_settings

RUNS = 200
EARLY = 10
CALLERS = 4
SIZE = (512, 384)
GOAL = 0.10


def status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def main() -> int:
    with app_with_fake(credits=1e9, queue_polls=(0, 0)) as (fake, app, folder), ThreadPoolExecutor(CALLERS) as pool:
        base = np.asarray(camera_photo(*SIZE, seed=5))
        images = []
        for i in range(RUNS):
            path = folder / "uploads" / f"photo-{i:03d}.jpg"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.roll(base, 7 * i, axis=1)).save(path, "JPEG", quality=92)
            images.append(path)
        mask = rect_mask_file(folder / "uploads" / "mask.png", SIZE)
        clients = [Client(app.url, verbose=False, download_files=str(folder / "downloads"), analytics_enabled=False,
                          ssl_verify=False, httpx_kwargs={"timeout": 120}) for _ in range(CALLERS)]

        def edits(runs: range) -> None:
            """The runs, from the callers side by side, each caller one run at a time on a client of its own (a
            gradio_client Client shares one event stream among the calls made on it at once)."""

            def caller(k: int) -> None:
                for i in runs[k::CALLERS]:
                    _, record = clients[k].predict(prompt=f"run {i}: add a red kite", images=[handle_file(
                        str(images[i]))], mask=handle_file(str(mask)), api_name="/edit")
                    if record["problems"] or record["heatmap_file"] is None:
                        raise RuntimeError(f"run {i} went wrong: {record['problems']}")

            list(pool.map(caller, range(CALLERS)))

        def after(count: int) -> dict:
            time.sleep(1.0)
            with fake._lock:  # the fake keeps every edit's decoded images; not needed here
                fake.edits.clear()
                fake.requests.clear()
            runs_mb, run_files = du_mb(folder / "runs")
            cache_mb, cache_files = du_mb(folder / "gradio")
            return {"runs": count, "rss": status_mb(app.proc.pid, "VmRSS"), "hwm": status_mb(app.proc.pid, "VmHWM"),
                    "store": runs_mb, "store_files": run_files, "cache": cache_mb, "cache_files": cache_files,
                    "elapsed": time.perf_counter() - started}

        started = time.perf_counter()
        try:
            edits(range(EARLY))
            rows = [after(EARLY)]
            edits(range(EARLY, RUNS))
            rows.append(after(RUNS))
        finally:
            for client in clients:
                client.close()
        folders = sum(1 for p in (folder / "runs").iterdir() if p.is_dir())
        run_mb = (rows[1]["store"] - rows[0]["store"]) / (RUNS - EARLY)
        cache_run_mb = (rows[1]["cache"] - rows[0]["cache"]) / (RUNS - EARLY)

    header = (f"{'after':>10} {'RSS MB':>7} {'peak MB':>8} {'run store MB':>13} {'files':>6} {'Gradio cache MB':>16} "
              f"{'files':>6} {'time':>6}")
    print_table(header)
    for r in rows:
        print(f"{r['runs']:>5} runs {r['rss']:>7.0f} {r['hwm']:>8.0f} {r['store']:>13.1f} {r['store_files']:>6} "
              f"{r['cache']:>16.1f} {r['cache_files']:>6} {r['elapsed']:>5.0f}s")
    growth = rows[1]["rss"] / rows[0]["rss"] - 1
    print(f"RSS after {RUNS} runs / after {EARLY}: {rows[1]['rss'] / rows[0]['rss']:.3f} ({growth:+.1%}; goal within "
          f"±{GOAL:.0%}); {folders} run folders")
    print(f"disk per run: {run_mb * 1024:.0f} KB in the run store, {cache_run_mb * 1024:.0f} KB in Gradio's cache "
          f"(a {SIZE[0]}×{SIZE[1]} JPEG and its mask each).")
    ttl_h = load_store_settings({}).run_ttl_s / 3600
    print("bounded? by time, not by count:")
    print(f"  the run store's sweep (every 10 min) removes runs older than PLAYGROUND_RUN_TTL_H ({ttl_h:.0f} h by "
          "default); Gradio's cache drops files older than a day every hour (delete_cache in app.py);")
    print("  so the disk holds at most a day of runs: on the server's key at most PLAYGROUND_RUNS_PER_DAY of them "
          "(200 by default), on visitors' own keys as many as they make;")
    print("  finished runs stay in memory for 15 min (runner.KEEP_FINISHED_S).")
    print(load_note())
    return verdict([f"RSS changed by {growth:+.1%} between {EARLY} and {RUNS} runs (goal within ±{GOAL:.0%})"]
                   if abs(growth) > GOAL else [])


if __name__ == "__main__":
    sys.exit(main())
