"""The run store: one folder per run, ids that reach nothing else, expiry, a secret kept for browser storage."""

import threading
import time

import pytest

from playground.store import RunStore, owner_tag, state_secret


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs", ttl_s=3600)


def test_two_runs_never_share_a_folder(store):
    runs = [store.create("browser") for _ in range(200)]
    assert len({r.run_id for r in runs}) == len({r.folder for r in runs}) == 200


def test_a_run_is_found_by_its_owner_only(store):
    run = store.create("browser-a")
    assert store.get(run.run_id, owner="browser-a") == run
    assert store.get(run.run_id, owner="browser-b") is None
    assert store.get(run.run_id) == run  # the id itself is the capability when no owner is asked for
    assert "browser-a" not in (run.folder / "meta.json").read_text() and owner_tag("browser-a") in (
        run.folder / "meta.json").read_text()


@pytest.mark.parametrize("crafted", ["../x", "..", "", None, 5, "a/b", "/etc/passwd", "https://example.com/x",
                                     "A" * 21, "A" * 23, "....................../", "%2e%2e%2fxxxxxxxxxxxxxxxxxx"])
def test_a_crafted_run_id_reaches_nothing(store, crafted):
    store.create("browser")
    assert store.get(crafted) is None


def test_another_runs_path_or_a_symlink_reaches_nothing(store, tmp_path):
    run = store.create("browser")
    assert store.get(str(run.folder)) is None
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / ("B" * 22)).symlink_to(outside)
    assert store.get("B" * 22) is None


@pytest.mark.parametrize("name", ["../meta.json", "meta.json", "/etc/passwd", "a/b.png", ".hidden", "A.PNG"])
def test_file_names_cannot_leave_the_run(store, name):
    run = store.create("browser")
    with pytest.raises(ValueError):
        run.path(name)
    assert run.read(name) is None


def test_expired_runs_are_unknown_and_swept(store):
    old, new = store.create("b"), store.create("b")
    old.update(created_at=time.time() - 7200)
    assert store.get(old.run_id) is None and store.get(new.run_id) == new
    assert store.sweep() == 1
    assert not old.folder.exists() and new.folder.exists()


def test_concurrent_sweeps_do_not_fail(store):
    for _ in range(100):
        store.create("b").update(created_at=0)
    errors = []

    def sweep():
        try:
            store.sweep()
        except Exception as exc:  # the defect: two clean-ups raced on the same files
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and list(store.root.iterdir()) == []


def test_the_browser_state_secret_is_made_once_and_kept(tmp_path):
    first = state_secret(tmp_path)
    assert state_secret(tmp_path) == first and len(first) >= 24
    assert state_secret(tmp_path, "configured") == "configured"
