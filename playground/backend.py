"""The seam between a run and whatever performs the edit: Segmind itself, or a stand-in such as the demo.

A run only ever talks to a `Backend`; the app is built with one, so tests and the demo need no environment tricks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import segmind
from .config import Settings
from .segmind import EditResult, Job, JobStatus

OnStatus = Callable[[JobStatus], None] | None
OnSubmit = Callable[[Job], None] | None


class Backend(Protocol):
    name: str  # "segmind" or "demo": shown on the page and kept in each run's record
    mode: str  # "queue" (a job that can be picked up again) or "sync" (one call)
    needs_key: bool

    def upload(self, data_urls: list[str], *, api_key: str, on_status: OnStatus = None) -> list[str]:
        """Turn data URLs into URLs the edit call accepts."""

    def edit(self, payload: dict, *, api_key: str, on_status: OnStatus = None, on_submit: OnSubmit = None,
             stop: threading.Event | None = None) -> EditResult:
        """Run one edit; `on_submit` hears of a queued job before the wait begins."""

    def wait(self, request_id: str, *, api_key: str, submitted_at: float | None = None, on_status: OnStatus = None,
             stop: threading.Event | None = None) -> EditResult:
        """Wait for a job submitted earlier (after a reload, Resume or a restart) and return its result."""

    def credits(self, *, api_key: str) -> dict:
        """The account's balance, e.g. {"credits": 12.5, "free-credits": 0}."""


@dataclass(frozen=True)
class SegmindBackend:
    """Segmind's HTTP API, through the one request function in `segmind`."""

    settings: Settings
    name: str = "segmind"
    needs_key: bool = True

    @property
    def mode(self) -> str:
        return self.settings.api_mode

    def upload(self, data_urls, *, api_key, on_status=None):
        return segmind.upload_assets(data_urls, api_key=api_key, upload_url=self.settings.upload_url,
                                     retry=self.settings.retry)

    def edit(self, payload, *, api_key, on_status=None, on_submit=None, stop=None):
        s = self.settings
        return segmind.edit_image(payload, api_key=api_key, base_url=s.base_url, mode=s.api_mode, poll=s.poll,
                                  retry=s.retry, on_status=on_status, on_submit=on_submit, stop=stop)

    def wait(self, request_id, *, api_key, submitted_at=None, on_status=None, stop=None):
        s = self.settings
        job = Job.for_request(s.base_url, request_id, submitted_at)
        return segmind.wait_for_job(job, api_key=api_key, poll=s.poll, retry=s.retry, on_status=on_status, stop=stop)

    def credits(self, *, api_key):
        return segmind.get_credits(api_key=api_key, base_url=self.settings.base_url, retry=self.settings.retry)


def segmind_backend(settings: Settings) -> Backend:
    return SegmindBackend(settings)
