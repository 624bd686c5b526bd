"""Start-up time: from starting `python app.py` to the first page served, against a bare Gradio app.

Run from the repository root: python bench/startup.py

Each start is a fresh process of this Python on a free port (GRADIO_SERVER_PORT), with a run folder of its own
(PLAYGROUND_RUN_DIR) and Gradio's analytics off; the clock runs from just before the process is started until
`GET /` answers 200 (polled every 20 ms). The bare app is one textbox in a gr.Blocks, launched the same way (its
script is written to a temporary folder). The two are started alternately, three times each, bare first in odd
rounds and the app first in even ones.

Ratio = median time of the app / median time of the bare app. Goal: ≤ 1.3. Exits non-zero if missed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness import ROOT, AppProcess, free_port, load_note, median, print_table, tmp_dir, verdict

ROUNDS = 3
GOAL = 1.3
BARE_APP = '''import gradio as gr

with gr.Blocks() as demo:
    gr.Textbox()

demo.launch()
'''


def start(script: Path, folder: Path, run: int) -> float:
    """Seconds from starting `script` to its first 200 on /."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMIND_", "PLAYGROUND_", "GRADIO_"))}
    env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(free_port()),
                "GRADIO_ANALYTICS_ENABLED": "False", "PLAYGROUND_RUN_DIR": str(folder / f"runs-{run}"),
                "GRADIO_TEMP_DIR": str(folder / "gradio")})
    with AppProcess(env, script=script, log=folder / f"{script.stem}-{run}.log") as app:
        try:
            return app.wait_ready()
        except (RuntimeError, TimeoutError):
            sys.stderr.write((folder / f"{script.stem}-{run}.log").read_text(errors="replace")[-4000:])
            raise


def main() -> int:
    times: dict[str, list[float]] = {"bare Gradio app": [], "app.py": []}
    with tmp_dir() as tmp:
        folder = Path(tmp)
        bare = folder / "bare_app.py"
        bare.write_text(BARE_APP)
        scripts = {"bare Gradio app": bare, "app.py": ROOT / "app.py"}
        for run in range(ROUNDS):
            order = list(scripts) if run % 2 == 0 else list(reversed(scripts))
            for name in order:
                times[name].append(start(scripts[name], folder, run))
                print(f"  {name}: {times[name][-1]:.2f} s", flush=True)

    bare_s, app_s = median(times["bare Gradio app"]), median(times["app.py"])
    ratio = app_s / bare_s
    header = f"{'started':<16} {'median':>7} {'each':>22}"
    print_table(header)
    for name, values in times.items():
        print(f"{name:<16} {median(values):>5.2f} s {'  '.join(f'{v:.2f}' for v in values):>22}")
    print(f"ratio app.py / bare: {ratio:.2f}x (goal ≤ {GOAL}x); {load_note()}")
    return verdict([f"app.py takes {ratio:.2f}× the bare app's start-up (goal ≤ {GOAL}×)"] if ratio > GOAL else [])


if __name__ == "__main__":
    sys.exit(main())
