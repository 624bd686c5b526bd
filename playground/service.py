"""The server side of the app, free of any UI: settings, the backend, the run store and the runs in flight.

The page's handlers and the API endpoints both start, follow and resume runs through a `Service`; the app is
built around one (see `app.create_app`), so tests and the demo swap the backend without environment tricks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .backend import Backend, segmind_backend
from .bundle import bundle
from .config import Settings, load_settings, public_url, server_api_key
from .demo import DemoBackends
from .guard import OWN_KEY, Guard, Refused, Ticket, load_guard_settings
from .inputs import EditInputs, InputError
from .run import RunRecord, SharedImages, execute, resume
from .runner import LiveRun, Runner
from .snippets import DEFAULT_APP_URL, snippets
from .store import Run, RunStore

# A queued job Segmind may still finish: waiting for it again can fetch its result.
RESUMABLE = (errors.Interrupted, errors.Stopped, errors.DeadlineExceeded, errors.Truncated)


class Busy(Exception):
    """More runs are in flight than the app takes at once; nothing was sent."""


@dataclass
class Service:
    store: RunStore
    settings: Callable[[], Settings] = load_settings
    backend_for: Callable[[Settings], Backend] = segmind_backend
    server_key: Callable[[], str | None] = server_api_key
    runner: Runner = field(default_factory=Runner)
    app_url: str = field(default_factory=lambda: public_url() or DEFAULT_APP_URL)  # for the gradio_client snippet
    guard: Guard = field(default_factory=lambda: Guard(load_guard_settings()))
    demo: DemoBackends = field(default_factory=DemoBackends)  # the stand-in a demo run goes to
    demo_only: bool = False  # demo mode for the whole app: every run goes to the stand-in
    _admitting: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backend(self, demo: bool = False) -> tuple[Settings, Backend]:
        settings = self.settings()
        return settings, (self.demo if demo or self.demo_only else self.backend_for)(settings)

    def code(self, run: Run) -> dict[str, str] | None:
        """The code that reproduces a finished run (edit.py, edit.sh, edit_client.py), or None."""
        try:
            return snippets(run, self.settings(), app_url=self.app_url)
        except (ValueError, OSError):
            return None

    def bundle(self, run: Run):
        """The run as one zip (see bundle.py); BundleError when it has nothing to take away."""
        return bundle(run, self.settings(), app_url=self.app_url)

    def key_for(self, typed: str | None) -> tuple[str, bool]:
        """The key a run uses (the visitor's own when typed, else the server owner's) and whether it is their own."""
        own = (typed or "").strip()
        return (own, True) if own else (self.server_key() or "", False)

    def start(self, inputs: EditInputs, *, api_key: str, own_key: bool, owner: str, visitor: str = "unknown",
              password: str | None = None, demo: bool = False) -> LiveRun:
        """Create the run in the store at once (so a reload finds it whatever happens next) and start it. A run on
        the server's key passes the guard first (guard.Refused), here, where every handler that spends comes."""
        return self.start_many([inputs], api_key=api_key, own_key=own_key, owner=owner, visitor=visitor,
                               password=password, demo=demo)[0]

    def start_many(self, batch: list[EditInputs], *, api_key: str, own_key: bool, owner: str,
                   visitor: str = "unknown", password: str | None = None, demo: bool = False,
                   cells: list[dict] | None = None) -> list[LiveRun]:
        """Start one run per inputs, all at once (variations, a sweep). They share one preparation of the images
        (see SharedImages); the guard admits the whole batch or none of it, before anything is sent. `cells` say
        what sets each run apart (kept with the run, so a reloaded page can show the batch again)."""
        settings, backend = self.backend(demo)
        with self._admitting:
            if (active := self.runner.active()) + len(batch) > settings.max_runs:
                raise Busy(f"The playground is busy: {active} runs are in flight and it takes {settings.max_runs} at "
                           "once. Try again in a minute; nothing was sent or spent.")
            tickets = self._tickets(len(batch), visitor, password,
                                    own_key=own_key or not api_key or not backend.needs_key)
            shared = SharedImages()
            lives = []
            for inputs, ticket, cell in zip(batch, tickets, cells or [None] * len(batch), strict=True):
                run = self.store.create(owner, state="created", own_key=own_key, backend=backend.name,
                                        mode=backend.mode, **({"cell": cell} if cell else {}))
                lives.append(self._start(run, lambda live, inputs=inputs, run=run: execute(
                    inputs, run, api_key=api_key, backend=backend, transport=settings.transport,
                    max_side=settings.max_side, on_status=live.report, stop=live.stop, shared=shared), ticket))
        return lives

    def _tickets(self, count: int, visitor: str, password: str | None, *, own_key: bool) -> list[Ticket]:
        tickets: list[Ticket] = []
        try:
            for _ in range(count):
                tickets.append(self.guard.check(visitor, password, own_key=own_key))
        except Refused as exc:
            for ticket in tickets:
                ticket.release()
            if not tickets:
                raise
            raise Refused(f"This batch needs {count} runs on this Space's key and you may start {len(tickets)} now. "
                          f"Ask for fewer, or {OWN_KEY}.", reason=exc.reason, retry_at=exc.retry_at) from None
        return tickets

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
        _, backend = self.backend(demo=meta.get("backend") == "demo")
        key = (typed_key or "").strip() if meta.get("own_key") else self.server_key() or ""
        if not key and backend.needs_key:
            raise InputError(f"Request {meta['request_id']} may have finished while the page was away. Paste the "
                             "API key it was run with and press Resume to fetch its result.")

        return self._start(run, lambda live: resume(run, api_key=key, backend=backend, on_status=live.report,
                                                    stop=live.stop))

    def _start(self, run: Run, work: Callable[[LiveRun], RunRecord], ticket: Ticket | None = None) -> LiveRun:
        """Start `work` on `run`; a failure is written into the run's state, so a later page knows how it ended.
        The guard's ticket is settled here, in the run's own thread: a run goes on when its page has gone."""

        def recorded(live: LiveRun) -> RunRecord:
            try:
                record = work(live)
            except Exception as exc:
                if ticket:
                    ticket.settle(exc)
                if isinstance(exc, RESUMABLE) and run.meta.get("request_id"):
                    run.update(state="stopped" if isinstance(exc, errors.Stopped) else "interrupted")
                else:
                    run.update(state="failed", error=type(exc).__name__)
                raise
            if ticket:
                ticket.commit()
            return self._owner_balance(run, record)

        return self.runner.start(run.run_id, recorded)

    def _owner_balance(self, run: Run, record: RunRecord) -> RunRecord:
        """The server key's balance feeds the guard's floor, and is kept from visitors unless the owner shows it."""
        if run.meta.get("own_key") or record.backend != "segmind":
            return record
        self.guard.saw_balance(record.remaining_credits)
        if not self.guard.show_balance and record.remaining_credits is not None:
            record.remaining_credits = None
            run.write_json("record.json", record.to_dict())
        return record
