"""What the benchmarks share: the local fake of Segmind, the app started as `python app.py` in a process of its
own and pointed at the fake, photo-like test images, and small statistics. Not a benchmark itself."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "tests", ROOT / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fake_segmind import FakeSegmind  # noqa: E402
from payload_bytes import camera_photo  # noqa: E402
from ports import free_port  # noqa: E402

from playground.guard import MAX_RUNS  # noqa: E402

__all__ = ["ROOT", "AppProcess", "FakeSegmind", "app_env", "camera_photo", "free_port", "load_note", "median",
           "photo_file", "print_table", "verdict", "wait_for_page"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(header: str) -> None:
    """A table's header and its rule; the rows follow as plain prints."""
    print()
    print(header)
    print("-" * len(header))


def load_note() -> str:
    """How busy the machine was: the figures of a benchmark run beside other work are not comparable."""
    return f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def verdict(missed: list[str]) -> int:
    """Each goal missed, then PASS or FAIL; the benchmark's exit code (make bench fails on any miss)."""
    for line in missed:
        print("MISSED:", line)
    print("FAIL" if missed else "PASS")
    return 1 if missed else 0


def photo_file(path: Path, size: tuple[int, int], fmt: str = "JPEG", seed: int = 7) -> Path:
    """A photo-like image (sky, hills, texture, sensor noise) saved as `fmt`; JPEGs at quality 92 like a phone."""
    photo = camera_photo(*size, seed=seed)
    photo.save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return path


def rect_mask_file(path: Path, size: tuple[int, int]) -> Path:
    """A mask in the API's form: alpha 0 (edit) in a centred box covering a ninth of the image, 255 elsewhere."""
    w, h = size
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (w // 3, h // 3, 2 * w // 3, 2 * h // 3))
    mask.save(path, "PNG")
    return path


def app_env(fake: FakeSegmind, run_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of an app that talks to `fake` with the server's key, under a guard that never refuses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMIND_", "PLAYGROUND_", "GRADIO_"))}
    env.update({
        "SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url, "SEGMIND_API_KEY": fake.api_key,
        "PLAYGROUND_RUN_DIR": str(run_dir), "PLAYGROUND_RUNS_PER_HOUR": str(MAX_RUNS),
        "PLAYGROUND_RUNS_PER_DAY": str(MAX_RUNS), "PLAYGROUND_SHOW_BALANCE": "1",
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(run_dir.parent / "gradio"), "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def wait_for_page(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 120.0,
                  every_s: float = 0.02) -> float:
    """Poll `url` until it answers 200; the time.perf_counter() of that answer. Fails if `proc` exits first."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before serving {url}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=5).status_code == 200:
                return time.perf_counter()
        time.sleep(every_s)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")


class AppProcess:
    """`python app.py` (or another script) in a process of its own, on a free port, until `stop()`."""

    def __init__(self, env: dict[str, str], script: str | Path = "app.py", log: Path | None = None):
        self.port = int(env["GRADIO_SERVER_PORT"])
        self.url = f"http://127.0.0.1:{self.port}/"
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop())
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Seconds from the start of the process to its first 200 on /."""
        return wait_for_page(self.url, self.proc, timeout_s) - self.started

    def rss_mb(self) -> float:
        """Resident memory of the app's process now (VmRSS), in MB."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def app_with_fake(**fake_options: object) -> Iterator[tuple[FakeSegmind, AppProcess, Path]]:
    """The fake (in this process) and the app (in its own, ready to serve) pointed at it, in a temporary folder
    that holds the run store and Gradio's cache. The app's output goes to app.log in that folder."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, FakeSegmind(**fake_options) as fake:
        folder = Path(tmp)
        env = app_env(fake, folder / "runs", free_port())
        app = AppProcess(env, log=folder / "app.log")
        try:
            try:
                app.wait_ready()
            except (RuntimeError, TimeoutError):
                app.stop()
                sys.stderr.write((folder / "app.log").read_text(errors="replace")[-4000:])
                raise
            yield fake, app, folder
        except BaseException:
            app.stop()
            sys.stderr.write("--- the app's output, last lines:\n")
            sys.stderr.write((folder / "app.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            app.stop()
            if fake.crashes:
                sys.stderr.write("".join(fake.crashes))


def du_mb(folder: Path) -> tuple[float, int]:
    """Disk used under `folder` (allocated blocks, as du counts) in MB, and the number of files."""
    total, files = 0, 0
    for path in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_blocks * 512
                files += 1
    return total / 2**20, files


def tmp_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="bench-")
