"""How one run is shown: the result area (result, before/after, facts, actions), settings labels, compare captions.

Shared by the run handlers (the run that just finished) and the history (a run picked from it).
"""

from __future__ import annotations

import html
import io
import time
from types import SimpleNamespace

import gradio as gr
from PIL import Image

from . import history
from .params import PARAMS, PARAMS_BY_NAME
from .run import RunRecord
from .store import Run


def settings_label(values: dict) -> str:
    return "Settings: " + " · ".join(f"{p.name.replace('output_', '')} {values.get(p.name)}" for p in PARAMS)


def result_markdown(record: RunRecord) -> str:
    facts = []
    if record.output_format and record.output_size:
        facts.append(f"{record.output_format} {record.output_size[0]}×{record.output_size[1]}")
    if record.params.get("quality"):
        facts.append(f"quality {record.params['quality']}")
    if record.cost is not None:
        facts.append(f"cost {record.cost:g} credits")
    if record.remaining_credits is not None:
        facts.append(f"remaining credits **{record.remaining_credits:g}**")
    if record.request_id:
        facts.append(f"request `{record.request_id}`")
    lines = [" · ".join(facts)] if facts else []
    if record.changed_outside_pct is not None:
        lines.append(f"The model changed **{record.changed_outside_pct:.1f}%** of the area outside the mask"
                     + ("; the original pixels were pasted back there." if record.pasted_back
                        else " (see the heat map; tick *Keep everything outside the mask* to paste it back)."))
    lines += [f"**Check:** {p}" for p in record.problems]
    lines += [f"Note: {n}" for n in record.notes]
    return "\n\n".join(lines)


def _code(value) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def entry_markdown(e: dict, kept: bool) -> str:
    """A history entry's details: what was asked, what it cost, what the checks said."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"])) if e.get("at") else "unknown time"
    lines = [f"**From the history** · {when}", f"**Prompt:** {html.escape(e.get('prompt') or '', quote=False)}"]
    params = e.get("params") or {}
    lines.append(" · ".join(f"{PARAMS_BY_NAME[k].label}: {_code(v)}" for k, v in params.items()))
    facts = []
    if e.get("mask_share") is not None:
        facts.append(f"mask {e['mask_share']:.1f}% of the image")
    if e.get("cost") is not None:
        facts.append(f"cost {e['cost']:g} credits")
    if e.get("remaining_credits") is not None:
        facts.append(f"remaining credits {e['remaining_credits']:g}")
    if e.get("elapsed_s") is not None:
        facts.append(f"{e['elapsed_s']:.1f} s")
    if e.get("output_format") and e.get("output_size"):
        facts.append(f"{e['output_format']} {e['output_size'][0]}×{e['output_size'][1]}")
    if e.get("request_id"):
        facts.append(f"request {_code(e['request_id'])}")
    if facts:
        lines.append(" · ".join(facts))
    lines += [f"**Check:** {html.escape(c, quote=False)}" for c in e.get("checks") or []]
    if not kept:
        lines.append("*The full-size files of this run are no longer kept on the server (they are kept for a day "
                     "or more, for the browser that made the run): the thumbnails are shown, and it cannot be "
                     "downloaded or edited further.*")
    return "\n\n".join(lines)


def open_image(run: Run, name: str | None) -> Image.Image | None:
    data = run.read(name) if name else None
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def before_after(first: Image.Image | None, result: Image.Image | None):
    """The first image against the result, at the result's size, so that the slider lines them up."""
    if first is None or result is None:
        return None
    if first.size != result.size:
        first = first.resize(result.size, Image.Resampling.BILINEAR)
    return (first.convert("RGBA"), result.convert("RGBA"))


def code_views(c: SimpleNamespace, code: dict[str, str] | None) -> dict:
    code = code or {}
    return {c.snippet: gr.update(visible=bool(code)), c.bundle: gr.update(visible=bool(code)),
            c.bundle_file: gr.update(value=None, visible=False),
            **{c.snippets[name]: code.get(name, "") for name in c.snippets}}


def shown_run(c: SimpleNamespace, run: Run, record: RunRecord, entry: dict | None = None,
              code: dict[str, str] | None = None) -> dict:
    """The result area for a run whose files the server still has (`entry`: it was picked from the history)."""
    result = str(run.path(record.result_file)) if record.result_file and run.has(record.result_file) else None
    heatmap = str(run.path(record.heatmap_file)) if record.heatmap_file and run.has(record.heatmap_file) else None
    first = run.find("input-1")
    pair = before_after(open_image(run, first.name) if first else None, open_image(run, record.result_file))
    info = entry_markdown(entry, kept=True) if entry else result_markdown(record)
    return {c.result: result, c.before_after: pair, c.download: gr.update(value=result, visible=bool(result)),
            c.reuse: gr.update(visible=bool(result)), c.reuse_settings: gr.update(visible=entry is not None),
            c.delete: gr.update(visible=entry is not None), c.info: info,
            c.heatmap: gr.update(value=heatmap, visible=bool(heatmap)), c.shown: record.run_id, c.picked: entry,
            **code_views(c, code)}


def shown_entry(c: SimpleNamespace, entry: dict) -> dict:
    """The result area for a history entry whose files are gone: its thumbnails and facts."""
    first, result = (history.decode_thumbnail(entry.get(k)) for k in ("thumb_first", "thumb_result"))
    return {c.result: result, c.before_after: before_after(first, result), c.download: gr.update(visible=False),
            c.reuse: gr.update(visible=False), c.reuse_settings: gr.update(visible=True),
            c.delete: gr.update(visible=True), c.info: entry_markdown(entry, kept=False),
            c.heatmap: gr.update(value=None, visible=False), c.shown: "", c.picked: entry, **code_views(c, None)}


def nothing_shown(c: SimpleNamespace) -> dict:
    return {c.result: None, c.before_after: None, c.download: gr.update(visible=False),
            c.reuse: gr.update(visible=False), c.reuse_settings: gr.update(visible=False),
            c.delete: gr.update(visible=False), c.info: "", c.heatmap: gr.update(value=None, visible=False),
            c.shown: "", c.picked: None, **code_views(c, None)}


def compare_caption(index: int, e: dict, differ: set[str], words: set[str]) -> str:
    """One compared run: its prompt and settings, with what differs from the others marked."""
    def mark(text: str, on: bool) -> str:
        return f"<mark>{text}</mark>" if on else text

    prompt = " ".join(mark(html.escape(w), w.lower().strip(".,;:!?") in words)
                      for w in (e.get("prompt") or "").split())
    params = e.get("params") or {}
    settings = " · ".join(mark(f"{html.escape(PARAMS_BY_NAME[k].label)}: {html.escape(str(v))}", k in differ)
                          for k, v in params.items())
    facts = [f"{e['cost']:g} credits" if e.get("cost") is not None else "cost unknown",
             f"{e['elapsed_s']:.1f} s" if e.get("elapsed_s") is not None else "time unknown"]
    return (f"<div><b>Run {index}</b> · {' · '.join(facts)}</div><div>{prompt}</div>"
            f"<div class='compare-settings'>{settings}</div>")
