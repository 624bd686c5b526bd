"""Several runs from one set of inputs: variations (the same request again) or a sweep over one parameter's values."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .inputs import EditInputs, InputError
from .params import PARAMS_BY_NAME, check_params

MAX_VARIATIONS = 4
MAX_RUNS = 8
SWEEPABLE = ("size", "quality", "output_format", "output_compression", "moderation")
COMPRESSION_STEPS = (25, 50, 75, 90, 100)  # what the page offers; /batch takes any allowed value


@dataclass(frozen=True)
class Cell:
    """One run of a batch: its inputs and what sets it apart from the others."""

    inputs: EditInputs
    variation: int  # from 1
    sweep_param: str | None = None
    sweep_value: str | int | None = None

    @property
    def label(self) -> str:
        return str(self.sweep_value) if self.sweep_value is not None else f"variation {self.variation}"

    def about(self) -> dict:
        """What sets this run apart, as kept with the run."""
        return {"variation": self.variation, "sweep_param": self.sweep_param, "sweep_value": self.sweep_value}

    @classmethod
    def kept(cls, about: object) -> Cell:
        """The cell of a run started earlier, from what was kept with it (without its inputs)."""
        about = about if isinstance(about, dict) else {}
        param = about.get("sweep_param") if about.get("sweep_param") in SWEEPABLE else None
        variation = about.get("variation") if isinstance(about.get("variation"), int) else 1
        return cls(None, variation, param, about.get("sweep_value") if param else None)


def sweep_choices(name: str) -> list[str]:
    """The values the page offers for a swept parameter."""
    if not name:
        return []
    param = PARAMS_BY_NAME[name]
    return list(param.choices) if param.choices else [str(v) for v in COMPRESSION_STEPS]


def _value(name: str, raw: object) -> str | int:
    param = PARAMS_BY_NAME[name]
    if param.choices:
        value = str(raw).strip()
    else:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise InputError(f"Sweep values for {param.label} must be whole numbers (got {raw!r}).") from None
    if problem := param.check(value):
        raise InputError(f"Sweep: {problem}")
    return value


def build_batch(inputs: EditInputs, variations: object = 1, sweep_param: object = "",
                sweep_values: object = None) -> list[Cell]:
    """The runs to start, in order: every sweep value (or the settings as they are) times the variations. Every
    cell's settings are checked here, so a batch that would be refused is refused whole, before anything is sent."""
    if isinstance(variations, bool) or not isinstance(variations, (int, float)) or variations != int(variations) \
            or not 1 <= variations <= MAX_VARIATIONS:
        raise InputError(f"Variations must be a whole number from 1 to {MAX_VARIATIONS} (got {variations!r}).")
    variations = int(variations)
    name = (sweep_param or "").strip() if isinstance(sweep_param, str) else sweep_param
    if not name:
        return [Cell(inputs, v) for v in range(1, variations + 1)]
    if name not in SWEEPABLE:
        raise InputError(f"A sweep goes over one of {', '.join(SWEEPABLE)} (got {name!r}).")
    label = PARAMS_BY_NAME[name].label
    raw = [sweep_values] if isinstance(sweep_values, (str, int)) else list(sweep_values or [])
    values = list(dict.fromkeys(_value(name, v) for v in raw))
    if len(values) < 2:
        raise InputError(f"Choose at least two values of {label} to sweep.")
    if len(values) * variations > MAX_RUNS:
        raise InputError(f"A batch runs at most {MAX_RUNS} edits: {len(values)} values × {variations} variations "
                         f"is {len(values) * variations}.")
    if name == "output_compression" and inputs.params.get("output_format") == "png":
        raise InputError("Output compression applies to jpeg and webp only; choose one of them as Output format "
                         "before sweeping it.")
    cells = []
    for value in values:
        params = {**inputs.params, name: value}
        if problems := check_params(params):
            raise InputError(f"Sweep value {value} cannot run: {' '.join(problems)}")
        cells += [Cell(replace(inputs, params=params), v, name, value) for v in range(1, variations + 1)]
    return cells


def run_count(variations: object, sweep_param: object, sweep_values: object) -> int:
    """How many runs the page's choices ask for (before they are checked: for the budget and the estimate)."""
    try:
        count = max(1, int(variations or 1))
    except (TypeError, ValueError):
        count = 1
    if sweep_param and isinstance(sweep_values, (list, tuple)) and sweep_values:
        count *= len(set(map(str, sweep_values)))
    return count
