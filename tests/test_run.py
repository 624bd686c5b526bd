"""The run record: what it holds and what it never holds."""

from playground.run import RunRecord


def test_a_record_never_holds_a_key_or_a_path():
    fields = RunRecord.__dataclass_fields__
    assert not any("key" in name or name.endswith("_path") for name in fields)


def test_a_record_survives_its_json_form():
    record = RunRecord(run_id="r" * 22, prompt="p", params={"size": "auto"}, image_names=["a.png"], image_urls=[],
                       mask_share=12.5, mode="queue", backend="segmind", started_at=1.0, output_size=(10, 20))
    data = record.to_dict()
    data["output_size"] = list(data["output_size"])  # as JSON gives it back
    assert RunRecord.from_dict({**data, "unknown": 1}) == record
