"""The API's parameters, declared once: the UI, the payload, presets and the fake server are built from here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MODEL = "gpt-image-1-edit-mini"
PROMPT_MAX_CHARS = 32000
MAX_IMAGES = 16


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    default: str | int
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: object) -> str | None:
        """The reason `value` is not allowed for this parameter, or None when it is."""
        if self.choices:
            if value not in self.choices:
                return f"{self.label} must be one of {', '.join(self.choices)} (got {value!r})."
            return None
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value != int(value)):
            return f"{self.label} must be a whole number (got {value!r})."
        if not self.minimum <= value <= self.maximum:
            return f"{self.label} must be between {self.minimum} and {self.maximum} (got {value!r})."
        return None

    def coerce(self, value: object) -> str | int:
        """The wire form: sliders hand over floats, the API wants integers."""
        if self.choices or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return value
        return int(value) if value == int(value) else value


PARAMS: tuple[Param, ...] = (
    Param("size", "Size", "auto", "Output size in pixels; auto lets the model choose from the image.",
          choices=("auto", "1024x1024", "1536x1024", "1024x1536")),
    Param("quality", "Quality", "auto", "Higher quality costs more and takes longer.",
          choices=("auto", "low", "medium", "high")),
    Param("background", "Background", "opaque", "Transparent needs png or webp output.",
          choices=("opaque", "transparent")),
    Param("output_format", "Output format", "png", "The file format of the edited image.",
          choices=("png", "jpeg", "webp")),
    Param("output_compression", "Output compression", 100, "1 to 100; 100 means no compression (jpeg and webp).",
          minimum=1, maximum=100),
    Param("moderation", "Moderation", "auto", "low relaxes content filtering when results feel over-restrained.",
          choices=("auto", "low")),
)
PARAMS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
DEFAULTS: dict[str, str | int] = {p.name: p.default for p in PARAMS}


def check_params(values: Mapping[str, object]) -> list[str]:
    """Every problem with these parameter values: unknown names, values outside the allowed set, bad pairs."""
    problems = [f"Unknown parameter {name!r}." for name in values if name not in PARAMS_BY_NAME]
    problems += [msg for name, value in values.items()
                 if name in PARAMS_BY_NAME and (msg := PARAMS_BY_NAME[name].check(value))]
    if values.get("background") == "transparent" and values.get("output_format") == "jpeg":
        problems.append("A transparent background needs png or webp output; jpeg has no transparency.")
    return problems


def build_payload(prompt: str, image_urls: list[str], mask_url: str | None,
                  values: Mapping[str, object]) -> dict:
    """The JSON body Segmind expects; the mask is left out when there is none."""
    payload: dict = {"prompt": prompt, "image_urls": list(image_urls)}
    if mask_url is not None:
        payload["mask"] = mask_url
    for p in PARAMS:
        payload[p.name] = p.coerce(values.get(p.name, p.default))
    return payload


def auto_size(image_size: tuple[int, int]) -> str:
    """The size that `size=auto` gives for an image of this shape: the fixed size nearest its aspect ratio
    (so a 4:3 photo comes back 3:2, not 4:3)."""
    aspect = image_size[0] / image_size[1]
    sizes = [c for c in PARAMS_BY_NAME["size"].choices if c != "auto"]
    return min(sizes, key=lambda c: abs(math.log(aspect * int(c.split("x")[1]) / int(c.split("x")[0]))))
