"""The parameter declaration, the payload built from it, and presets checked against it."""

import json

import pytest

from playground.params import DEFAULTS, PARAMS_BY_NAME, build_payload, check_params
from playground.presets import load_presets


def test_the_declaration_holds_exactly_the_api_s_values_and_defaults():
    assert {name: (p.choices or (p.minimum, p.maximum), p.default) for name, p in PARAMS_BY_NAME.items()} == {
        "size": (("auto", "1024x1024", "1536x1024", "1024x1536"), "auto"),
        "quality": (("auto", "low", "medium", "high"), "auto"),
        "background": (("opaque", "transparent"), "opaque"),
        "output_format": (("png", "jpeg", "webp"), "png"),
        "output_compression": ((1, 100), 100),
        "moderation": (("auto", "low"), "auto"),
    }


def test_the_payload_leaves_out_a_missing_mask_and_keeps_every_parameter():
    assert build_payload("p", ["u"], None, {}) == {"prompt": "p", "image_urls": ["u"], **DEFAULTS}
    assert build_payload("p", ["u"], "m", {"output_compression": 55.0})["output_compression"] == 55
    assert build_payload("p", ["u"], "m", {})["mask"] == "m"


@pytest.mark.parametrize(("values", "problem"), [
    ({"size": "512x512"}, "Size must be one of"),
    ({"output_compression": 0}, "between 1 and 100"),
    ({"output_compression": 101}, "between 1 and 100"),
    ({"output_compression": 50.5}, "whole number"),
    ({"output_compression": "80"}, "whole number"),
    ({"background": "transparent", "output_format": "jpeg"}, "png or webp"),
    ({"seed": 1}, "Unknown parameter"),
])
def test_check_params_names_each_problem(values, problem):
    assert any(problem in p for p in check_params(values))


def test_the_shipped_presets_are_valid_and_labelled_as_in_the_guide():
    assert [p.label for p in load_presets()] == ["E-Commerce", "Concept Art", "Rapid Prototyping", "Inpainting"]


@pytest.mark.parametrize(("data", "problem"), [
    ({"label": "X", "advice": "a", "params": {"size": "huge", "quality": "auto", "background": "opaque",
                                                "output_format": "png", "output_compression": 100}}, "Size"),
    ({"label": "X", "advice": "a", "params": {"size": "auto"}}, "missing"),
    ({"label": "X", "advice": "a", "extra": 1, "params": {}}, "unknown key"),
    ({"label": "X", "advice": "a", "params": {"moderation": "low"}}, "not one of the fields"),
])
def test_a_bad_preset_stops_the_app_with_the_reason(tmp_path, data, problem):
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=problem):
        load_presets(tmp_path)
