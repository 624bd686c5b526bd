"""The run record: what a browser may hand back, and what it keeps."""

from playground.params import DEFAULTS
from playground.run import RunRecord


def test_a_saved_record_from_a_browser_keeps_only_the_plain_request_fields():
    saved = {"prompt": "p", "params": {"size": "bogus", "quality": "high", "evil": 1},
             "image_names": ["a.png", 3], "image_urls": ["https://example.com/a.png"],
             "heatmap_path": "/etc/passwd", "output_path": "/etc/passwd", "notes": ["<script>"], "problems": ["x"]}
    record = RunRecord.from_saved(saved)
    assert record.params == {**DEFAULTS, "quality": "high"}
    assert record.image_names == ["a.png"] and record.image_urls == ["https://example.com/a.png"]
    assert record.heatmap_path is record.output_path is None and record.notes == record.problems == []


def test_anything_else_from_a_browser_gives_an_empty_record():
    for junk in (None, "x", 3, ["a"]):
        assert RunRecord.from_saved(junk).params == DEFAULTS


def test_a_record_never_holds_a_key():
    assert not any("key" in name for name in RunRecord.__dataclass_fields__)
