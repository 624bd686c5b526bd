"""Peak memory of loading uploads: the old full-size decode against the budgeted one, side by side.

Run from the repository root: python bench/decode_memory.py
Each case runs in a subprocess of its own, so that one case's peak (the high-water mark VmHWM) cannot hide
another's. "old" is the loading the app did before (decode at full size, exif_transpose, mode conversion,
then Lanczos to SEGMIND_MAX_SIDE); "new" is images.load_image as run.prepare calls it. Memory is RSS in MB:
"start" after imports, "peak" the high-water mark, "Δ" = peak − start, "after" once the results are dropped.
The last lines give the fidelity of the new output against the old one (PSNR) and the memory the paste-back
of "keep everything outside the mask" takes at full resolution (masks.paste_back, not changed here).
Exits non-zero when the new loading takes more memory than the old in any case.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from payload_bytes import camera_photo  # noqa: E402

from playground import images  # noqa: E402
from playground import mask as masks  # noqa: E402

MAX_SIDE = 2048
THREADS = 8
CASES = (  # label, file, way of loading, extra environment
    ("12 MP JPEG (phone, rotated)", "photo.jpg", "load", {}),
    ("4000×3000 PNG", "photo.png", "load", {}),
    ("9400×9400 PNG (277 KB)", "huge.png", "load", {}),
    ("  same, limit raised to 89 MP", "huge.png", "load", {"PLAYGROUND_MAX_MEGAPIXELS": "89"}),
    ("12 MP JPEG, full (keep outside)", "photo.jpg", "full", {}),
    (f"{THREADS} × 12 MP JPEG in threads", "photo.jpg", "threads", {}),
    # glibc otherwise keeps freed image blocks in per-thread arenas (its mmap threshold rises to 32 MB).
    ("  same, MALLOC_MMAP_THRESHOLD_=4MB", "photo.jpg", "threads", {"MALLOC_MMAP_THRESHOLD_": str(4 * 1024 * 1024)}),
)


def flat_png(width: int, height: int, grey: int = 128) -> bytes:
    """A valid PNG of one grey, written row by row (never held in memory whole); 9400×9400 gives ~273 KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    row = b"\x00" + bytes((grey,)) * (3 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def old_load(path: str, full: bool = False) -> Image.Image:
    """What run.prepare did before: images.load_image decoded at full size and made upright (a copy), then the
    whole image was scaled down."""
    img = Image.open(io.BytesIO(Path(path).read_bytes()))
    img.load()
    oriented = ImageOps.exif_transpose(img)
    loaded = images._to_rgb_or_rgba(oriented)
    del img, oriented  # locals of the old _normalise: gone when it returned
    return _send(loaded, full)


def new_load(path: str, full: bool = False) -> Image.Image:
    return _send(images.load_image(images.FullSize(path) if full else path).image, full)


def _send(loaded: Image.Image, full: bool) -> Image.Image:
    scaled = images.fit_longest_side(loaded, MAX_SIDE)
    if full:  # run.prepare keeps the original for the paste-back
        loaded.save(io.BytesIO(), "PNG", compress_level=1)
    return scaled


def rss_now_mb() -> float:
    return _status_mb("VmRSS")


def peak_mb() -> float:
    # Not ru_maxrss: across fork and exec Linux carries the parent's high-water mark into it.
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def child(way: str, version: str, path: str) -> dict:
    """One case in this (fresh) process: the memory it takes and how long."""
    load = old_load if version == "old" else new_load
    images.limits()  # the settings and what they import, before the baseline
    start = peak_mb()
    t0 = time.perf_counter()
    if way == "paste":
        original = images.load_image(path, full=True).image
        mask = Image.new("RGBA", original.size, (0, 0, 0, 255))
        mask.paste((0, 0, 0, 0), (original.width // 4, original.height // 4, original.width // 2, original.height // 2))
        start = peak_mb()
        t0 = time.perf_counter()
        results = [masks.paste_back(original, Image.new("RGB", (1536, 1024), (0, 200, 0)), mask)]
    elif way == "threads":
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda _: load(path), range(THREADS)))
    else:
        try:
            results = [load(path, full=way == "full")]
        except images.ImageInputError as exc:
            results, refused = [], str(exc)
    seconds = time.perf_counter() - t0
    size = results[0].size if results else None
    peak = peak_mb()
    del results
    gc.collect()
    return {"start": start, "peak": peak, "after": rss_now_mb(), "s": seconds, "size": size,
            "refused": locals().get("refused")}


def run_child(way: str, version: str, path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", way, version, str(path)], capture_output=True,
                         text=True, check=True, env={**os.environ, **env}, timeout=600)
    return json.loads(out.stdout.splitlines()[-1])


def make_inputs(folder: Path) -> None:
    t0 = time.perf_counter()
    photo = camera_photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # held upright: stored landscape, displayed portrait
    photo.save(folder / "photo.jpg", "JPEG", quality=92, exif=exif.tobytes())
    photo.save(folder / "photo.png", "PNG", compress_level=1)
    (folder / "huge.png").write_bytes(flat_png(9400, 9400))
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(folder.iterdir()))
    print(f"inputs ({sizes}) made in {time.perf_counter() - t0:.1f} s\n")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_inputs(folder)
        header = (f"{'case':<34} {'old peak':>8} {'new peak':>8} {'ratio':>6}   {'old Δ':>6} {'new Δ':>6} {'ratio':>6}"
                  f"   {'old after':>9} {'new after':>9}   {'old s':>5} {'new s':>5}   new result")
        print(header)
        print("-" * len(header))
        worse = []
        for label, name, way, env in CASES:
            old = run_child(way, "old", folder / name, env)
            new = run_child(way, "new", folder / name, env)
            old_d, new_d = old["peak"] - old["start"], new["peak"] - new["start"]
            result = f"refused: {new['refused'][:60]}…" if new["refused"] else "{}×{}".format(*new["size"])
            print(f"{label:<34} {old['peak']:>8.0f} {new['peak']:>8.0f} {old['peak'] / new['peak']:>5.1f}x   "
                  f"{old_d:>6.0f} {new_d:>6.0f} {old_d / max(new_d, 1):>5.1f}x   {old['after']:>9.0f} "
                  f"{new['after']:>9.0f}   {old['s']:>5.2f} {new['s']:>5.2f}   {result}")
            if new["peak"] > old["peak"] * 1.05:
                worse.append(label.strip())
        paste = run_child("paste", "new", folder / "photo.jpg", {})
        print(f"\npaste-back at 4000×3000 (masks.paste_back, unchanged): Δ {paste['peak'] - paste['start']:.0f} MB "
              f"on top of the original, {paste['s']:.2f} s")
        for name in ("photo.jpg", "photo.png"):
            old_out, new_out = old_load(str(folder / name)), new_load(str(folder / name))
            print(f"fidelity, {name}: new output {new_out.width}×{new_out.height} against the old one: "
                  f"PSNR {images.psnr(old_out, new_out):.1f} dB")
        print(f"decodes at once: at most {images.DECODE_SLOTS} (images.DECODE_SLOTS, from the cores available)")
    for label in worse:
        print("WORSE:", label)
    print("FAIL" if worse else "PASS")
    return 1 if worse else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("WAY", "VERSION", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        sys.exit(0)
    sys.exit(main())
