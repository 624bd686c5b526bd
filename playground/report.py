"""One-file HTML reports of runs that open offline: every image embedded, the styles inline, no request anywhere.

`report_html` presents one run (before/after slider, mask, parameters, cost, time, checks); `comparison_html` puts
2–4 runs side by side with the parameters and prompt words that differ highlighted.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from datetime import datetime, timezone

from PIL import Image

from . import __version__
from . import mask as masks
from .params import PARAMS
from .run import RunRecord
from .store import Run

MAX_SIDE = 1600
COMPARE_SIDE = 800
WEBP_QUALITY = 80  # a report is for looking at; the bundle keeps the full files

CSS = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.5em;margin:0 0 .2em}
h2{font-size:1.1em;margin:1.6em 0 .5em}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f3;padding:1px 4px;border-radius:4px}
.sub{color:#59636e;margin:0}
.prompt{white-space:pre-wrap;background:#fff;border-left:4px solid #8250df;padding:12px 16px;margin:0;
 border-radius:0 6px 6px 0}
.slider{position:relative;width:100%;--pos:50%;border-radius:8px;overflow:hidden;background:#ddd;user-select:none}
.slider img{position:absolute;inset:0;width:100%;height:100%;object-fit:fill;display:block}
.slider .before{clip-path:inset(0 calc(100% - var(--pos)) 0 0)}
.slider::after{content:"";position:absolute;top:0;bottom:0;left:var(--pos);border-left:2px solid #fff;
 box-shadow:0 0 4px #0008;pointer-events:none}
.slider input{position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0;cursor:ew-resize}
.slider .tag{position:absolute;top:8px;padding:2px 8px;border-radius:4px;background:#000a;color:#fff;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:16px}
figure{margin:0;background:#fff;border-radius:8px;padding:8px}
figure img{width:100%;height:auto;display:block;border-radius:4px}
figcaption{color:#59636e;font-size:13px;margin-top:6px}
table{border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;width:100%}
th,td{text-align:left;padding:6px 12px;border-bottom:1px solid #e6e8eb;vertical-align:top}
th{font-weight:600;color:#424a53;width:14em}
.problem{color:#9a3412}
.differs td{background:#fff9db}
mark{background:#ffc078;border-radius:3px;padding:0 2px}
.words{white-space:pre-wrap}
.differs th::after{content:" \\2260";color:#b45309}
footer{color:#59636e;font-size:13px;margin-top:2em}
"""
SLIDER_INPUT = ("<input type='range' min='0' max='100' value='50' aria-label='Before and after' "
                "oninput=\"this.parentNode.style.setProperty('--pos', this.value + '%')\">")


def _open(run: Run, name: str | None) -> Image.Image | None:
    data = run.read(name) if name else None
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError):
        return None


def embed(image: Image.Image, max_side: int = MAX_SIDE) -> str:
    """`image` as a WebP data URI, at most `max_side` pixels on its long side (WebP keeps transparency)."""
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=WEBP_QUALITY)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _record(run: Run) -> RunRecord:
    saved = run.read_json("record.json")
    if saved is None:
        raise ValueError("This run has no record yet.")
    return RunRecord.from_dict(saved)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, unit: str = "") -> str:
    return "" if value is None else f"{value:g}{unit}"


def facts(record: RunRecord) -> list[tuple[str, str]]:
    """The run's outcome as (label, text) rows, in the order a reader asks for them."""
    size = f" {record.output_size[0]}×{record.output_size[1]}" if record.output_size else ""
    rows = [("Cost", _number(record.cost, " credits")),
            ("Remaining credits", _number(record.remaining_credits)),
            ("Time", _number(record.elapsed_s, " s")),
            ("Generation time", _number(record.generation_time_s, " s")),
            ("Request id", record.request_id or ""),
            ("Started", _when(record.started_at)),
            ("Output", f"{record.output_format or ''}{size}"),
            ("API mode", f"{record.mode} ({record.backend})")]
    if record.mask_share is not None:
        rows.append(("Mask", f"{record.mask_share:g}% of the first image marked for editing"))
    if record.changed_outside_pct is not None:
        rows.append(("Changed outside the mask", f"{record.changed_outside_pct:g}%"
                     + ("; the original was pasted back there" if record.pasted_back else "")))
    return [(label, text) for label, text in rows if text.strip()]


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            # No request may leave the file: this policy blocks any that a future edit might add.
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>{body}"
            f"<footer>Made with the GPT Image 1 Edit Mini playground {html.escape(__version__)}.</footer>"
            f"</main></body></html>\n")


def _slider(before: Image.Image, after: Image.Image) -> str:
    # Both are drawn in the result's frame, stretched like the heat map, so that the same pixel lies under the line.
    return (f"<div class='slider' style='aspect-ratio:{after.width}/{after.height};max-width:{after.width}px'>"
            f"<img src='{embed(after)}' alt='After'><img class='before' src='{embed(before)}' alt='Before'>"
            f"<span class='tag' style='left:8px'>Before</span><span class='tag' style='right:8px'>After</span>"
            f"{SLIDER_INPUT}</div>")


def _figure(image: Image.Image, caption: str) -> str:
    return f"<figure><img src='{embed(image)}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}" \
           f"</figcaption></figure>"


def report_html(run: Run) -> str:
    """The run as one self-contained HTML page (no network needed to open it)."""
    record = _record(run)
    first = _open(run, run.find("input-1").name if run.find("input-1") else None)
    mask, result = _open(run, "mask.png"), _open(run, record.result_file)
    heatmap = _open(run, record.heatmap_file)
    model_output = _open(run, record.model_output_file)

    parts = [f"<h1>GPT Image 1 Edit Mini · run <code>{html.escape(record.run_id)}</code></h1>",
             f"<p class='sub'>{html.escape(_when(record.started_at))}</p>",
             "<h2>Prompt</h2>", f"<blockquote class='prompt'>{html.escape(record.prompt)}</blockquote>"]
    if first is not None and result is not None:
        parts += ["<h2>Before and after</h2>", _slider(first, result)]
    figures = []
    if result is not None and first is None:
        figures.append(_figure(result, "Result"))
    if first is not None and mask is not None:
        figures.append(_figure(masks.preview(first, mask), "Mask over the first image (magenta = edit)"))
    if heatmap is not None:
        figures.append(_figure(heatmap, "Changes outside the mask (bright = changed)"))
    if model_output is not None:
        figures.append(_figure(model_output, "The model's own output, before the original was pasted back"))
    if figures:
        parts.append(f"<h2>Images</h2><div class='grid'>{''.join(figures)}</div>")
    sent = [*record.image_names, *record.image_urls]
    params = [(p.label, str(record.params.get(p.name, ""))) for p in PARAMS]
    parts += ["<h2>Parameters</h2>", _table([*params, ("Images", ", ".join(sent))])]
    parts += ["<h2>Run</h2>", _table(facts(record))]
    checks = [f"<li class='problem'>{html.escape(p)}</li>" for p in record.problems] or [
        "<li>The output matches what was asked for (format, size, transparency).</li>"]
    parts += ["<h2>Output checks</h2>", f"<ul>{''.join(checks)}</ul>"]
    if record.notes:
        parts += ["<h2>Notes</h2>", f"<ul>{''.join(f'<li>{html.escape(n)}</li>' for n in record.notes)}</ul>"]
    return _page(f"Edit run {record.run_id}", "".join(parts))


WORD = re.compile(r"(\w+)")


def _marked(prompt: str, shared: set[str]) -> str:
    """The prompt with the words that not every compared prompt has in <mark>."""
    return "".join(f"<mark>{html.escape(t)}</mark>" if WORD.fullmatch(t) and t.lower() not in shared
                   else html.escape(t) for t in WORD.split(prompt))


def comparison_html(runs: Sequence[Run]) -> str:
    """2–4 runs side by side: their results, then one row per parameter and fact, rows that differ highlighted."""
    if not 2 <= len(runs) <= 4:
        raise ValueError(f"Compare 2 to 4 runs (got {len(runs)}).")
    records = [_record(run) for run in runs]
    results = [_open(run, r.result_file) for run, r in zip(runs, records, strict=True)]
    shared = set.intersection(*({w.lower() for w in WORD.findall(r.prompt)} for r in records))

    head = "".join(f"<th>Run {i} <code>{html.escape(r.run_id[:8])}</code></th>" for i, r in enumerate(records, 1))
    pictures = "".join(f"<td><img src='{embed(img, COMPARE_SIDE)}' alt='Result of run {i}' style='width:100%'></td>"
                       if img is not None else "<td>No result</td>" for i, img in enumerate(results, 1))
    rows = [("Prompt", [_marked(r.prompt, shared) for r in records],
             len({r.prompt for r in records}) > 1)]
    for p in PARAMS:
        values = [html.escape(str(r.params.get(p.name, ""))) for r in records]
        rows.append((p.label, values, len(set(values)) > 1))
    labels = list(dict.fromkeys(label for r in records for label, _ in facts(r)))
    for label in labels:
        values = [html.escape(dict(facts(r)).get(label, "")) for r in records]
        differs = len(set(values)) > 1 and label not in ("Request id", "Started", "Remaining credits")
        rows.append((label, values, differs))
    body_rows = "".join(
        f"<tr{' class=differs' if differs else ''}><th>{html.escape(label)}</th>"
        + "".join(f"<td class='words'>{v}</td>" for v in values) + "</tr>" for label, values, differs in rows)
    table = (f"<table class='compare'><tr><th></th>{head}</tr><tr><th>Result</th>{pictures}</tr>"
             f"{body_rows}</table>")
    intro = (f"<h1>GPT Image 1 Edit Mini · {len(records)} runs compared</h1>"
             "<p class='sub'>Highlighted: the parameters and prompt words that differ between the runs.</p>")
    return _page(f"{len(records)} edit runs compared", intro + "<h2>Side by side</h2>" + table)
