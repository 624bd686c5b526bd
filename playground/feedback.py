"""What a visitor is told: failures in words (for a toast or an API caller), and a run's progress as HTML."""

from __future__ import annotations

import html
import logging
import time

from . import images, messages, segmind
from .errors import SegmindError
from .guard import Refused
from .inputs import InputError
from .mask import MaskError
from .run import RunRecord
from .service import Busy

log = logging.getLogger(__name__)
USER_ERRORS = (InputError, SegmindError, images.ImageInputError, MaskError, Refused, Busy)
PHASES = {"preparing": "Preparing the images", "uploading": "Uploading the images", "sending": "Sending",
          "submitting": "Sending", "queued": "Queued at Segmind", "processing": "Processing",
          "downloading": "Downloading the result", "waiting": "Waiting", "stopping": "Stopping"}
NO_RUN = "-"  # BrowserState does not store a falsy value, so "no run" must be truthy


def toast(text: str) -> str:
    """Toasts render HTML: whatever came from outside (a request id, an error text) is shown as text."""
    return html.escape(text, quote=False)


def user_message(exc: Exception, surface: str = "page") -> str:
    """The words for a failure where it is shown: the page (which has Resume) or an API caller."""
    if isinstance(exc, (InputError, Refused, Busy)):
        return str(exc)
    if not isinstance(exc, USER_ERRORS):
        log.error("Unexpected failure in a run: %s", type(exc).__name__, exc_info=exc)
    return messages.describe(exc, surface=surface)


def progress_html(phase: str, elapsed_s: float, request_id: str | None = None, detail: str = "") -> str:
    """The run's progress; the seconds are counted in the browser from the click (see CLOCK_JS)."""
    share = min(elapsed_s / segmind.TYPICAL_DURATION_S, 0.97)
    label = PHASES.get(phase, phase)
    rid = f" · request <code>{html.escape(request_id)}</code>" if request_id else ""
    extra = f" · {html.escape(detail)}" if detail else ""
    return (f"<div class='run-progress'><div class='bar'><div style='width:{share * 100:.1f}%'></div></div>"
            f"<span><b>{label}</b>{extra} · <span class='run-clock' data-elapsed='{elapsed_s:.1f}'>"
            f"{elapsed_s:.0f}</span> s of a typical {segmind.TYPICAL_DURATION_S:.0f} s{rid}</span></div>")


def done_html(record: RunRecord) -> str:
    return (f"<div class='run-progress done'><span><b>Done</b> in <span class='run-clock done' "
            f"data-elapsed='{record.elapsed_s or 0:.1f}'>{record.elapsed_s or 0:.1f}</span> s</span></div>")


def status_detail(status) -> str:
    until = getattr(status, "until", None)
    if status.phase != "waiting" or not until:
        return ""
    reason = getattr(status, "reason", None) or "Segmind asked to wait"
    return f"{reason}; trying again at {time.strftime('%H:%M:%S', time.localtime(until))}"
