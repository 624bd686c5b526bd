"""The page's event handlers: component values in, runs started and followed through the service, messages out.

With app.py, the only module that knows about Gradio. Handlers receive their inputs by component (a dict), never
by position; the browser keeps only ids (this browser's token and the run it follows).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
from PIL import Image

from . import errors, history, images, segmind
from . import mask as masks
from .batch import MAX_RUNS, Cell, build_batch, run_count
from .bundle import BundleError
from .errors import SegmindError
from .feedback import NO_RUN, USER_ERRORS, done_html, progress_html, status_detail, toast, user_message
from .frontend import FIT_NOTE
from .guard import Refused
from .inputs import EDITOR_IMAGE, EditInputs, build_inputs, open_mask_file
from .params import PARAMS, auto_size
from .presets import PRESET_FIELDS, Preset
from .run import RunRecord
from .runner import LiveRun
from .service import RESUMABLE, Busy, Service
from .ui_batch import BatchPage
from .views import nothing_shown, shown_run

log = logging.getLogger(__name__)
MASK_HINT = "Paint on the image to make a mask; nothing painted means no mask."


def apply_preset(preset: Preset) -> list:
    """The five controls a preset sets, and its advice; prompt, images, mask and moderation are left alone."""
    return [preset.params[name] for name in PRESET_FIELDS] + [f"**{preset.label}**: {preset.advice}"]


def keep_transparency_possible(background: str, output_format: str):
    """Choosing transparent while jpeg is selected switches the format to png, and says so."""
    if background == "transparent" and output_format == "jpeg":
        gr.Info("jpeg cannot be transparent, so Output format was switched to png.")
        return "png"
    return gr.skip()


def gallery_paths(refs) -> list[str]:
    return [str(item[0] if isinstance(item, (list, tuple)) else item) for item in refs or []]


class Page:
    """The handlers, bound to the page's components (`c`, by name) and the service."""

    def __init__(self, service: Service, c: SimpleNamespace):
        self.service = service
        self.c = c
        self.batch = BatchPage(service, c, self.browser)

    # -- inputs ---------------------------------------------------------------------------------------------

    def _fitted(self, image: Image.Image, what: str) -> tuple[Image.Image, str]:
        """An image for the editor at the size that will be sent, so the browser never sends more than that and
        the mask is painted on exactly what is sent."""
        max_side = self.service.settings().max_side
        fitted = images.fit_longest_side(image, max_side)
        if fitted is image:
            return image, ""
        return fitted, FIT_NOTE.format(what=what, width=image.width, height=image.height, fitted_width=fitted.width,
                                       fitted_height=fitted.height, max_side=max_side)

    def load_first_ref(self, refs, editor_value):
        """Choosing reference images loads the first one into an empty editor, ready to paint a mask on."""
        c = self.c
        paths = gallery_paths(refs)
        if not paths or (editor_value and editor_value.get("background") is not None):
            return {c.editor: gr.skip()}
        try:
            image, note = self._fitted(images.load_image(paths[0], Path(paths[0]).name).image,
                                       "The first reference image")
        except images.ImageInputError as exc:
            raise gr.Error(toast(str(exc))) from None
        return {c.editor: image, c.editor_note: note}

    def inputs(self, values: dict) -> EditInputs:
        c = self.c
        editor = values.get(c.editor) or {}
        return build_inputs(
            prompt=values.get(c.prompt) or "", first_image=editor.get("background"),
            layers=editor.get("layers") or [], files=gallery_paths(values.get(c.refs)),
            image_urls=values.get(c.image_urls) or "", mask_file=values.get(c.mask_upload),
            mask_colour=values.get(c.mask_colour) or "auto", invert=bool(values.get(c.invert)),
            keep_outside=bool(values.get(c.keep_outside)),
            params={p.name: values.get(c.controls[p.name]) for p in PARAMS})

    def mask_view(self, inputs: EditInputs):
        """The mask that will be sent, over the first image, with its painted share and notes."""
        if not inputs.images or inputs.images[0][1] != EDITOR_IMAGE:
            return gr.update(value=None, visible=False), "Upload an image into the editor and paint the area to change."
        first = inputs.images[0][0]
        lines = [f"Painted: **{masks.painted_share(inputs.mask):.1f}%** of the image."] if inputs.mask else []
        lines += [f"Note: {n}" for n in inputs.notes]
        if inputs.mask is None and not any("no mask is sent" in n for n in inputs.notes):
            lines.append("Nothing is painted: no mask is sent and the model may change the whole image.")
        if inputs.params.get("size") == "auto":
            lines.append(f"Size auto gives {auto_size(first.size).replace('x', '×')} for this "
                         f"{first.width}×{first.height} image.")
        return gr.update(value=masks.preview(first, inputs.mask), visible=True), "\n\n".join(lines)

    def check_mask(self, values: dict):
        """An uploaded mask is read at once, so a file that cannot be a mask is named before Generate."""
        c = self.c
        path = values.get(c.mask_upload)
        if not path:
            return {c.mask_note: MASK_HINT}
        try:
            mask = open_mask_file(path)
            editor = values.get(c.editor) or {}
            if editor.get("background") is None and not gallery_paths(values.get(c.refs)):
                return {c.mask_note: f"Mask **{toast(Path(path).name)}** ({mask.width}×{mask.height}) is loaded; it "
                                     "is fitted to the image to edit once there is one.",
                        c.mask_preview: gr.update(value=None, visible=False)}
            preview, note = self.mask_view(self.inputs(values))
        except USER_ERRORS as exc:
            gr.Warning(toast(user_message(exc)))
            return {c.mask_note: f"**The uploaded mask cannot be used:** {user_message(exc)}",
                    c.mask_preview: gr.update(value=None, visible=False)}
        return {c.mask_preview: preview, c.mask_note: note}

    def show_mask(self, values: dict):
        try:
            preview, note = self.mask_view(self.inputs(values))
        except USER_ERRORS as exc:
            raise gr.Error(toast(str(exc))) from None
        return {self.c.mask_preview: preview, self.c.mask_note: note}

    # -- runs -----------------------------------------------------------------------------------------------

    def browser(self, token) -> str:
        return token if isinstance(token, str) and len(token) >= 16 else ""

    def visitor(self, request: gr.Request | None) -> str:
        headers = dict(request.headers) if request is not None and request.headers else {}
        client = getattr(request, "client", None)
        return self.service.guard.visitor_of(headers, getattr(client, "host", None))

    def generate(self, values: dict, request: gr.Request):
        """Generate: one run, or a batch (variations or a sweep) followed together by `batch`."""
        c = self.c
        ledger: history.Ledger = values.get(c.ledger) or history.Ledger()
        runs = run_count(values.get(c.variations), values.get(c.sweep_param), values.get(c.sweep_values))
        if refusal := ledger.refusal(values.get(c.budget), runs):
            yield {c.progress: ""}
            raise gr.Error(refusal, duration=None)
        yield {c.progress: progress_html("preparing", 0), c.stop: gr.update(visible=True),
               c.resume: gr.update(visible=False), c.batch_results: gr.update(visible=False),
               c.batch_note: gr.update(visible=False), c.batch_apply: gr.update(visible=False)}
        token = self.browser(values.get(c.browser)) or secrets.token_urlsafe(16)
        try:
            cells = build_batch(self.inputs(values), values.get(c.variations) or 1, values.get(c.sweep_param),
                                values.get(c.sweep_values))
        except USER_ERRORS as exc:
            yield {c.progress: "", c.stop: gr.update(visible=False)}
            raise gr.Error(toast(user_message(exc)), duration=None) from None
        demo = self.service.demo_only or bool(values.get(c.try_demo))
        key, own = ("", True) if demo else self.service.key_for(values.get(c.api_key))
        try:
            lives = self.service.start_many([cell.inputs for cell in cells], api_key=key, own_key=own, owner=token,
                                            visitor=self.visitor(request), password=values.get(c.password),
                                            demo=demo, cells=[cell.about() for cell in cells])
        except (Refused, Busy) as exc:
            yield {c.progress: "", c.stop: gr.update(visible=False), c.key_note: self.service.guard.describe(
                self.visitor(request))}
            raise gr.Error(toast(str(exc)), duration=None) from None
        # The browser keeps the ids of every run it waits for: a reload follows them all again.
        yield {c.browser: token, c.job: " ".join(live.run_id for live in lives), c.run: lives[0].run_id,
               c.batch_runs: [live.run_id for live in lives]}
        if len(cells) > 1 or cells[0].sweep_param:
            yield from self.batch.follow(cells, lives, values)
        else:
            yield from self.follow(lives[0], values, sync=self.service.backend(demo)[1].mode == "sync")

    def resume(self, values: dict, on_load: bool = False):
        """On page load and on Resume: follow the run this browser was following, wherever it got to."""
        c = self.c
        yield {c.resume: gr.update(visible=False)}  # a generator must yield, or Gradio blanks the button
        job = values.get(c.job)
        token = self.browser(values.get(c.browser))
        batch = job.split()[:MAX_RUNS] if isinstance(job, str) and job != NO_RUN else []
        if len(batch) > 1 and token:
            yield from self.resume_batch(batch, token, values)
            return
        run_id = values.get(c.run) or (batch[0] if batch else "")
        run = self.service.open(run_id, token) if run_id and token else None
        if run is None:
            if run_id:
                yield {c.job: NO_RUN, c.run: ""}
            return
        try:
            live = self.service.follow(run, typed_key=values.get(c.api_key))
        except USER_ERRORS as exc:
            gr.Info(toast(str(exc)))
            yield {c.resume: gr.update(visible=True), c.run: run.run_id}
            return
        if live is None:
            yield {c.job: NO_RUN, c.run: ""}
            if not on_load:
                gr.Info("There is no run to resume.")
            return
        yield {c.run: run.run_id, c.stop: gr.update(visible=True)}
        yield from self.follow(live, values, sync=run.meta.get("mode") == "sync", on_load=on_load)

    def resume_batch(self, run_ids: list[str], token: str, values: dict):
        """A reloaded page follows its batch again: runs still going, and the finished ones shown again."""
        c = self.c
        cells, lives = [], []
        for run_id in run_ids:
            run = self.service.open(run_id, token)
            try:
                live = self.service.follow(run, typed_key=values.get(c.api_key)) if run else None
            except USER_ERRORS:
                live = None
            if live is not None:
                cells.append(Cell.kept(run.meta.get("cell")))
                lives.append(live)
        if not lives:
            yield {c.job: NO_RUN, c.run: ""}
            return
        yield {c.run: lives[0].run_id, c.batch_runs: [live.run_id for live in lives], c.stop: gr.update(visible=True)}
        yield from self.batch.follow(cells, lives, values)

    def on_load(self, values: dict):
        yield from self.resume(values, on_load=True)

    def follow(self, live: LiveRun, values: dict, *, sync: bool, on_load: bool = False):
        c = self.c
        started = live.started
        for snap in live.changes():
            if snap.done:
                break
            status = snap.status
            phase = "stopping" if live.stop.is_set() else (status.phase if status else "preparing")
            if sync and live.stop.is_set() and status is not None and status.phase == "processing":
                gr.Warning("Stopped waiting. The request was already sent, so Segmind may still finish and bill "
                           "it; its result will be kept for this page.")
                yield {c.progress: "", c.stop: gr.update(visible=False), c.resume: gr.update(visible=True)}
                return
            rid = status.request_id if status else None
            # Stop is sent with every tick: an update sent while the page is still loading can be lost.
            yield {c.progress: progress_html(phase, time.time() - started, rid, status_detail(status) if status
                                             else ""), c.stop: gr.update(visible=True)}
        if snap.error is None:
            record: RunRecord = snap.outcome
            yield self.show_result(record, values)
            return
        exc = snap.error
        run = self.service.store.get(live.run_id)
        keep = isinstance(exc, RESUMABLE) and bool(run and run.meta.get("request_id"))
        yield {c.progress: "", c.stop: gr.update(visible=False), c.resume: gr.update(visible=keep),
               **({} if keep else {c.job: NO_RUN})}
        if isinstance(exc, errors.Stopped):
            gr.Warning(toast(user_message(exc)))
            return
        if on_load and isinstance(exc, errors.JobExpired):
            gr.Info("An earlier run's result is no longer kept at Segmind (it keeps results for an hour).")
            return
        raise gr.Error(toast(user_message(exc)), duration=None)

    def show_result(self, record: RunRecord, values: dict) -> dict:
        """A finished run: in the result area, in this session's ledger, and (as an entry) in the history."""
        c = self.c
        ledger: history.Ledger = values.get(c.ledger) or history.Ledger()
        ledger.add(record)
        run = self.service.store.get(record.run_id)
        shown = shown_run(c, run, record, code=self.service.code(run)) if run else nothing_shown(c)
        entry = json.dumps(history.entry(record, run)) if run else gr.skip()
        notes = list(record.mask_notes)
        if record.mask_share is None and not notes:
            notes.append("Nothing was painted, so no mask was sent and the model may have changed the whole image.")
        mask_note = "\n\n".join(f"Note: {n}" for n in notes)
        return {**shown, c.mask_note: mask_note, c.progress: done_html(record), c.job: NO_RUN,
                c.stop: gr.update(visible=False), c.resume: gr.update(visible=False), c.ledger: ledger,
                c.ledger_note: ledger.summary(values.get(c.budget)), c.entry: entry}

    def bundle(self, values: dict):
        """The shown run as a zip, for the browser that owns it."""
        token = self.browser(values.get(self.c.browser))
        run = self.service.open(values.get(self.c.shown), token) if token else None
        if run is None:
            raise gr.Error("This run is no longer kept on the server, so it cannot be bundled.")
        try:
            path = self.service.bundle(run)
        except BundleError as exc:
            raise gr.Error(toast(str(exc))) from None
        return gr.update(value=str(path), visible=True)

    def stop(self, values: dict):
        """Stop waiting for this page's run, or for every run of its batch."""
        run_ids = {values.get(self.c.run), *(values.get(self.c.batch_runs) or [])}
        if not [run_id for run_id in run_ids if self.service.runner.stop(run_id)]:
            gr.Info("Nothing is running.")
            return gr.update(visible=False)
        return gr.skip()

    def edit_result(self, run_id):
        """The result goes into the editor as the next image to edit (the reference uploads stay as they are)."""
        run = self.service.store.get(run_id)
        record = run.read_json("record.json") if run else None
        if not record or not record.get("result_file") or not run.has(record["result_file"]):
            raise gr.Error("There is no result to edit yet, or it is no longer kept on the server.")
        try:
            return images.load_image(run.path(record["result_file"]), record["result_file"]).image
        except images.ImageInputError as exc:
            raise gr.Error(toast(str(exc))) from None

    # -- key and credits ------------------------------------------------------------------------------------

    def key_note(self, typed, request: gr.Request):
        """The note under the key box follows what is typed there."""
        if (typed or "").strip():
            problem = segmind.key_problem(typed.strip())
            return (f"**This key cannot be sent:** {problem}" if problem else
                    "Your key is used for this page's runs only; it is not stored.")
        return self.key_status(request)[1]

    def key_status(self, request: gr.Request | None = None):
        """On page load: say whether the server's key is in use, and what this visitor may still run on it; the
        key itself never leaves the server."""
        if self.service.demo_only:
            return (gr.update(visible=False), "**Demo mode**: no key is needed and nothing is spent.",
                    gr.update(visible=False), gr.update(visible=False))
        if self.service.server_key():
            guard = self.service.guard
            return (gr.update(placeholder="Optional: the server's key is in use", info="Optional."),
                    "The server's Segmind key is in use. Paste your own key to use your credits instead. "
                    + guard.describe(self.visitor(request)),
                    gr.update(visible=bool(guard.settings.password)), gr.update(visible=False))
        return (gr.update(placeholder="SG_…", info="Required. Used for this page's requests only; never stored."),
                "Paste your Segmind API key to run edits (get one from your Segmind console), or tick *Try the demo*.",
                gr.update(), gr.update(visible=True))

    def check_credits(self, api_key, try_demo, request: gr.Request):
        if self.service.demo_only or try_demo:
            return "Demo runs use no credits."
        key, own = self.service.key_for(api_key)
        if not key:
            raise gr.Error("Paste your Segmind API key first.")
        _, backend = self.service.backend()
        guard = self.service.guard
        if not own and guard.balance_seen_at is not None and time.time() - guard.balance_seen_at < 60:
            credits = {"credits": guard.balance}  # visitors must not spend the owner's rate limit on this button
        else:
            try:
                credits = backend.credits(api_key=key)
            except SegmindError as exc:
                raise gr.Error(toast(str(exc))) from None
        if not own:
            guard.saw_balance(credits.get("credits"))
            if not guard.show_balance:
                return guard.describe(self.visitor(request))
        numbers = {k: v for k, v in credits.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "credits" not in numbers:
            return "Segmind reported no balance for this key."
        free = numbers.get("free-credits")
        return f"Credits left: **{numbers['credits']:g}**" + (f" (free credits: {free:g})" if free is not None else "")
