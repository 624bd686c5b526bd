"""The history's handlers: show a picked run, compare runs, reuse a run's settings, delete an entry.

Entries come back from the browser, so each is cleaned (`history.clean`) and its files are reached only through
the run store, for the browser that owns the run; when they are gone, the entry's thumbnails stand in.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
from PIL import Image

from . import history
from .params import PARAMS
from .report import comparison_html
from .run import RunRecord
from .service import Service
from .store import Run
from .views import compare_caption, nothing_shown, open_image, shown_entry, shown_run


class HistoryPage:
    def __init__(self, service: Service, c: SimpleNamespace, browser):
        self.service = service
        self.c = c
        self.browser = browser  # the page's check of a browser token

    def _kept(self, entry: dict, token) -> tuple[Run, RunRecord] | None:
        """The run's folder and record, if the server still has them for this browser."""
        token = self.browser(token)
        run = self.service.open(entry["run_id"], token) if token else None
        saved = run.read_json("record.json") if run else None
        if not saved or not saved.get("result_file") or not run.has(saved["result_file"]):
            return None
        return run, RunRecord.from_dict(saved)

    def pick(self, values: dict, evt: gr.EventData):
        entry = history.clean(evt._data.get("entry") if isinstance(evt._data, dict) else None)
        if entry is None:
            raise gr.Error("That history entry cannot be read; delete it or clear the history.")
        kept = self._kept(entry, values.get(self.c.browser))
        if kept is None:
            return shown_entry(self.c, entry)
        return shown_run(self.c, *kept, entry=entry, code=self.service.code(kept[0]))

    def compare(self, values: dict, evt: gr.EventData):
        c = self.c
        raw = evt._data.get("entries") if isinstance(evt._data, dict) else None
        picked = [e for e in (history.clean(x) for x in (raw or [])[:4]) if e is not None]
        if len(picked) < 2:
            raise gr.Error("Tick two to four runs in the history to compare them.")
        differ = history.differences(picked)
        words = history.prompt_words(picked)
        note = ("These runs differ in: **" + ", ".join(sorted(differ)) + "** (marked below)." if differ
                else "These runs have the same prompt and settings; only the model's randomness differs.")
        out = {c.compare: gr.update(visible=True), c.compare_note: note}
        kept_runs = []
        for i, (slot, image, caption) in enumerate(c.compare_slots):
            if i >= len(picked):
                out.update({slot: gr.update(visible=False), image: None, caption: ""})
                continue
            e = picked[i]
            kept = self._kept(e, values.get(c.browser))
            if kept:
                kept_runs.append(kept[0])
            result = open_image(kept[0], kept[1].result_file) if kept else history.decode_thumbnail(e["thumb_result"])
            out.update({slot: gr.update(visible=True), image: result,
                        caption: compare_caption(i + 1, e, differ, words[i])})
        out[c.compare_download] = gr.update(value=comparison_file(kept_runs), visible=len(kept_runs) >= 2)
        return out

    def reuse_settings(self, values: dict):
        """Prompt and settings back into the controls; the images and mask too while the server has them."""
        c = self.c
        entry = values.get(c.picked)
        if not entry:
            raise gr.Error("Pick a run in the history first.")
        params = entry.get("params") or {}
        out = {c.prompt: entry.get("prompt") or ""}
        for p in PARAMS:
            value = params.get(p.name)
            out[c.controls[p.name]] = value if value is not None and p.check(value) is None else gr.skip()
        kept = self._kept(entry, values.get(c.browser))
        run = kept[0] if kept else None
        if run is None:
            gr.Info("The prompt and settings were restored; this run's images are no longer kept on the server, "
                    "so upload them again.")
            return {**out, c.editor: gr.skip(), c.refs: gr.skip(), c.image_urls: gr.skip()}
        out[c.editor] = editor_value(run)
        refs, n = [], 2
        while (path := run.find(f"input-{n}")) is not None:
            refs.append(str(path))
            n += 1
        out[c.refs] = refs
        out[c.image_urls] = "\n".join(kept[1].image_urls)
        return out

    def delete(self, values: dict):
        c = self.c
        entry = values.get(c.picked)
        if not entry:
            return {c.history: gr.skip()}
        gr.Info("Deleted from the history.")
        return {c.history: history.remove(values.get(c.history), entry["run_id"]), **nothing_shown(c)}


def comparison_file(runs: list[Run]) -> str | None:
    """One offline HTML page with the runs side by side (only runs whose files the server still has)."""
    if len(runs) < 2:
        return None
    folder = Path(tempfile.mkdtemp(prefix="comparison-"))
    path = folder / "segmind-edit-comparison.html"
    path.write_text(comparison_html(runs), encoding="utf-8")
    return str(path)


def editor_value(run: Run) -> dict:
    """The run's first image with its mask painted back on, in the editor's own form (magenta = edit)."""
    original = run.has("original.png")
    first = open_image(run, "original.png" if original else run.find("input-1").name)
    mask = open_image(run, "mask-original.png" if original else "mask.png")
    layers = []
    if first is not None and mask is not None:
        edit = np.asarray(mask.convert("RGBA").resize(first.size, Image.Resampling.NEAREST))[..., 3] < 128
        layer = np.zeros((first.height, first.width, 4), np.uint8)
        layer[edit] = (255, 0, 255, 255)
        layers = [Image.fromarray(layer, "RGBA")]
    return {"background": first, "layers": layers, "composite": None}
