"""Runs in flight: each works in a thread of its own, apart from the page that started it.

A page (or a reloaded page, or Resume) follows a run by its id; leaving or reloading the page does not stop the
run, so a job Segmind has accepted always ends up in the run store. Stop is the only way to stop waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .segmind import JobStatus

KEEP_FINISHED_S = 15 * 60


@dataclass(frozen=True)
class Snapshot:
    status: JobStatus | None
    outcome: object | None  # the work's return value once it succeeded
    error: Exception | None
    done: bool
    version: int


class LiveRun:
    def __init__(self, run_id: str):
        self.run_id = run_id
        self.stop = threading.Event()
        self.started = time.time()
        self.finished_at: float | None = None
        self._changed = threading.Condition()
        self._status: JobStatus | None = None
        self._outcome = self._error = None
        self._done = False
        self._version = 0

    def report(self, status: JobStatus) -> None:
        with self._changed:
            self._status = status
            self._version += 1
            self._changed.notify_all()

    def _end(self, outcome=None, error: Exception | None = None) -> None:
        with self._changed:
            self._outcome, self._error, self._done = outcome, error, True
            self.finished_at = time.time()
            self._version += 1
            self._changed.notify_all()

    def snapshot(self) -> Snapshot:
        with self._changed:
            return Snapshot(self._status, self._outcome, self._error, self._done, self._version)

    def changes(self, tick_s: float = 1.0) -> Iterator[Snapshot]:
        """Each change of the run, and a snapshot at least every `tick_s` (for the clock), until it ends."""
        seen = -1
        while True:
            with self._changed:
                if self._version == seen:
                    self._changed.wait(tick_s)
                snap = Snapshot(self._status, self._outcome, self._error, self._done, self._version)
            seen = snap.version
            yield snap
            if snap.done:
                return

    def result(self, timeout: float | None = None) -> Snapshot:
        with self._changed:
            self._changed.wait_for(lambda: self._done, timeout)
        return self.snapshot()


class Runner:
    """The runs this process is working on, by run id, and the recently finished ones (so a reload finds them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[str, LiveRun] = {}

    def start(self, run_id: str, work: Callable[[LiveRun], object]) -> LiveRun:
        live = LiveRun(run_id)

        def target():
            try:
                outcome = work(live)
            except Exception as exc:  # handed to whoever follows the run, which words it
                live._end(error=exc)
            else:
                live._end(outcome=outcome)

        with self._lock:
            self._forget_old()
            current = self._runs.get(run_id)
            if current is not None and not current.snapshot().done:
                return current
            self._runs[run_id] = live
        threading.Thread(target=target, name=f"run-{run_id[:6]}", daemon=True).start()
        return live

    def active(self) -> int:
        """How many runs are in flight."""
        with self._lock:
            return sum(1 for live in self._runs.values() if live.finished_at is None)

    def get(self, run_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def stop(self, run_id: str | None) -> bool:
        live = self.get(run_id) if run_id else None
        if live is None or live.snapshot().done:
            return False
        live.stop.set()
        return True

    def _forget_old(self) -> None:
        now = time.time()
        for run_id, live in list(self._runs.items()):
            if live.finished_at is not None and now - live.finished_at > KEEP_FINISHED_S:
                del self._runs[run_id]
