"""Presets from Segmind's usage guide, kept as JSON data in presets/ and checked against the parameters at start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .params import PARAMS_BY_NAME, check_params

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
PRESET_FIELDS = ("size", "quality", "background", "output_format", "output_compression")


@dataclass(frozen=True)
class Preset:
    label: str
    params: dict
    advice: str


def load_presets(folder: Path = PRESET_DIR) -> tuple[Preset, ...]:
    """Every preset in `folder`, in file-name order; a bad one stops the app with the reason."""
    presets = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"label", "params", "advice"}
        params = data.get("params", {})
        problems = [f"unknown key {k!r}" for k in sorted(unknown)]
        problems += check_params(params)
        problems += [f"{PARAMS_BY_NAME[f].label} is missing" for f in PRESET_FIELDS if f not in params]
        problems += [f"{name!r} is not one of the fields a preset sets" for name in params if name not in PRESET_FIELDS]
        if not data.get("label") or not data.get("advice"):
            problems.append("label and advice are required")
        if problems:
            raise ValueError(f"Preset {path.name} is invalid: {'; '.join(problems)}")
        presets.append(Preset(data["label"], dict(params), data["advice"]))
    if not presets:
        raise ValueError(f"No presets found in {folder.name}/.")
    return tuple(presets)
