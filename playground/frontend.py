"""What runs in the browser: the page's CSS, its clock, and the small scripts that keep state there.

The history and the draft live in the browser (encrypted `BrowserState`), so appending to the history, drawing
it and saving the draft are done here, without sending the history to the server on every run.
"""

from __future__ import annotations

import html
import json

from .history import LIMIT
from .params import PARAMS

CSS = """
.run-progress .bar {height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden}
.run-progress .bar > div {height: 100%; background: var(--color-accent); transition: width .8s}
.run-progress span {display: block; margin-top: .4em}
.run-progress span span {display: inline; margin: 0}
#go {min-height: 48px}
.out-of-sight {display: none !important}
#editor_note:not(:has(p)) {display: none}
#editor_note p {margin: .3em 0 0; font-size: .9em; color: var(--body-text-color-subdued)}
#title h1 {margin: 0 0 .1em; font-size: 1.5em}
#title p {margin: 0}
#ledger {align-self: center}
.history-bar {display: flex; gap: .6em; align-items: center; flex-wrap: wrap; margin-bottom: .5em}
.history-grid {display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: .6em}
.hcard {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .4em; font-size: .85em;
        background: var(--background-fill-secondary)}
.hcard.picked {outline: 2px solid var(--color-accent)}
.hcard .pick {display: flex; gap: 4px; width: 100%; padding: 0; border: 0; background: none; cursor: pointer}
.hcard .pick img {width: 50%; height: 96px; object-fit: contain; background: var(--neutral-100); border-radius: 4px}
.hcard .gone {width: 50%; height: 96px; display: flex; align-items: center; justify-content: center;
              background: var(--neutral-100); border-radius: 4px; color: var(--body-text-color-subdued)}
.hcard .prompt {display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
                margin: .3em 0 .1em}
.hcard .facts {color: var(--body-text-color-subdued)}
.compare-caption mark {background: #ffe58a; color: #000; padding: 0 .15em; border-radius: 3px}
@media (max-width: 720px) {
  /* Phones: image, prompt, Generate, result, then the rest (the key and settings after the result). */
  #workspace {flex-direction: column}
  #workspace > #left, #workspace > #right {display: contents}
  #workspace .after-result {order: 1}
}
"""

# The wait is counted in the browser from the click, so it includes sending the images to the server.
CLOCK_JS = """<script>
function tickRunClocks() {
  for (const el of document.querySelectorAll('.run-clock')) {
    if (!el.dataset.seen) el.dataset.seen = Date.now();
    if (el.dataset.frozen) continue;
    const seen = Number(el.dataset.seen), click = window.__editClick || 0;
    const t0 = click && click <= seen ? click : seen - 1000 * Number(el.dataset.elapsed || 0);
    const done = el.classList.contains('done');
    const text = (((done ? seen : Date.now()) - t0) / 1000).toFixed(done ? 1 : 0);
    if (el.textContent !== text) el.textContent = text;  // unchanged text: no mutation, so no loop
    if (done) el.dataset.frozen = '1';
  }
}
setInterval(tickRunClocks, 200);
new MutationObserver(tickRunClocks).observe(document.documentElement, {childList: true, subtree: true});
</script>"""

START_JS = """() => { window.__editClick = Date.now();
  return "<div class='run-progress'><div class='bar'><div style='width:0%'></div></div><span><b>Sending the " +
         "images to the server</b> · <span class='run-clock' data-elapsed='0'>0</span> s</span></div>"; }"""

# Finished runs' entries (JSON from the server: one, or a batch's list, newest first) go first; an older copy of
# the same run is replaced.
APPEND_JS = """(entry, history) => {
  let list = []; try { list = JSON.parse(history || '[]'); } catch (e) {}
  let items; try { items = JSON.parse(entry || 'null'); } catch (e) {}
  items = (Array.isArray(items) ? items : [items]).filter(item => item && item.run_id);
  if (!items.length) return history || '[]';
  const ids = new Set(items.map(item => item.run_id));
  list = [...items, ...list.filter(e => !ids.has(e.run_id))].slice(0, __LIMIT__);
  return JSON.stringify(list);
}""".replace("__LIMIT__", str(LIMIT))

CLEAR_JS = """(history) => confirm('Clear the history kept in this browser? Results stay downloadable only ' +
  'while you still have their links.') ? '[]' : history"""

# The zip is built on the click; once its link is on the page, follow it, so that one click downloads it.
DOWNLOAD_BUNDLE_JS = """() => { let tries = 0; const follow = () => {
  const link = document.querySelector('#bundle_file a[download]');
  if (link) link.click(); else if (tries++ < 20) setTimeout(follow, 100); }; follow(); }"""



def forget_painted_note(hint: str) -> str:
    """A note about what was painted is stale after the next stroke; notes about an uploaded mask stay. This
    listens in the page itself: a change listener on the editor would make Gradio send its images on every
    stroke, and delays the editor's value after an upload."""
    return """<script>
document.addEventListener('pointerup', (ev) => {
  if (!ev.target.closest || !ev.target.closest('#editor canvas')) return;
  const note = document.querySelector('#mask_note .prose, #mask_note');
  if (note && /[Nn]othing (is|was) painted|Painted:/.test(note.textContent)) note.innerHTML = '<p>' + HINT + '</p>';
}, true);
</script>""".replace("HINT", json.dumps(html.escape(hint)))

# Said by the server when it scales a first reference image and by the page when it scales a dropped one.
FIT_NOTE = ("{what} was scaled from {width}×{height} to {fitted_width}×{fitted_height}, the size that is sent "
            "({max_side} px at most); paint the mask on it as it is.")


def fit_in_browser(max_side: int) -> str:
    """A page-load script: an image dropped, chosen or pasted into the editor that is larger than what is sent is
    scaled in the browser before the editor takes it, and the note under the editor says so (an image that fits
    empties it). The editor sends its background, layer and composite at its own size on every Generate and nothing
    when an image is dropped in, so this is what makes each Generate cheaper. The note goes through a Textbox of
    its own, not an event on the editor: any listener on the editor makes Gradio send its images (8 MB for a photo
    at 2048 px)."""
    note = FIT_NOTE.format(what="The image", width="${width}", height="${height}", fitted_width="${w}",
                           fitted_height="${h}", max_side=max_side)
    return """() => {
  if (window.playgroundFit) return;
  window.playgroundFit = true;
  const MAX = MAX_SIDE, ours = new WeakSet();
  const inEditor = (node) => node instanceof Element && node.closest('#editor') !== null;
  const type = (box, text) => { box.value = text; box.dispatchEvent(new Event('input', {bubbles: true})); };
  const say = (text) => {
    const box = document.querySelector('#fit_note textarea, #fit_note input');
    if (!box) return;
    type(box, '\u2026');  // Gradio passes on changes only: the same note twice in a row would be lost
    setTimeout(() => type(box, text || ''), 0);
  };
  async function fit(file) {
    const image = file instanceof Blob && file.type.startsWith('image/') && file.type !== 'image/svg+xml';
    if (!image) return [file, null];
    let full;
    try { full = await createImageBitmap(file); } catch (e) { return [file, null]; }
    const width = full.width, height = full.height, scale = MAX / Math.max(width, height);
    if (scale >= 1) { full.close(); return [file, null]; }
    const w = width >= height ? MAX : Math.max(1, Math.round(width * scale));
    const h = width >= height ? Math.max(1, Math.round(height * scale)) : MAX;
    const scaled = await createImageBitmap(full, {resizeWidth: w, resizeHeight: h, resizeQuality: 'high'});
    full.close();
    const canvas = new OffscreenCanvas(w, h);
    canvas.getContext('2d').drawImage(scaled, 0, 0);
    scaled.close();
    const blob = await canvas.convertToBlob({type: 'image/png'});
    const name = (file.name || 'image').replace(/\\.[^.]*$/, '') + '.png';
    return [new File([blob], name, {type: 'image/png'}), `NOTE`];
  }
  // The editor takes the first file only, so the note is about the first.
  const fitAll = async (files) => {
    const fitted = await Promise.all(Array.from(files, fit));
    return [fitted.map(([file]) => file), fitted.length ? fitted[0][1] : null];
  };
  const transfer = (files) => { const t = new DataTransfer(); files.forEach((f) => t.items.add(f)); return t; };
  document.addEventListener('change', (ev) => {
    const input = ev.target;
    if (ours.has(ev) || !(input instanceof HTMLInputElement) || input.type !== 'file' || !inEditor(input)
        || !input.files || !input.files.length) return;
    ev.stopImmediatePropagation();
    fitAll(input.files).then(([files, note]) => {
      input.files = transfer(files).files;
      const again = new Event('change', {bubbles: true});
      ours.add(again);
      input.dispatchEvent(again);
      say(note);
    });
  }, true);
  document.addEventListener('drop', (ev) => {
    if (ours.has(ev) || !inEditor(ev.target) || !ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    const target = ev.target;
    fitAll(ev.dataTransfer.files).then(([files, note]) => {
      const again = new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: transfer(files)});
      ours.add(again);
      target.dispatchEvent(again);
      say(note);
    });
  }, true);
  const clipboard = navigator.clipboard;
  if (clipboard && clipboard.read) {
    const read = clipboard.read.bind(clipboard);
    clipboard.read = async () => {
      const items = await read();
      if (!inEditor(document.activeElement)) return items;
      return items.map((item) => ({types: item.types, presentationStyle: item.presentationStyle,
        getType: async (type) => {
          if (!type.startsWith('image/')) return item.getType(type);
          const [file, note] = await fit(await item.getType(type));
          say(note);
          return file;
        }}));
    };
  }
}""".replace("MAX_SIDE", str(int(max_side))).replace("NOTE", note)


SCROLL_TO = """() => { const el = document.getElementById('%s'); if (el) el.scrollIntoView({behavior: 'smooth',
  block: 'start'}); }"""

# Drawn in the browser from the history's JSON; every text is escaped, images are data URIs made by the server.
HISTORY_TEMPLATE = """${(() => {
  const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
    '"': '&quot;', "'": '&#39;'}[c]));
  const img = (src, alt) => src && src.startsWith('data:image/') ? `<img src="${src}" alt="${alt}">`
    : `<span class="gone">${alt}: gone</span>`;
  let list = []; try { list = JSON.parse(value || '[]'); } catch (e) {}
  if (!list.length) return `<p class="history-empty">No runs yet. Finished runs appear here, newest first; ` +
    `they are kept in this browser only (the newest ${LIMIT}).</p>`;
  const cards = list.map(e => {
    const p = e.params || {};
    const when = e.at ? new Date(e.at * 1000).toLocaleString() : '';
    const facts = [p.size, p.quality, p.output_format, e.cost != null ? `${e.cost} credits` : '',
                   e.elapsed_s != null ? `${Number(e.elapsed_s).toFixed(1)} s` : ''].filter(Boolean).join(' · ');
    return `<div class="hcard" data-run="${esc(e.run_id)}">
      <button class="pick" title="Show this run">${img(e.thumb_first, 'before')}${img(e.thumb_result, 'after')}</button>
      <div class="prompt">${esc(e.prompt)}</div><div class="facts">${esc(facts)}</div>
      <div class="facts">${esc(when)}
        <label><input type="checkbox" class="cmp" value="${esc(e.run_id)}"> compare</label></div>
    </div>`;
  }).join('');
  return `<div class="history-bar"><b>${list.length} run${list.length === 1 ? '' : 's'}</b>
    <button class="compare-btn">Compare selected</button><span class="compare-hint">tick two to four runs</span>
    </div><div class="history-grid">${cards}</div>`;
})()}""".replace("${LIMIT}", str(LIMIT))

HISTORY_JS = """
const byId = id => { try { return JSON.parse(props.value || '[]').find(e => e.run_id === id); } catch (e) {} };
element.addEventListener('click', ev => {
  const pick = ev.target.closest('.pick');
  if (pick) {
    const card = pick.closest('.hcard');
    element.querySelectorAll('.hcard.picked').forEach(c => c.classList.remove('picked'));
    card.classList.add('picked');
    const entry = byId(card.dataset.run);
    if (entry) trigger('pick', {entry});
    return;
  }
  if (ev.target.closest('.compare-btn')) {
    const ids = [...element.querySelectorAll('.cmp:checked')].map(b => b.value);
    const hint = element.querySelector('.compare-hint');
    if (ids.length < 2 || ids.length > 4) { if (hint) hint.textContent = 'Tick two to four runs to compare.'; return; }
    trigger('compare', {entries: ids.map(byId).filter(Boolean)});
  }
});
"""

_NAMES = [p.name for p in PARAMS]
_CHOICES = {p.name: list(p.choices) if p.choices else [p.minimum, p.maximum] for p in PARAMS}

# The draft (prompt and settings) is saved in the browser on every change and put back after a reload.
SAVE_DRAFT_JS = """(prompt, ...values) => JSON.stringify({prompt, params: Object.fromEntries(__NAMES__.map((n, i) =>
  [n, values[i]]))})""".replace("__NAMES__", json.dumps(_NAMES))

RESTORE_DRAFT_JS = """(draft, prompt, ...values) => {
  const allowed = __CHOICES__;
  let d = {}; try { d = JSON.parse(draft || '{}') || {}; } catch (e) {}
  const p = d.params || {};
  const ok = (n, v) => Array.isArray(allowed[n]) && (typeof allowed[n][0] === 'number'
    ? typeof v === 'number' && v >= allowed[n][0] && v <= allowed[n][1] : allowed[n].includes(v));
  return [typeof d.prompt === 'string' && !prompt ? d.prompt : prompt,
          ...__NAMES__.map((n, i) => ok(n, p[n]) ? p[n] : values[i])];
}""".replace("__CHOICES__", json.dumps(_CHOICES)).replace("__NAMES__", json.dumps(_NAMES))
