"""The guard on the server owner's credits: password, limits, floor and visitors, with a clock the test moves."""

import sys
import threading
from datetime import datetime, timezone

import pytest

from playground import errors, guard
from playground.guard import Guard, GuardSettings, Refused, billable, load_guard_settings, visitor_of, when
from playground.inputs import InputError

T0 = datetime(2024, 3, 1, 14, 0, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def make(clock=None, **settings):
    return Guard(GuardSettings(**settings), clock=clock or Clock())


def refusal(g, visitor="1.2.3.4", password=None) -> Refused:
    with pytest.raises(Refused) as caught:
        g.check(visitor, password, False)
    return caught.value


# -- password ------------------------------------------------------------------------------------------------------

def test_a_missing_or_wrong_password_is_refused_and_the_right_one_passes():
    g = make(password="open sesame")
    missing = refusal(g)
    assert missing.reason == "password" and "needs the playground password" in str(missing)
    assert "your own Segmind API key" in str(missing)
    wrong = refusal(g, password="open sesam")
    assert wrong.reason == "password" and "not right" in str(wrong) and "open sesame" not in str(wrong)
    assert g.check("1.2.3.4", " open sesame ", False).counted
    assert g.runs_left("1.2.3.4") == (9, 199)


def test_a_visitor_on_their_own_key_needs_no_password_and_is_never_counted():
    g = make(password="secret", runs_per_hour=1, runs_per_day=1, credit_floor=5)
    g.saw_balance(0)
    for _ in range(5):
        ticket = g.check("1.2.3.4", None, True)
        assert not ticket.counted
        ticket.commit()
    assert g.runs_left("1.2.3.4") == (1, 1)


def test_the_password_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = guard.hmac.compare_digest
    monkeypatch.setattr(guard.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    g = make(password="secret")
    refusal(g, password="guess")
    assert len(calls) == 1 and b"secret" not in calls[0][1]  # digests, not the password itself


def test_too_many_wrong_passwords_lock_the_address_out_for_an_hour():
    clock = Clock()
    g = make(clock, password="secret")
    for _ in range(guard.PASSWORD_TRIES):
        refusal(g, password="guess")
    locked = refusal(g, password="secret")
    assert locked.reason == "password" and "Too many wrong passwords" in str(locked)
    assert "in 1 h, at 15:00 UTC" in str(locked)
    assert g.check("5.6.7.8", "secret", False).counted  # another address is not locked out
    clock.now += 3600
    assert g.check("1.2.3.4", "secret", False).counted


# -- limits --------------------------------------------------------------------------------------------------------

def test_the_hour_limit_names_when_the_next_run_is_possible_and_then_allows_it():
    clock = Clock()
    g = make(clock, runs_per_hour=3)
    for minutes in (0, 10, 20):
        clock.now = T0 + minutes * 60
        g.check("1.2.3.4", None, False).commit()
    clock.now = T0 + 30 * 60 + 20
    refused = refusal(g)
    assert refused.reason == "hour" and refused.retry_at == T0 + 3600
    assert "3 runs on this Space's key in the last hour" in str(refused)
    assert "in 30 min, at 15:00 UTC" in str(refused) and "your own Segmind API key" in str(refused)
    assert g.runs_left("1.2.3.4") == (0, 197)
    assert g.check("9.9.9.9", None, False).counted  # the limit is per visitor
    clock.now = T0 + 3600
    g.check("1.2.3.4", None, False).commit()
    refused = refusal(g)
    assert refused.retry_at == T0 + 3600 + 600  # the window slides: the run at 14:10 is the oldest now
    assert "at 15:10 UTC" in str(refused)


def test_the_day_limit_is_shared_by_all_visitors():
    clock = Clock()
    g = make(clock, runs_per_hour=10, runs_per_day=3)
    for visitor in ("a", "b", "c"):
        g.check(visitor, None, False).commit()
        clock.now += 60
    refused = refusal(g, "d")
    assert refused.reason == "day" and "all visitors together" in str(refused)
    assert "at 14:00 UTC tomorrow" in str(refused) and refused.retry_at == T0 + 86400
    assert g.runs_left("a") == (9, 0)
    clock.now = T0 + 86400
    assert g.check("d", None, False).counted


def test_a_released_run_does_not_count_and_settling_twice_changes_nothing():
    g = make(runs_per_hour=1)
    ticket = g.check("1.2.3.4", None, False)
    assert g.runs_left("1.2.3.4") == (0, 199)  # a reservation counts at once
    ticket.release()
    ticket.commit()
    assert ticket.state == "released" and g.runs_left("1.2.3.4") == (1, 200)
    ticket = g.check("1.2.3.4", None, False)
    ticket.commit()
    ticket.release()
    assert ticket.state == "committed" and refusal(g).reason == "hour"


@pytest.mark.parametrize(("error", "counts"), [
    (None, True),
    (InputError("no image"), False),
    (errors.BadRequest("bad", status=400, phase="submit"), False),
    (errors.AuthError("no", status=401, phase="upload"), False),
    (errors.BadKey("a space", phase="submit"), False),
    (errors.NotEnoughCredits("low", status=406, phase="submit"), False),
    (errors.RateLimited("slow", status=429, phase="submit"), False),
    (errors.ServerError("down", status=503, phase="submit"), False),
    (errors.ConnectionFailed(cause="dns", phase="submit"), False),
    (errors.Stopped(billed="no"), False),
    (errors.JobFailed("moderation", status=422, phase="wait"), False),
    (errors.MaybeBilled(phase="submit"), True),
    (errors.Stopped(phase="wait", billed="maybe"), True),
    (errors.Interrupted(phase="wait"), True),
    (errors.JobExpired(status=404, phase="wait"), True),
    (errors.Truncated(phase="download"), True),
    (RuntimeError("a bug after the image came back"), True),
])
def test_billable_tells_a_refused_run_from_one_that_may_have_cost_credits(error, counts):
    assert billable(error) is counts


def test_the_ticket_as_a_context_manager_settles_by_how_the_run_ended():
    g = make()
    with pytest.raises(InputError), g.check("v", None, False) as ticket:
        raise InputError("no image")
    assert ticket.state == "released"
    with pytest.raises(errors.MaybeBilled), g.check("v", None, False) as ticket:
        raise errors.MaybeBilled(phase="submit")
    assert ticket.state == "committed"
    with g.check("v", None, False) as ticket:
        pass
    assert ticket.state == "committed"
    with pytest.raises(InputError), g.check("v", None, False) as ticket:
        ticket.commit()
        raise InputError("too late to give it back")
    assert ticket.state == "committed" and g.runs_left("v") == (7, 197)


@pytest.mark.parametrize(("visitors", "settings", "allowed"), [
    (["1.2.3.4"] * 40, {"runs_per_hour": 1}, 1),
    ([f"10.0.0.{i}" for i in range(40)], {"runs_per_day": 5}, 5),
])
def test_concurrent_reservations_never_pass_the_limit(visitors, settings, allowed):
    g = make(**settings)
    start = threading.Barrier(len(visitors))
    passed, refused = [], []

    def run(visitor):
        start.wait()
        try:
            passed.append(g.check(visitor, None, False))
        except Refused:
            refused.append(visitor)

    threads = [threading.Thread(target=run, args=(v,)) for v in visitors]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a check without the lock would let two through
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(passed) == allowed and len(refused) == len(visitors) - allowed


def test_visitors_with_no_run_in_the_window_are_forgotten():
    clock = Clock()
    g = make(clock, password="secret", runs_per_day=1000)
    for i in range(500):
        g.check(f"10.0.{i // 256}.{i % 256}", "secret", False).commit()
        refusal(g, f"10.1.{i // 256}.{i % 256}", password="guess")
    assert len(g._visitors) == 500 and len(g._wrong) == 500
    clock.now += 3600 + guard.SWEEP_S
    g.check("1.2.3.4", "secret", False)
    assert list(g._visitors) == ["1.2.3.4"] and not g._wrong
    clock.now += 86400
    g.check("1.2.3.4", "secret", False)
    assert len(g._day) == 1


# -- the credit floor ----------------------------------------------------------------------------------------------

def test_below_the_floor_the_server_key_stops_and_says_to_bring_your_own():
    g = make(credit_floor=5)
    assert g.check("v", None, False).counted  # the balance is not known yet
    g.saw_balance(12.5)
    assert g.check("v", None, False).counted
    g.saw_balance(4.9)
    for nonsense in (None, float("nan"), True, "3"):
        g.saw_balance(nonsense)
    assert g.balance == 4.9 and g.balance_seen_at == T0
    refused = refusal(g, "someone else")
    assert refused.reason == "floor" and "your own Segmind API key" in str(refused)
    assert "4.9" not in str(refused)  # the balance stays private unless PLAYGROUND_SHOW_BALANCE
    g.saw_balance(5)
    assert g.check("v", None, False).counted
    shown = make(credit_floor=5, show_balance=True)
    shown.saw_balance(4.9)
    assert "balance 4.9, floor 5" in str(refusal(shown))


# -- the line for the page -----------------------------------------------------------------------------------------

def test_describe_says_what_is_left_or_what_to_do():
    clock = Clock()
    g = make(clock, runs_per_hour=10, runs_per_day=200)
    for _ in range(3):
        g.check("v", None, False).commit()
    assert g.describe("v") == "Runs on this Space's key: 7 of 10 left this hour."
    g.saw_balance(40)
    assert "40" not in g.describe("v")
    shown = make(clock, show_balance=True, password="x")
    shown.saw_balance(40)
    assert shown.describe("v") == ("Runs on this Space's key: 10 of 10 left this hour. The key has 40 credits left. "
                                   "They need the playground password.")
    tight = make(clock, runs_per_hour=10, runs_per_day=2)
    tight.check("a", None, False).commit()
    assert tight.describe("v") == "Runs on this Space's key: 1 left for today, shared by all visitors."
    tight.check("b", None, False).commit()
    assert tight.describe("v").startswith("No runs left on this Space's key until 14:00 UTC tomorrow; until then, "
                                          "use your own Segmind API key")
    floored = make(clock, credit_floor=1)
    floored.saw_balance(0.5)
    assert "credits are running low" in floored.describe("v")
    assert "does not run edits on its own key" in make(clock, runs_per_hour=0).describe("v")


@pytest.mark.parametrize(("at", "text"), [
    (T0 + 20, "in under a minute, at 14:01 UTC"),
    (T0 + 12 * 60, "in 12 min, at 14:12 UTC"),
    (T0 + 11 * 60 + 1, "in 12 min, at 14:12 UTC"),
    (T0 + 3600, "in 1 h, at 15:00 UTC"),
    (T0 + 3 * 3600 + 5 * 60, "in 3 h 5 min, at 17:05 UTC"),
    (T0 + 11 * 3600, "in 11 h, at 01:00 UTC tomorrow"),
])
def test_when_rounds_up_so_a_visitor_is_never_early(at, text):
    assert when(at, T0) == text


# -- visitors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "peer", "visitor"), [
    ({"x-forwarded-for": "203.0.113.7, 10.0.0.1, 10.0.0.2"}, "10.0.0.3", "203.0.113.7"),
    ({"X-Forwarded-For": "  203.0.113.7 ,10.0.0.1"}, "10.0.0.3", "203.0.113.7"),
    ({"x-forwarded-for": " , 203.0.113.7"}, "10.0.0.3", "203.0.113.7"),
    ({"x-forwarded-for": ""}, "10.0.0.3", "10.0.0.3"),
    ({}, "10.0.0.3", "10.0.0.3"),
    ({}, None, "unknown"),
    ({"x-forwarded-for": "203.0.113.7:51234"}, None, "203.0.113.7"),
    ({"x-forwarded-for": "[2001:db8:1:2:3::9]:443"}, None, "2001:db8:1:2::/64"),
    ({"x-forwarded-for": "2001:db8:1:2:ffff::1"}, None, "2001:db8:1:2::/64"),
    ({"x-forwarded-for": "::ffff:203.0.113.7"}, None, "203.0.113.7"),
    ({"x-forwarded-for": "Some-Proxy-Name"}, None, "some-proxy-name"),
])
def test_the_visitor_is_the_first_forwarded_address_else_the_peer(headers, peer, visitor):
    assert visitor_of(headers, peer) == visitor


def test_with_trusted_proxy_hops_a_visitor_cannot_choose_their_address():
    headers = {"x-forwarded-for": "1.1.1.1, 203.0.113.7"}  # the first entry came from the client itself
    assert visitor_of(headers, "10.0.0.3", hops=1) == "203.0.113.7"
    assert visitor_of(headers, "10.0.0.3", hops=5) == "1.1.1.1"
    g = Guard(load_guard_settings({"PLAYGROUND_PROXY_HOPS": "1"}))
    assert g.visitor_of(headers, "10.0.0.3") == "203.0.113.7"


def test_a_long_made_up_address_is_cut_short():
    assert len(visitor_of({"x-forwarded-for": "x" * 10_000}, None)) == 64


# -- settings ------------------------------------------------------------------------------------------------------

def test_the_defaults_are_ten_an_hour_and_two_hundred_a_day_with_no_password_or_floor():
    settings = load_guard_settings({})
    assert settings == GuardSettings(password=None, runs_per_hour=10, runs_per_day=200, credit_floor=None,
                                     show_balance=False, proxy_hops=0)
    assert load_guard_settings({"PLAYGROUND_RUNS_PER_HOUR": " ", "PLAYGROUND_PASSWORD": "  "}) == settings


def test_values_are_read_and_the_password_never_shows_in_a_repr():
    settings = load_guard_settings({"PLAYGROUND_PASSWORD": " hunter2\n", "PLAYGROUND_RUNS_PER_HOUR": "3",
                                    "PLAYGROUND_RUNS_PER_DAY": "50", "PLAYGROUND_CREDIT_FLOOR": "2.5",
                                    "PLAYGROUND_SHOW_BALANCE": "Yes"})
    assert (settings.password, settings.runs_per_hour, settings.runs_per_day, settings.credit_floor,
            settings.show_balance) == ("hunter2", 3, 50, 2.5, True)
    assert "hunter2" not in repr(settings) and "hunter2" not in repr(Guard(settings))
    assert not load_guard_settings({"PLAYGROUND_SHOW_BALANCE": "0"}).show_balance


@pytest.mark.parametrize(("name", "value"), [
    ("PLAYGROUND_RUNS_PER_HOUR", "ten"),
    ("PLAYGROUND_RUNS_PER_HOUR", "-1"),
    ("PLAYGROUND_RUNS_PER_HOUR", "1.5"),
    ("PLAYGROUND_RUNS_PER_DAY", "1e9"),
    ("PLAYGROUND_RUNS_PER_DAY", "100001"),
    ("PLAYGROUND_CREDIT_FLOOR", "nan"),
    ("PLAYGROUND_CREDIT_FLOOR", "-5"),
    ("PLAYGROUND_CREDIT_FLOOR", "inf"),
    ("PLAYGROUND_CREDIT_FLOOR", "five"),
    ("PLAYGROUND_SHOW_BALANCE", "maybe"),
    ("PLAYGROUND_PROXY_HOPS", "-1"),
])
def test_a_bad_value_fails_loudly_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        load_guard_settings({name: value})


@pytest.mark.parametrize("name", ["PLAYGROUND_RUNS_PER_HOUR", "PLAYGROUND_RUNS_PER_DAY"])
def test_a_limit_of_zero_means_no_runs_on_the_server_key(name):
    g = Guard(load_guard_settings({name: "0"}))
    refused = refusal(g)
    assert refused.reason == ("hour" if name.endswith("HOUR") else "day")
    assert "does not run edits on its own key" in str(refused) and refused.retry_at is None
    assert g.check("1.2.3.4", None, True).counted is False
