"""Load: 40 sessions at once, 3 runs each, against a fake that takes 2 s per submit and fails one job in ten.
Every result must reach only the session that asked (each run sends its own colour), every fault must be
reported, and the app must keep serving. The figures are printed (`pytest -s tests/test_load.py`), not asserted
against a clock."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

KEY = "test-key"
SESSIONS, RUNS, FAULTS = 40, 3, 12  # 12 of 120 runs: one in ten


def colour(session: int, run: int) -> tuple[int, int, int]:
    return (6 * session + 5, 60 * run + 40, 200 - 4 * session)


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def test_forty_sessions_get_their_own_results_and_every_fault_is_reported(app_url, app_env, fake, tmp_path):
    fake.delay_s = 2.0
    fake.fail("job_failed", on="edit", times=FAULTS)
    paths = {}
    for s in range(SESSIONS):
        for r in range(RUNS):
            paths[s, r] = tmp_path / f"s{s}-r{r}.png"
            Image.new("RGB", (64, 48), colour(s, r)).save(paths[s, r])
    outcomes: dict[tuple[int, int], object] = {}
    lock = threading.Lock()

    def session(s: int) -> None:
        client = Client(app_url, verbose=False, httpx_kwargs={"timeout": 120})  # correctness under load, not latency
        try:
            for r in range(RUNS):
                try:
                    path, _ = client.predict(prompt=f"session {s} run {r}", api_key=KEY, api_name="/edit",
                                             images=[handle_file(str(paths[s, r]))])
                    with Image.open(path) as out:
                        outcome = out.convert("RGB").getpixel((out.width // 2, out.height // 2))
                except AppError as exc:
                    outcome = exc
                with lock:
                    outcomes[s, r] = outcome
        finally:
            client.close()

    started = time.monotonic()
    with ThreadPoolExecutor(SESSIONS) as pool:
        list(pool.map(session, range(SESSIONS)))
    wall = time.monotonic() - started

    failures = {k: v for k, v in outcomes.items() if isinstance(v, AppError)}
    assert len(outcomes) == SESSIONS * RUNS
    assert len(failures) == FAULTS, failures
    assert all("failed" in str(e).lower() for e in failures.values())
    for (s, r), got in outcomes.items():
        if (s, r) not in failures:
            want = tuple(255 - c for c in colour(s, r))  # the fake inverts an image sent without a mask
            assert all(abs(a - b) <= 2 for a, b in zip(got, want, strict=True)), ((s, r), got, want)
    assert len(fake.edits) == SESSIONS * RUNS - FAULTS
    assert requests.get(app_url, timeout=10).status_code == 200
    print(f"\nload: {SESSIONS} sessions x {RUNS} runs, {FAULTS} faults: {wall:.1f} s wall "
          f"({SESSIONS * RUNS * fake.delay_s / wall:.1f} submits' worth of 2 s each per second of wall time); "
          f"peak memory of the test process (app and fake included): {peak_mb():.0f} MB")
