"""The server side of the app, free of any UI: settings, the backend, the run store and the runs in flight.

The page's handlers and the API endpoints both start, follow and resume runs through a `Service`; the app is
built around one (see `app.create_app`), so tests and the demo swap the backend without environment tricks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .backend import Backend, segmind_backend
from .config import Settings, load_settings, server_api_key
from .inputs import EditInputs, InputError
from .run import RunRecord, execute, resume
from .runner import LiveRun, Runner
from .store import Run, RunStore

# A queued job Segmind may still finish: waiting for it again can fetch its result.
RESUMABLE = (errors.Interrupted, errors.Stopped, errors.DeadlineExceeded, errors.Truncated)


@dataclass
class Service:
    store: RunStore
    settings: Callable[[], Settings] = load_settings
    backend_for: Callable[[Settings], Backend] = segmind_backend
    server_key: Callable[[], str | None] = server_api_key
    runner: Runner = field(default_factory=Runner)

    def backend(self) -> tuple[Settings, Backend]:
        settings = self.settings()
        return settings, self.backend_for(settings)

    def key_for(self, typed: str | None) -> tuple[str, bool]:
        """The key a run uses (the visitor's own when typed, else the server owner's) and whether it is their own."""
        own = (typed or "").strip()
        return (own, True) if own else (self.server_key() or "", False)

    def start(self, inputs: EditInputs, *, api_key: str, own_key: bool, owner: str) -> LiveRun:
        """Create the run in the store at once (so a reload finds it whatever happens next) and start it."""
        settings, backend = self.backend()
        run = self.store.create(owner, state="created", own_key=own_key, backend=backend.name, mode=backend.mode)

        return self._start(run, lambda live: execute(
            inputs, run, api_key=api_key, backend=backend, transport=settings.transport, max_side=settings.max_side,
            on_status=live.report, stop=live.stop))

    def open(self, run_id: object, owner: str) -> Run | None:
        return self.store.get(run_id, owner=owner)

    def follow(self, run: Run, *, typed_key: str | None) -> LiveRun | None:
        """The run in flight, or its finished outcome; a submitted job no one waits for is waited for again.
        None when there is nothing to follow (never sent, or ended for good)."""
        live = self.runner.get(run.run_id)
        if live is not None:
            snap = live.snapshot()
            if not snap.done or snap.error is None or not isinstance(snap.error, RESUMABLE):
                return live
        meta = run.meta
        if meta.get("state") == "done":
            record = run.read_json("record.json")
            if record:
                return self.runner.start(run.run_id, lambda _live: RunRecord.from_dict(record))
        if meta.get("state") not in ("submitted", "stopped", "interrupted") or not meta.get("request_id"):
            return None
        key = (typed_key or "").strip() if meta.get("own_key") else self.server_key() or ""
        if not key:
            raise InputError(f"Request {meta['request_id']} may have finished while the page was away. Paste the "
                             "API key it was run with and press Resume to fetch its result.")
        _, backend = self.backend()

        return self._start(run, lambda live: resume(run, api_key=key, backend=backend, on_status=live.report,
                                                    stop=live.stop))

    def _start(self, run: Run, work: Callable[[LiveRun], RunRecord]) -> LiveRun:
        """Start `work` on `run`; a failure is written into the run's state, so a later page knows how it ended."""

        def recorded(live: LiveRun) -> RunRecord:
            try:
                return work(live)
            except Exception as exc:
                if isinstance(exc, RESUMABLE) and run.meta.get("request_id"):
                    run.update(state="stopped" if isinstance(exc, errors.Stopped) else "interrupted")
                else:
                    run.update(state="failed", error=type(exc).__name__)
                raise

        return self.runner.start(run.run_id, recorded)
