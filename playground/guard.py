"""The guard on the server owner's credits: who may run on the server's key, how often, and down to what balance.

Only runs on the server's key (SEGMIND_API_KEY) are guarded; a visitor who pastes their own key is never limited.
A run is reserved before anything is sent (`Guard.check`), then committed once it may have cost credits or
released when it was refused before any job ran (`Ticket.settle` decides from the error). All state lives in
one `Guard`, in memory: a restart forgets the counts.

Settings (read once, when the guard is made; a bad value fails loudly, an empty one counts as unset):

- PLAYGROUND_PASSWORD: when set, a run on the server's key needs it.
- PLAYGROUND_RUNS_PER_HOUR: runs per visitor in the last hour (default 10; 0: no runs on the server's key).
- PLAYGROUND_RUNS_PER_DAY: runs of all visitors together in the last 24 hours (default 200; 0: none).
- PLAYGROUND_CREDIT_FLOOR: below this balance the server's key stops running edits (default: no floor).
- PLAYGROUND_SHOW_BALANCE: 1 lets visitors on the server's key see its balance (default 0: they see runs left).
- PLAYGROUND_PROXY_HOPS: 0 (default) takes a visitor's address from the first X-Forwarded-For entry, which a
  client can write itself; n takes the n-th entry from the right, the one the n-th trusted proxy added.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import errors
from .images import ImageInputError
from .inputs import InputError
from .mask import MaskError

HOUR_S = 3600.0
DAY_S = 86400.0
MAX_RUNS = 100_000  # the highest limit a setting may name; it also bounds the memory the counts take
PASSWORD_TRIES = 10  # wrong passwords per visitor per hour before even the right one waits
MAX_WATCHED = 10_000  # visitors whose wrong passwords are remembered
SWEEP_S = 60.0
REASONS = ("password", "hour", "day", "floor")
OWN_KEY = "use your own Segmind API key (from your Segmind console), which runs on your own credits"
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class GuardSettings:
    password: str | None = field(default=None, repr=False)
    runs_per_hour: int = 10
    runs_per_day: int = 200
    credit_floor: float | None = None
    show_balance: bool = False
    proxy_hops: int = 0


def load_guard_settings(env: Mapping[str, str] | None = None) -> GuardSettings:
    """Settings from PLAYGROUND_* variables (see the module's docstring)."""
    env = os.environ if env is None else env

    def raw(name: str) -> str:
        return (env.get(name) or "").strip()

    def whole(name: str, default: int, high: int, zero: str) -> int:
        text = raw(name)
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not 0 <= value <= high:
            raise ValueError(f"{name} must be a whole number from 0 to {high} ({zero}), not {text!r}.")
        return value

    floor = None
    if text := raw("PLAYGROUND_CREDIT_FLOOR"):
        try:
            floor = float(text)
        except ValueError:
            floor = math.nan
        if not 0 <= floor <= 1e9:  # also refuses NaN and infinities
            raise ValueError(f"PLAYGROUND_CREDIT_FLOOR must be a number of credits from 0 up, not {text!r}.")
    show = raw("PLAYGROUND_SHOW_BALANCE").lower()
    if show and show not in TRUE + FALSE:
        raise ValueError(f"PLAYGROUND_SHOW_BALANCE must be 1 or 0 (or true/false, yes/no, on/off), not {show!r}.")
    return GuardSettings(
        password=raw("PLAYGROUND_PASSWORD") or None,
        runs_per_hour=whole("PLAYGROUND_RUNS_PER_HOUR", 10, MAX_RUNS, "0 allows no runs on the server's key"),
        runs_per_day=whole("PLAYGROUND_RUNS_PER_DAY", 200, MAX_RUNS, "0 allows no runs on the server's key"),
        credit_floor=floor,
        show_balance=show in TRUE,
        proxy_hops=whole("PLAYGROUND_PROXY_HOPS", 0, 10, "0 takes the first X-Forwarded-For entry"),
    )


class Refused(Exception):
    """A run on the server's key was refused before anything was sent. The message is meant for the visitor;
    `reason` is one of REASONS and `retry_at` (epoch seconds) says when a run is possible again, when known."""

    def __init__(self, message: str, *, reason: str, retry_at: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.retry_at = retry_at


def billable(error: BaseException | None) -> bool:
    """Whether a run that ended with `error` (None: it succeeded) may have cost credits, so it counts.

    It does not count only when it was refused before any job ran: its inputs, or Segmind's answer to the upload
    or submit (a 4xx, a 5xx, a bad key, a connection never made), or a job Segmind reports FAILED (not billed).
    Anything else counts, unknown errors included: they may have come after the job ran.
    """
    if error is None:
        return True
    if isinstance(error, (InputError, ImageInputError, MaskError, errors.JobFailed)):
        return False
    if isinstance(error, errors.SegmindError):
        return error.billed != "no" or error.phase in ("wait", "download")
    return True


class Ticket:
    """One reserved run. `commit()` keeps it counted, `release()` gives it back; the first call wins and later
    ones do nothing. As a context manager it settles itself on the way out (see `settle`)."""

    def __init__(self, guard: Guard | None, visitor: str, at: float):
        self._guard = guard
        self.visitor = visitor
        self.at = at
        self.state = "pending" if guard is not None else "committed"

    @property
    def counted(self) -> bool:
        """False for a run on the visitor's own key, which nothing limits."""
        return self._guard is not None

    def commit(self) -> None:
        if self._guard is not None:
            self._guard._settle(self, "committed")

    def release(self) -> None:
        if self._guard is not None:
            self._guard._settle(self, "released")

    def settle(self, error: BaseException | None) -> None:
        """Commit when the run may have cost credits, release when it was refused before any job ran."""
        if billable(error):
            self.commit()
        else:
            self.release()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.settle(error)

    def __repr__(self) -> str:
        return f"Ticket({self.visitor!r}, at={self.at:.0f}, {self.state})"


class Guard:
    """The limits on runs on the server's key, shared by every visitor of this process."""

    def __init__(self, settings: GuardSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._visitors: dict[str, deque[Ticket]] = {}
        self._day: deque[Ticket] = deque()
        self._wrong: OrderedDict[str, deque[float]] = OrderedDict()
        self._balance: float | None = None
        self._balance_at: float | None = None
        self._swept = -math.inf

    @property
    def show_balance(self) -> bool:
        return self.settings.show_balance

    @property
    def balance(self) -> float | None:
        """The server key's last known balance, for the server side; show it only when `show_balance`."""
        return self._balance

    @property
    def balance_seen_at(self) -> float | None:
        """When the balance was last seen (epoch seconds), so a credits button can skip asking again too soon."""
        return self._balance_at

    def visitor_of(self, headers: Mapping[str, str], client_host: str | None) -> str:
        return visitor_of(headers, client_host, hops=self.settings.proxy_hops)

    def saw_balance(self, value: object) -> None:
        """The server key's balance as a run's answer or a credits call gave it; anything but a number is ignored."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            with self._lock:
                self._balance, self._balance_at = float(value), self.clock()

    def check(self, visitor: str, password: str | None, own_key: bool) -> Ticket:
        """Reserve one run for `visitor`, or raise `Refused`. A run on the visitor's own key passes untouched and
        its ticket counts for nothing. Pass `own_key=True` as well when there is no key at all (no server key is
        set): that run fails on its own, and a word about passwords or limits would only mislead."""
        now = self.clock()
        if own_key:
            return Ticket(None, visitor, now)
        s = self.settings
        with self._lock:
            self._sweep(now)
            if s.password is not None:
                self._check_password(visitor, password, now)
            if s.credit_floor is not None and self._balance is not None and self._balance < s.credit_floor:
                shown = f" (balance {self._balance:g}, floor {s.credit_floor:g})" if s.show_balance else ""
                raise Refused(f"This Space's Segmind credits are running low{shown}, so its key runs no more edits "
                              f"for visitors. To keep editing, {OWN_KEY}.", reason="floor")
            if s.runs_per_hour == 0 or s.runs_per_day == 0:
                raise Refused(f"This Space does not run edits on its own key. To run edits, {OWN_KEY}.",
                              reason="hour" if s.runs_per_hour == 0 else "day")
            runs = self._runs(visitor, now)
            day = self._prune(self._day, now - DAY_S)
            waits = []
            if len(runs) >= s.runs_per_hour:
                waits.append((runs[len(runs) - s.runs_per_hour].at + HOUR_S, "hour"))
            if len(day) >= s.runs_per_day:
                waits.append((day[len(day) - s.runs_per_day].at + DAY_S, "day"))
            if waits:
                at, reason = max(waits)
                if reason == "hour":
                    said = (f"You have made {s.runs_per_hour} run{_s(s.runs_per_hour)} on this Space's key in the "
                            "last hour, the most one visitor may.")
                else:
                    said = (f"This Space's key has made its {s.runs_per_day} run{_s(s.runs_per_day)} for the last "
                            "24 hours (all visitors together).")
                raise Refused(f"{said} The next run is possible {when(at, now)}; to run sooner, {OWN_KEY}.",
                              reason=reason, retry_at=at)
            ticket = Ticket(self, visitor, now)
            self._visitors.setdefault(visitor, runs).append(ticket)
            self._day.append(ticket)
            return ticket

    def runs_left(self, visitor: str) -> tuple[int, int]:
        """Runs this visitor may still start on the server's key: (this hour, of today's runs for everyone)."""
        now = self.clock()
        with self._lock:
            runs = len(self._runs(visitor, now))
            day = len(self._prune(self._day, now - DAY_S))
        return max(0, self.settings.runs_per_hour - runs), max(0, self.settings.runs_per_day - day)

    def describe(self, visitor: str) -> str:
        """One line for the page of a visitor on the server's key: what they may still run, or what to do."""
        s = self.settings
        now = self.clock()
        with self._lock:
            balance = self._balance
            runs, day = self._runs(visitor, now), self._prune(self._day, now - DAY_S)
            hour_left, day_left = s.runs_per_hour - len(runs), s.runs_per_day - len(day)
            waits = []
            if s.runs_per_hour and hour_left <= 0:
                waits.append(runs[len(runs) - s.runs_per_hour].at + HOUR_S)
            if s.runs_per_day and day_left <= 0:
                waits.append(day[len(day) - s.runs_per_day].at + DAY_S)
        if s.credit_floor is not None and balance is not None and balance < s.credit_floor:
            return f"This Space's key runs no more edits (its credits are running low): {OWN_KEY}."
        if s.runs_per_hour == 0 or s.runs_per_day == 0:
            return f"This Space does not run edits on its own key: {OWN_KEY}."
        if waits:
            return (f"No runs left on this Space's key until {when(max(waits), now, relative=False)}; until then, "
                    f"{OWN_KEY}.")
        if day_left < hour_left:
            line = f"Runs on this Space's key: {day_left} left for today, shared by all visitors."
        else:
            line = f"Runs on this Space's key: {hour_left} of {s.runs_per_hour} left this hour."
        if s.show_balance and balance is not None:
            line += f" The key has {balance:g} credits left."
        return line + (" They need the playground password." if s.password else "")

    def _check_password(self, visitor: str, password: str | None, now: float) -> None:
        wrong = self._wrong.get(visitor)
        if wrong is not None:
            _prune_times(wrong, now - HOUR_S)
        if wrong and len(wrong) >= PASSWORD_TRIES:
            at = wrong[len(wrong) - PASSWORD_TRIES] + HOUR_S
            raise Refused(f"Too many wrong passwords from your address. Try again {when(at, now)}; or {OWN_KEY}.",
                          reason="password", retry_at=at)
        typed = (password or "").strip()
        if not typed:
            raise Refused(f"This Space's own Segmind key needs the playground password: enter it and run again; "
                          f"or {OWN_KEY}.", reason="password")
        if not same(typed, self.settings.password or ""):
            if wrong is None:
                wrong = self._wrong[visitor] = deque(maxlen=PASSWORD_TRIES)
                while len(self._wrong) > MAX_WATCHED:
                    self._wrong.popitem(last=False)
            wrong.append(now)
            self._wrong.move_to_end(visitor)
            raise Refused(f"That playground password is not right: check it and try again; or {OWN_KEY}.",
                          reason="password")

    def _settle(self, ticket: Ticket, state: str) -> None:
        with self._lock:
            if ticket.state != "pending":
                return
            ticket.state = state
            if state == "released":
                _discard(self._day, ticket)
                runs = self._visitors.get(ticket.visitor)
                if runs is not None:
                    _discard(runs, ticket)
                    if not runs:
                        del self._visitors[ticket.visitor]

    def _runs(self, visitor: str, now: float) -> deque[Ticket]:
        """The visitor's runs in the last hour (a new, untracked deque for a visitor with none)."""
        runs = self._visitors.get(visitor)
        if runs is None:
            return deque()
        self._prune(runs, now - HOUR_S)
        if not runs:
            del self._visitors[visitor]
        return runs

    def _sweep(self, now: float) -> None:
        """Forget visitors with no run (and no wrong password) in the last hour, once a minute at most."""
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        for visitor in list(self._visitors):
            self._runs(visitor, now)
        for visitor, wrong in list(self._wrong.items()):
            if not _prune_times(wrong, now - HOUR_S):
                del self._wrong[visitor]

    @staticmethod
    def _prune(tickets: deque[Ticket], before: float) -> deque[Ticket]:
        while tickets and tickets[0].at <= before:
            tickets.popleft()
        return tickets


def same(typed: str, password: str) -> bool:
    """Compare in constant time; hashing first hides the password's length too."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(typed.encode()).digest(), digest(password.encode()).digest())


def visitor_of(headers: Mapping[str, str], client_host: str | None, *, hops: int = 0) -> str:
    """Who a request comes from, for the per-visitor limit: the first X-Forwarded-For entry when there is one (with
    `hops` > 0, the entry that many places from its right end), else the socket peer's address.

    Ports and brackets are dropped, and an IPv6 address stands for its /64 network (what one household gets).
    """
    forwarded = headers.get("x-forwarded-for")
    if forwarded is None:
        forwarded = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), None)
    entries = [e.strip() for e in (forwarded or "").split(",") if e.strip()]
    index = max(0, len(entries) - hops) if hops > 0 else 0
    return _normalise(entries[index] if entries else client_host or "") or "unknown"


def _normalise(address: str) -> str:
    address = address.strip().strip('"')
    if address.startswith("["):
        address = address[1:].split("]", 1)[0]
    elif address.count(":") == 1:
        address = address.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address.lower()[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def when(at: float, now: float, *, relative: bool = True) -> str:
    """"in 12 min, at 14:05 UTC": the wait rounded up, and the time shown at the next whole minute, so a visitor
    who comes back then is never early."""
    shown = datetime.fromtimestamp(math.ceil(at / 60) * 60, timezone.utc)
    day = " tomorrow" if shown.date() != datetime.fromtimestamp(now, timezone.utc).date() else ""
    clock = f"{shown:%H:%M} UTC{day}"
    if not relative:
        return clock
    wait = max(0.0, at - now)
    if wait < 60:
        return f"in under a minute, at {clock}"
    hours, minutes = divmod(math.ceil(wait / 60), 60)
    span = " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)
    return f"in {span}, at {clock}"


def _prune_times(times: deque[float], before: float) -> deque[float]:
    while times and times[0] <= before:
        times.popleft()
    return times


def _discard(items: deque[Ticket], ticket: Ticket) -> None:
    for index, item in enumerate(items):
        if item is ticket:
            del items[index]
            return


def _s(count: int) -> str:
    return "" if count == 1 else "s"
