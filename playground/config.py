"""Settings from the environment, read at call time so a Space's secrets and variables apply without a restart."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .segmind import DEFAULT_BASE_URL, DEFAULT_UPLOAD_URL, PollPolicy, RetryPolicy

TRANSPORTS = ("upload", "inline")
API_MODES = ("queue", "sync")


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    upload_url: str = DEFAULT_UPLOAD_URL
    transport: str = "upload"
    api_mode: str = "queue"
    deadline_s: float = 600.0
    poll_s: float = 2.0
    max_side: int = 2048
    retries: int = 3
    retry_base_s: float = 2.0

    @property
    def poll(self) -> PollPolicy:
        return PollPolicy(first_s=self.poll_s, max_s=2.5 * self.poll_s, deadline_s=self.deadline_s)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retries, base_s=self.retry_base_s)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from SEGMIND_* variables; a bad value fails loudly instead of being guessed."""
    env = os.environ if env is None else env
    settings = Settings(
        base_url=env.get("SEGMIND_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
        upload_url=env.get("SEGMIND_UPLOAD_URL", DEFAULT_UPLOAD_URL),
        transport=env.get("SEGMIND_IMAGE_TRANSPORT", "upload").strip().lower(),
        api_mode=env.get("SEGMIND_API_MODE", "queue").strip().lower(),
        deadline_s=float(env.get("SEGMIND_DEADLINE_S", 600)),
        poll_s=float(env.get("SEGMIND_POLL_S", 2.0)),
        max_side=int(env.get("SEGMIND_MAX_SIDE", 2048)),
        retries=int(env.get("SEGMIND_RETRIES", 3)),
        retry_base_s=float(env.get("SEGMIND_RETRY_BASE_S", 2.0)),
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
