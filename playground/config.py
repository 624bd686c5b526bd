"""Settings from the environment, read at call time so a Space's secrets and variables apply without a restart."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .segmind import DEFAULT_BASE_URL, DEFAULT_UPLOAD_URL, PollPolicy, RetryPolicy

TRANSPORTS = ("upload", "inline")
API_MODES = ("queue", "sync")
MB = 1024 * 1024  # as Gradio counts launch(max_file_size="50mb")


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    upload_url: str = DEFAULT_UPLOAD_URL
    transport: str = "upload"
    api_mode: str = "queue"
    deadline_s: float = 600.0
    poll_s: float = 1.0
    max_side: int = 2048
    retries: int = 3
    retry_base_s: float = 2.0
    # 64 MP phone photos (9248×6936) and 61 MP cameras pass; a 9400×9400 image (88 MP) does not.
    max_megapixels: float = 65.0
    max_file_mb: float = 50.0
    # The app mostly waits on Segmind, so many events run at once; runs in flight are capped apart from that,
    # because a batch is several runs.
    concurrency: int = 64
    max_runs: int = 128
    queue_size: int = 256

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    @property
    def max_file_bytes(self) -> int:
        """For both the uploads' check and Gradio's `launch(max_file_size=...)`."""
        return int(self.max_file_mb * MB)

    @property
    def poll(self) -> PollPolicy:
        return PollPolicy(first_s=self.poll_s, max_s=self.poll_s, deadline_s=self.deadline_s)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retries, base_s=self.retry_base_s)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from SEGMIND_* variables (and the PLAYGROUND_MAX_* limits on uploads); a bad value fails loudly
    instead of being guessed (an empty one counts as unset)."""
    env = os.environ if env is None else env

    def number(name: str, default: float, low: float, high: float, kind: type = float) -> float:
        raw = (env.get(name) or "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            value = None
        # The range check also refuses NaN, which compares false with everything.
        if value is None or not low <= value <= high:
            whole = "a whole number" if kind is int else "a number"
            raise ValueError(f"{name} must be {whole} from {low:g} to {high:g}, not {raw!r}.")
        return value

    settings = Settings(
        base_url=env.get("SEGMIND_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
        upload_url=env.get("SEGMIND_UPLOAD_URL", DEFAULT_UPLOAD_URL),
        transport=env.get("SEGMIND_IMAGE_TRANSPORT", "upload").strip().lower(),
        api_mode=env.get("SEGMIND_API_MODE", "queue").strip().lower(),
        deadline_s=number("SEGMIND_DEADLINE_S", 600.0, 0.1, 86400.0),
        # 0 would poll Segmind in a tight loop.
        poll_s=number("SEGMIND_POLL_S", 1.0, 0.01, 60.0),
        max_side=number("SEGMIND_MAX_SIDE", 2048, 256, 8192, int),
        # The number of tries in all, so at least one.
        retries=number("SEGMIND_RETRIES", 3, 1, 10, int),
        retry_base_s=number("SEGMIND_RETRY_BASE_S", 2.0, 0.0, 60.0),
        # Pillow's own decompression-bomb limit (89.5 MP) stays the ceiling.
        max_megapixels=number("PLAYGROUND_MAX_MEGAPIXELS", 65.0, 1.0, 89.0),
        max_file_mb=number("PLAYGROUND_MAX_FILE_MB", 50.0, 1.0, 1024.0),
        concurrency=number("PLAYGROUND_CONCURRENCY", 64, 1, 1024, int),
        max_runs=number("PLAYGROUND_MAX_RUNS", 128, 1, 4096, int),
        queue_size=number("PLAYGROUND_QUEUE_SIZE", 256, 1, 100_000, int),
    )
    if settings.transport not in TRANSPORTS:
        raise ValueError(f"SEGMIND_IMAGE_TRANSPORT must be one of {', '.join(TRANSPORTS)}.")
    if settings.api_mode not in API_MODES:
        raise ValueError(f"SEGMIND_API_MODE must be one of {', '.join(API_MODES)}.")
    return settings


def server_api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The key the server owner set (a Space secret); it is used on the server and never sent to a browser."""
    env = os.environ if env is None else env
    return (env.get("SEGMIND_API_KEY") or "").strip() or None


def public_url(env: Mapping[str, str] | None = None) -> str | None:
    """Where visitors reach this app (for the gradio_client snippet): PLAYGROUND_PUBLIC_URL, or the Space's host."""
    env = os.environ if env is None else env
    if url := (env.get("PLAYGROUND_PUBLIC_URL") or "").strip():
        return url.rstrip("/") + "/"
    return f"https://{host}/" if (host := (env.get("SPACE_HOST") or "").strip()) else None


@dataclass(frozen=True)
class StoreSettings:
    """Where runs are kept and for how long; a Space with persistent storage can point these at /data."""

    run_dir: str
    run_ttl_s: float
    state_secret: str | None = field(default=None, repr=False)


def load_store_settings(env: Mapping[str, str] | None = None) -> StoreSettings:
    env = os.environ if env is None else env
    from .store import default_root

    raw = env.get("PLAYGROUND_RUN_TTL_H", "24")
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or not 0 < hours <= 24 * 365:
        raise ValueError(f"PLAYGROUND_RUN_TTL_H must be a number of hours above 0 and up to a year (got {raw!r}).")
    return StoreSettings(run_dir=env.get("PLAYGROUND_RUN_DIR") or str(default_root()), run_ttl_s=hours * 3600,
                         state_secret=env.get("PLAYGROUND_STATE_SECRET") or None)
