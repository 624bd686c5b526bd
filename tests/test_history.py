"""History entries and the session ledger, without a browser."""

import json

from PIL import Image

from playground import history
from playground.run import RunRecord
from playground.store import RunStore


def record(run_id="r" * 22, cost=0.03, **kw):
    return RunRecord(run_id=run_id, prompt="a calm sea", params={"size": "auto", "quality": "high"}, image_names=[],
                     image_urls=[], mask_share=12.5, mode="queue", backend="segmind", started_at=1_700_000_000.0,
                     cost=cost, remaining_credits=9.5, **kw)


def test_an_entry_has_small_thumbnails_and_no_paths_or_keys(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("owner")
    big = Image.new("RGB", (3000, 2000), (200, 30, 30))
    big.save(run.path("input-1.png"))
    big.save(run.path("result.png"))
    rec = record(run_id=run.run_id, result_file="result.png")
    entry = history.entry(rec, run)
    for key in ("thumb_first", "thumb_result"):
        image = history.decode_thumbnail(entry[key])
        assert max(image.size) <= history.THUMB_SIDE
    text = json.dumps(entry)
    assert str(tmp_path) not in text and "result.png" not in text
    assert history.clean(json.loads(text)) == history.clean(entry)


def test_clean_keeps_known_fields_and_drops_the_rest():
    dirty = {"run_id": "../../etc/passwd", "prompt": "x"}
    assert history.clean(dirty) is None
    entry = history.clean({"run_id": "a" * 22, "prompt": 5, "cost": float("nan"), "params": {"size": "auto",
                           "evil": "x"}, "thumb_first": "javascript:alert(1)", "extra": "dropped",
                           "checks": ["ok", 3]})
    assert entry["prompt"] is None and entry["cost"] is None and entry["params"] == {"size": "auto"}
    assert entry["thumb_first"] is None and "extra" not in entry and entry["checks"] == ["ok", "3"]


def test_remove_and_malformed_histories():
    items = [{"run_id": c * 22, "prompt": c} for c in "abc"]
    assert [e["prompt"] for e in json.loads(history.remove(json.dumps(items), "b" * 22))] == ["a", "c"]
    assert history.entries("not json") == [] and history.entries('{"a": 1}') == [] and history.entries(None) == []


def test_differences_and_prompt_words():
    a = {"prompt": "a red balloon", "params": {"size": "auto", "quality": "low"}}
    b = {"prompt": "a blue balloon", "params": {"size": "auto", "quality": "high"}}
    assert history.differences([a, b]) == {"prompt", "quality"}
    assert history.prompt_words([a, b]) == [{"red"}, {"blue"}]


def test_the_ledger_counts_each_run_once_and_refuses_what_would_pass_the_budget():
    ledger = history.Ledger()
    assert ledger.refusal(0.05) is None  # nothing known yet: the first run goes
    assert ledger.add(record(run_id="a" * 22)) and not ledger.add(record(run_id="a" * 22))
    assert ledger.spent == 0.03 and ledger.remaining == 9.5
    assert "0.03 of 0.05" in ledger.refusal(0.05)
    assert ledger.refusal(0.06) is None and ledger.refusal(0) is None and ledger.refusal(None) is None
    assert "1** run" in ledger.summary() and "of a **0.05** budget" in ledger.summary(0.05)
