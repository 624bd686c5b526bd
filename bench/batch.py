"""Variations of 4 and a sweep of 3 against a single run, through the app's API, against a fake that takes 2 s.

Run from the repository root: python bench/batch.py
The app runs as `python app.py` in a process of its own; the fake answers each submit after 2 s and finishes the
job at the second status poll (polls are a second apart, as in the app's default). Each case runs REPEAT times,
interleaved with the others, and the medians are compared.
Goal: variations of 4 and a sweep of 3 each take at most 1.3x one run's wall time. Exits non-zero when missed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client, handle_file
from harness import app_with_fake, median, photo_file

REPEAT = 3
GOAL = 1.3
CASES = {
    "single run (/edit)": ("/edit", {}),
    "4 variations (/batch)": ("/batch", {"variations": 4}),
    "sweep of 3 qualities (/batch)": ("/batch", {"sweep_param": "quality", "sweep_values": ["low", "medium", "high"]}),
}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, app_with_fake(delay_s=2.0) as (fake, app, _):
        image = photo_file(Path(tmp) / "photo.jpg", (1024, 1024))
        client = Client(app.url, verbose=False)
        times: dict[str, list[float]] = {name: [] for name in CASES}
        edits: dict[str, int] = {}
        for _ in range(REPEAT):
            for name, (api_name, extra) in CASES.items():
                before = len(fake.edits)
                started = time.perf_counter()
                client.predict(prompt="add a red balloon", images=[handle_file(str(image))], api_name=api_name,
                               **extra)
                times[name].append(time.perf_counter() - started)
                edits[name] = len(fake.edits) - before
        client.close()
    single = median(times["single run (/edit)"])
    print(f"{'case':32} {'edits':>5} {'median s':>9} {'x single':>9}")
    missed = []
    for name, values in times.items():
        ratio = median(values) / single
        print(f"{name:32} {edits[name]:5d} {median(values):9.2f} {ratio:9.2f}")
        if ratio > GOAL:
            missed.append(name)
    print(f"goal: a batch takes at most {GOAL}x one run's wall time" + (f"; MISSED: {', '.join(missed)}" if missed
                                                                         else "; met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
