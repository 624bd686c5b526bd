"""The page's handlers for a batch (variations or a sweep): its estimate, the runs followed together, the grid of
results, and applying a swept value with one click."""

from __future__ import annotations

import html
import json
import time
from types import SimpleNamespace

import gradio as gr

from . import history
from .batch import SWEEPABLE, Cell, run_count, sweep_choices
from .feedback import NO_RUN, PHASES, user_message
from .params import PARAMS_BY_NAME
from .run import RunRecord
from .runner import LiveRun
from .service import Service
from .views import shown_run

TICK_S = 0.2


def cell_label(cell: Cell) -> str:
    if cell.sweep_param:
        return f"{PARAMS_BY_NAME[cell.sweep_param].label} {cell.sweep_value}"
    return f"Variation {cell.variation}"


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1024:.0f} KB" if size_bytes < 1024 * 1024 else f"{size_bytes / 2**20:.1f} MB"


def grid_table(rows: list[tuple[Cell, RunRecord | Exception, int | None]]) -> str:
    """The batch's runs side by side: what set each apart, cost, time, output size; the cheapest marked."""
    costs = {r.cost for _, r, _ in rows if isinstance(r, RunRecord) and r.cost is not None}
    cheapest = min(costs) if len(costs) > 1 else None
    lines = ["| Run | Cost (credits) | Time | Output |", "|---|---|---|---|"]
    for cell, outcome, size_bytes in rows:
        if not isinstance(outcome, RunRecord):
            reason = html.escape(user_message(outcome), quote=False).replace("|", "/")
            lines.append(f"| {cell_label(cell)} | **failed**: {reason} | | |")
            continue
        cost = "not reported" if outcome.cost is None else f"{outcome.cost:g}"
        if outcome.cost is not None and outcome.cost == cheapest:
            cost = f"**{cost}** (cheapest)"
        shape = f"{outcome.output_size[0]}×{outcome.output_size[1]}" if outcome.output_size else ""
        size = f" {outcome.output_format or ''}, {_size(size_bytes)}" if size_bytes is not None else ""
        lines.append(f"| {cell_label(cell)} | {cost} | {outcome.elapsed_s or 0:.1f} s | {shape}{size} |")
    return "\n".join(lines)


def batch_progress_html(lives: list[LiveRun], started: float) -> str:
    snaps = [live.snapshot() for live in lives]
    done = sum(s.done for s in snaps)
    phases: dict[str, int] = {}
    for s in snaps:
        if not s.done:
            phase = "stopping" if any(live.stop.is_set() for live in lives) else (s.status.phase if s.status
                                                                                 else "preparing")
            phases[phase] = phases.get(phase, 0) + 1
    doing = ", ".join(f"{n} {PHASES.get(p, p).lower()}" for p, n in phases.items())
    elapsed = time.time() - started
    return (f"<div class='run-progress'><div class='bar'><div style='width:{done / len(lives) * 100:.0f}%'></div>"
            f"</div><span><b>{done} of {len(lives)} runs done</b>{' · ' + html.escape(doing) if doing else ''} · "
            f"<span class='run-clock' data-elapsed='{elapsed:.1f}'>{elapsed:.0f}</span> s</span></div>")


class BatchPage:
    def __init__(self, service: Service, c: SimpleNamespace, browser):
        self.service = service
        self.c = c
        self.browser = browser  # the page's check of a browser token

    def estimate(self, values: dict) -> dict:
        """Before a batch starts: how many runs, what they are expected to cost, and what Generate will do."""
        c = self.c
        name = values.get(c.sweep_param) or ""
        picked = values.get(c.sweep_values) or []
        runs = run_count(values.get(c.variations), name, picked)
        ledger: history.Ledger = values.get(c.ledger) or history.Ledger()
        note = ledger.estimate(runs) if runs > 1 else ""
        if name and len(picked) < 2:
            note = f"Tick at least two values of {PARAMS_BY_NAME[name].label} to sweep."
        return {c.go: gr.update(value="Generate" if runs == 1 else f"Generate {runs} runs"), c.estimate: note}

    def sweep_values(self, name: str):
        """The values offered for the parameter chosen to sweep; none are ticked yet."""
        if name not in SWEEPABLE:
            return gr.update(choices=[], value=[], visible=False)
        return gr.update(choices=sweep_choices(name), value=[], visible=True,
                         label=f"{PARAMS_BY_NAME[name].label}: values to run, one run each")

    def follow(self, cells: list[Cell], lives: list[LiveRun], values: dict):
        """Follow a batch's runs together; each finished run goes into the grid, the ledger and the history as it
        ends, and a failed run is reported without failing the others."""
        c = self.c
        ledger: history.Ledger = values.get(c.ledger) or history.Ledger()
        started = min(live.started for live in lives)
        outcomes: dict[int, object] = {}
        shown_at = 0.0
        while True:
            new = {i: live.snapshot() for i, live in enumerate(lives) if i not in outcomes and live.snapshot().done}
            entries = []
            for i, snap in new.items():
                outcomes[i] = snap.outcome if snap.error is None else snap.error
                if snap.error is None and ledger.add(snap.outcome):
                    run = self.service.store.get(snap.outcome.run_id)
                    if run is not None:
                        entries.append(history.entry(snap.outcome, run))
            finished = len(outcomes) == len(lives)
            if new or finished or time.time() - shown_at >= 1.0:
                out = {c.progress: batch_progress_html(lives, started), c.stop: gr.update(visible=not finished)}
                if new:
                    out.update(self._grid(cells, outcomes))
                    out[c.ledger] = ledger
                    out[c.ledger_note] = ledger.summary(values.get(c.budget))
                    if entries:
                        out[c.entry] = json.dumps(entries[::-1])
                if finished:
                    yield from self._finish(cells, lives, outcomes, out, started)
                    return
                shown_at = time.time()
                yield out
            time.sleep(TICK_S)

    def _finish(self, cells, lives, outcomes, out: dict, started: float):
        c = self.c
        records = [(i, o) for i, o in sorted(outcomes.items()) if isinstance(o, RunRecord)]
        failures = [(cells[i], o) for i, o in sorted(outcomes.items()) if not isinstance(o, RunRecord)]
        for message in dict.fromkeys(user_message(exc) for _, exc in failures):
            gr.Warning(html.escape(message, quote=False))
        out.update({c.job: NO_RUN, c.resume: gr.update(visible=False), c.stop: gr.update(visible=False)})
        if not records:
            out[c.progress] = ""
            yield out
            raise gr.Error(f"None of the {len(cells)} runs finished; see the messages above.", duration=None)
        first = self.service.store.get(records[0][1].run_id)
        if first is not None:
            out.update(shown_run(c, first, records[0][1], code=self.service.code(first)))
        elapsed = time.time() - started
        out[c.progress] = (f"<div class='run-progress done'><span><b>Done</b>: {len(records)} of {len(cells)} runs "
                           f"in <span class='run-clock done' data-elapsed='{elapsed:.1f}'>{elapsed:.1f}</span> s"
                           "</span></div>")
        yield out

    def _grid(self, cells: list[Cell], outcomes: dict) -> dict:
        """The finished runs in batch order, with a table of what set each apart, its cost, time and output."""
        c = self.c
        items, picks, rows = [], [], []
        for i, cell in enumerate(cells):
            outcome = outcomes.get(i)
            if outcome is None:
                continue
            run = self.service.store.get(outcome.run_id) if isinstance(outcome, RunRecord) else None
            if run is None or not outcome.result_file or not run.has(outcome.result_file):
                rows.append((cell, outcome, None))
                continue
            path = run.path(outcome.result_file)
            rows.append((cell, outcome, path.stat().st_size))
            items.append((str(path), cell_label(cell)))
            picks.append([outcome.run_id, cell.sweep_param or "", cell.sweep_value])
        hint = "Click a result to see it above" + (" and to use its value." if cells[0].sweep_param else ".")
        return {c.batch_results: gr.update(value=items, visible=True),
                c.batch_note: gr.update(value=grid_table(rows) + "\n\n" + hint, visible=True), c.batch_picks: picks}

    def pick(self, values: dict, evt: gr.SelectData):
        """A result clicked in the grid: shown in the result area; a swept value can then be applied."""
        c = self.c
        picks = values.get(c.batch_picks) or []
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(picks):
            raise gr.Error("That result is no longer in the grid.")
        run_id, name, value = picks[index]
        token = self.browser(values.get(c.browser))
        run = self.service.open(run_id, token) if token else None
        saved = run.read_json("record.json") if run else None
        if not saved:
            raise gr.Error("This run is no longer kept on the server.")
        out = shown_run(c, run, RunRecord.from_dict(saved), code=self.service.code(run))
        label = f"Use {PARAMS_BY_NAME[name].label} {value}" if name else ""
        return {**out, c.batch_apply: gr.update(value=label or "Use", visible=bool(name)),
                c.sweep_pick: [name, value] if name else None}

    def apply(self, values: dict):
        """The picked cell's value goes into its control, and the sweep is switched off."""
        c = self.c
        picked = values.get(c.sweep_pick)
        if not picked:
            raise gr.Error("Click a result of the sweep first.")
        name, value = picked
        gr.Info(f"{PARAMS_BY_NAME[name].label} is set to {value}; the sweep is off.")
        return {c.controls[name]: value, c.sweep_param: "", c.sweep_values: gr.update(value=[], visible=False),
                c.batch_apply: gr.update(visible=False)}
