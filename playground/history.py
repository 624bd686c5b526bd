"""History entries, the session ledger and what differs between runs: plain data, no Gradio.

A history entry is what a browser keeps of a finished run: small thumbnails and the facts of its record, so that
it can be shown even when the server no longer has the run's files. It never holds a key or a server path: files
are reached through the run id, and only by the browser that owns the run.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import dataclass, field

from PIL import Image

from .params import DEFAULTS
from .run import RunRecord
from .store import Run

LIMIT = 50  # entries kept per browser; the oldest drop out
THUMB_SIDE = 256
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
THUMB = re.compile(r"^data:image/(webp|png|jpeg);base64,[A-Za-z0-9+/=]{1,200000}$")
NUMBERS = ("mask_share", "cost", "remaining_credits", "elapsed_s", "changed_outside_pct", "at")
TEXTS = ("prompt", "request_id", "output_format", "backend")


def thumbnail(data: bytes, side: int = THUMB_SIDE) -> str | None:
    """A data URI of the image at most `side` pixels on its longer side (WebP keeps transparency)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (side, side))  # JPEG decodes straight at a reduced scale
            img.thumbnail((side, side))
            small = img.convert("RGBA" if img.mode in ("RGBA", "LA", "PA", "P") else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buf = io.BytesIO()
    small.save(buf, "WEBP", quality=70, method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def entry(record: RunRecord, run: Run) -> dict:
    """The browser's copy of a finished run."""
    first = run.find("input-1")
    result = run.read(record.result_file) if record.result_file else None
    return {
        "run_id": record.run_id, "at": record.started_at, "prompt": record.prompt,
        "params": {k: record.params.get(k) for k in DEFAULTS}, "mask_share": record.mask_share,
        "cost": record.cost, "remaining_credits": record.remaining_credits, "elapsed_s": record.elapsed_s,
        "request_id": record.request_id, "output_format": record.output_format,
        "output_size": list(record.output_size) if record.output_size else None, "backend": record.backend,
        "checks": list(record.problems) + list(record.mask_notes) + list(record.notes),
        "changed_outside_pct": record.changed_outside_pct, "pasted_back": record.pasted_back,
        "thumb_first": thumbnail(first.read_bytes()) if first else None,
        "thumb_result": thumbnail(result) if result else None,
    }


def clean(data: object) -> dict | None:
    """An entry as a browser sent it back, reduced to known fields of the right types (anything else dropped)."""
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str) or not RUN_ID.match(data["run_id"]):
        return None
    out: dict = {"run_id": data["run_id"]}
    for key in NUMBERS:
        value = data.get(key)
        out[key] = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    for key in TEXTS:
        out[key] = str(data[key])[:4000] if isinstance(data.get(key), str) else None
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    out["params"] = {k: params.get(k) for k in DEFAULTS if isinstance(params.get(k), (str, int, float))}
    size = data.get("output_size")
    out["output_size"] = [int(v) for v in size] if isinstance(size, list) and len(size) == 2 and all(
        isinstance(v, int) for v in size) else None
    checks = data.get("checks")
    out["checks"] = [str(c)[:1000] for c in checks[:20]] if isinstance(checks, list) else []
    out["pasted_back"] = data.get("pasted_back") is True
    for key in ("thumb_first", "thumb_result"):
        value = data.get(key)
        out[key] = value if isinstance(value, str) and THUMB.match(value) else None
    return out


def entries(history: object) -> list[dict]:
    """The entries of a browser's history (a JSON list, newest first); anything malformed is left out."""
    try:
        items = json.loads(history) if isinstance(history, str) else []
    except ValueError:
        return []
    cleaned = [clean(item) for item in items] if isinstance(items, list) else []
    return [e for e in cleaned if e is not None]


def add(history: object, new: dict, limit: int = LIMIT) -> str:
    """The history with `new` first (replacing an older copy of the same run), at most `limit` entries."""
    kept = [e for e in entries(history) if e["run_id"] != new["run_id"]]
    return json.dumps([new, *kept][:limit])


def remove(history: object, run_id: str) -> str:
    return json.dumps([e for e in entries(history) if e["run_id"] != run_id])


def decode_thumbnail(uri: str | None) -> Image.Image | None:
    if not uri or not THUMB.match(uri):
        return None
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as img:
        img.load()
        return img.copy()


def differences(picked: list[dict]) -> set[str]:
    """The parameters (and "prompt") whose values are not the same in every entry."""
    keys = {"prompt"} | set(DEFAULTS)
    return {k for k in keys if len({json.dumps(_value(e, k)) for e in picked}) > 1}


def prompt_words(picked: list[dict]) -> list[set[str]]:
    """For each entry, the words of its prompt that some other entry's prompt does not have."""
    words = [set(re.findall(r"[\w'-]+", (e.get("prompt") or "").lower())) for e in picked]
    common = set.intersection(*words) if words else set()
    return [w - common for w in words]


def _value(e: dict, key: str):
    return e.get("prompt") if key == "prompt" else (e.get("params") or {}).get(key)


@dataclass
class Ledger:
    """This page session's spending: the runs seen finished, the credits they cost, the last balance known."""

    run_ids: list[str] = field(default_factory=list)
    spent: float = 0.0
    remaining: float | None = None
    last_cost: float | None = None

    def add(self, record: RunRecord) -> bool:
        if record.run_id in self.run_ids:
            return False
        self.run_ids.append(record.run_id)
        if record.cost is not None:
            self.spent = round(self.spent + record.cost, 6)
            self.last_cost = record.cost
        if record.remaining_credits is not None:
            self.remaining = record.remaining_credits
        return True

    def refusal(self, budget: float | None, runs: int = 1) -> str | None:
        """Why the next runs would pass the budget, or None: each is expected to cost what the last one did."""
        if not budget or not math.isfinite(budget) or budget <= 0:  # 0 or empty: no budget
            return None
        each = self.last_cost or 0.0
        if self.spent < budget and self.spent + each * runs <= budget + 1e-9:  # every paid run costs something
            return None
        what = "The next run" if runs == 1 else f"These {runs} runs"
        return (f"{what} would pass this session's budget: {self.spent:g} of {budget:g} credits are spent and "
                f"a run costs about {each:g}. Nothing was sent. Raise the budget under Generate (or set it to 0 "
                "for none) to go on.")

    def estimate(self, runs: int) -> str:
        """What a batch is expected to cost, said before it starts."""
        if self.last_cost is None:
            return f"**{runs}** runs; the cost is known after the first run."
        return (f"**{runs}** runs · about **{self.last_cost * runs:g}** credits ({runs} × {self.last_cost:g}, the "
                "last run's cost)")

    def summary(self, budget: float | None = None) -> str:
        runs = len(self.run_ids)
        parts = [f"This session: **{runs}** run{'s' if runs != 1 else ''}", f"**{self.spent:g}** credits spent"]
        if budget and math.isfinite(budget) and budget > 0:
            parts[-1] += f" of a **{budget:g}** budget"
        if self.remaining is not None:
            parts.append(f"**{self.remaining:g}** left on the account")
        return " · ".join(parts)
