"""A browser playground for Segmind's GPT Image 1 Edit Mini: paint a mask, pick a preset, press Generate."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from types import SimpleNamespace

import gradio as gr

from playground.api import batch_endpoint, bundle_endpoint, edit_endpoint, edit_image_tool, keep_only_mcp_tools
from playground.batch import SWEEPABLE
from playground.config import load_settings, load_store_settings, server_api_key
from playground.feedback import NO_RUN
from playground.frontend import (
    APPEND_JS,
    CLEAR_JS,
    CLOCK_JS,
    CSS,
    DOWNLOAD_BUNDLE_JS,
    HISTORY_JS,
    HISTORY_TEMPLATE,
    RESTORE_DRAFT_JS,
    SAVE_DRAFT_JS,
    SCROLL_TO,
    START_JS,
    fit_in_browser,
    forget_painted_note,
)
from playground.history import Ledger
from playground.mask import EDIT_COLOURS
from playground.params import PARAMS, PARAMS_BY_NAME
from playground.presets import PRESET_FIELDS, load_presets
from playground.service import Service
from playground.store import RunStore, state_secret
from playground.ui import MASK_HINT, Page, apply_preset, keep_transparency_possible
from playground.ui_history import HistoryPage
from playground.views import settings_label

PRESETS = load_presets()
LAUNCH_KWARGS = {"css": CSS, "theme": gr.themes.Soft(), "run_history": False,
                 "head": CLOCK_JS + forget_painted_note(MASK_HINT),
                 "max_file_size": load_settings().max_file_bytes,  # Gradio refuses larger uploads with a 413
                 # /edit callers wait in a thread each for their run; with Gradio's default of 40 threads, 40 of
                 # them left no thread to serve anyone else's page or config (seen in the load test).
                 "max_threads": 256}


DEMO_BANNER = ("**Demo mode**: every run goes to a built-in stand-in that marks the painted area and stamps the "
               "image *DEMO*. Results are not the model's; nothing is sent to Segmind and nothing is spent.")
SNIPPETS = (("edit.py", "Python (requests)", "python"), ("edit.sh", "cURL", "shell"),
            ("edit_client.py", "gradio_client (this app)", "python"))


def show_settings(*values):
    """The closed settings accordion names the current values."""
    return gr.update(label=settings_label(dict(zip((p.name for p in PARAMS), values, strict=True))))


def param_control(param):
    if param.choices:
        return gr.Radio(list(param.choices), value=param.default, label=param.label, info=param.help,
                        elem_id=param.name)
    return gr.Slider(param.minimum, param.maximum, value=param.default, step=1, label=param.label,
                     info=param.help, elem_id=param.name)


def create_app(service: Service | None = None, demo_mode: bool | None = None,
               fit_editor_uploads: bool | None = None) -> gr.Blocks:
    """The page and its API around `service` (by default: Segmind, settings from the environment; in demo mode,
    `python app.py --demo` or PLAYGROUND_DEMO=1, every run goes to the built-in stand-in). `fit_editor_uploads`
    (by default on; PLAYGROUND_FIT_EDITOR=0 turns it off) scales an image put into the editor that is larger than
    what is sent, in the browser, before the editor takes it."""
    if service is None:
        load_settings()  # a bad SEGMIND_* value stops the app at start-up, not at someone's first edit
        stored = load_store_settings()
        demo_mode = demo_requested() if demo_mode is None else demo_mode
        service = Service(store=RunStore(stored.run_dir, stored.run_ttl_s), demo_only=demo_mode,
                          server_key=(lambda: None) if demo_mode else server_api_key)
        service.store.start_sweeping()
        secret = state_secret(stored.run_dir, stored.state_secret)
    else:
        secret = state_secret(service.store.root)

    with gr.Blocks(title="GPT Image 1 Edit Mini playground", delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# GPT Image 1 Edit Mini playground\nEdit images with Segmind's `gpt-image-1-edit-mini`: "
                    "upload a photo, paint the area to change, describe the change, press **Generate**.",
                    elem_id="title")
        c = SimpleNamespace()
        c.banner = gr.Markdown(DEMO_BANNER, visible=service.demo_only, elem_id="demo_banner")
        c.browser = gr.BrowserState("", storage_key="segmind-playground-browser", secret=secret)
        c.job = gr.BrowserState(NO_RUN, storage_key="segmind-edit-run", secret=secret)
        # The history and the draft are JSON text: BrowserState keeps a string it is given, not every new dict.
        c.history = gr.BrowserState("[]", storage_key="segmind-playground-history", secret=secret)
        c.draft = gr.BrowserState("{}", storage_key="segmind-playground-draft", secret=secret)
        c.run = gr.State("")  # the run this page started or follows
        c.shown = gr.State("")  # the run shown in the result area (the latest, or one picked from the history)
        c.picked = gr.State(None)  # the history entry shown, if it is one
        c.ledger = gr.State(Ledger())
        c.entry = gr.Textbox(visible=False)  # finished runs' history entries, on their way into the browser
        c.batch_runs = gr.State([])  # the runs of this page's batch, for Stop
        c.batch_picks = gr.State([])  # the batch grid's runs in order: [run_id, swept parameter, value]
        c.sweep_pick = gr.State(None)  # the swept [parameter, value] clicked in the grid

        with gr.Row(equal_height=False, elem_id="workspace"):
            with gr.Column(scale=1, elem_id="left"):
                c.editor = gr.ImageEditor(
                    label="Image to edit: paint the area to change (magenta)", type="pil", format="png",
                    layers=False, transforms=(), sources=("upload", "clipboard"), height=400, elem_id="editor",
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=40),
                    eraser=gr.Eraser(default_size=40),
                    placeholder="Drop the image to edit here, click to upload, or paste it.",
                )
                c.editor_note = gr.Markdown("", elem_id="editor_note")  # says when the image was scaled to fit
                # The page's own scaling writes its note here (a Textbox the page can type into, kept out of sight).
                c.fit_note = gr.Textbox(elem_id="fit_note", elem_classes="out-of-sight", show_label=False,
                                        container=False)
                c.prompt = gr.Textbox(label="Prompt", lines=2, max_lines=12, elem_id="prompt",
                                      placeholder="e.g. Replace the sky with a warm sunset; keep the people unchanged")
                with gr.Row():
                    c.go = go = gr.Button("Generate", variant="primary", elem_id="go", scale=3)
                    c.stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, visible=False)
                    c.resume = gr.Button("Resume", visible=False, elem_id="resume", scale=1)
                c.progress = gr.HTML(elem_id="progress")
                with gr.Row(equal_height=True, elem_id="ledger_row"):
                    c.ledger_note = gr.Markdown(Ledger().summary(), elem_id="ledger")
                    c.budget = gr.Number(0, label="Budget (0 = none)", minimum=0, step=0.01, scale=0,
                                         min_width=150, elem_id="budget")
                with gr.Column(elem_classes="after-result"):
                    c.api_key = gr.Textbox(label="API key", type="password", elem_id="api_key")
                    c.try_demo = gr.Checkbox(label="Try the demo: no key, nothing spent (a built-in stand-in edits "
                                             "the image, not the model)", visible=False, elem_id="try_demo")
                    c.password = gr.Textbox(label="Password for this Space's key", type="password", visible=False,
                                            elem_id="password", info="Not needed with your own key.")
                    with gr.Row(equal_height=True):
                        c.key_note = key_note = gr.Markdown(elem_id="key_note")
                        credits_button = gr.Button("Check credits", size="sm", scale=0, elem_id="credits")

            with gr.Column(scale=1, elem_id="right"):
                with gr.Column(elem_classes="after-result"):
                    with gr.Row():
                        preset_buttons = [gr.Button(p.label, size="sm", elem_id=f"preset-{i}")
                                          for i, p in enumerate(PRESETS)]
                    advice = gr.Markdown("Presets from Segmind's usage guide set size, quality, background, format and "
                                         "compression.", elem_id="advice")
                    with gr.Accordion(settings_label({p.name: p.default for p in PARAMS}), open=False,
                                      elem_id="settings") as c.settings:
                        c.controls = {p.name: param_control(p) for p in PARAMS}
                    with gr.Accordion("Variations and sweep: several runs at once", open=False,
                                      elem_id="batch_section"):
                        c.variations = gr.Radio([1, 2, 3, 4], value=1, label="Variations",
                                                info="Run the same request this many times at once.",
                                                elem_id="variations")
                        with gr.Row(equal_height=False):
                            c.sweep_param = gr.Dropdown(
                                [("off", ""), *((PARAMS_BY_NAME[n].label, n) for n in SWEEPABLE)], value="",
                                label="Sweep a parameter", info="One run per value, all at once.", elem_id="sweep")
                            c.sweep_values = gr.CheckboxGroup([], label="Values", visible=False,
                                                              elem_id="sweep_values")
                        c.estimate = gr.Markdown(elem_id="estimate")
                with gr.Tabs(elem_id="result_tabs"):
                    with gr.Tab("Result", id="result_tab"):
                        c.result = gr.Image(label="Result", type="filepath", interactive=False, elem_id="result",
                                            buttons=["fullscreen"], height=400)
                    with gr.Tab("Before / after", id="before_after_tab"):
                        c.before_after = gr.ImageSlider(label="Before / after", type="pil", interactive=False,
                                                        buttons=["fullscreen"], max_height=400, height=400,
                                                        elem_id="before_after")
                with gr.Row():
                    c.download = gr.DownloadButton("Download", visible=False, elem_id="download")
                    c.reuse = gr.Button("Edit this result", visible=False, elem_id="reuse")
                    c.reuse_settings = gr.Button("Reuse settings", visible=False, elem_id="reuse_settings")
                    c.delete = gr.Button("Delete from history", visible=False, variant="stop",
                                         elem_id="history_delete")
                c.batch_results = gr.Gallery(label="This batch (click a result to see it above)", columns=4,
                                             height=230, object_fit="contain", visible=False, interactive=False,
                                             allow_preview=False, elem_id="batch_results")
                c.batch_apply = gr.Button("Use", visible=False, size="sm", variant="primary", elem_id="batch_apply")
                c.batch_note = gr.Markdown(visible=False, elem_id="batch_note")
                c.info = gr.Markdown(elem_id="info")
                with gr.Row():
                    c.bundle = gr.Button("Download run (.zip)", size="sm", visible=False, elem_id="bundle")
                    c.bundle_file = gr.File(label="Run bundle: images, result, request, record, code, report",
                                            visible=False, elem_id="bundle_file", height=60)
                with gr.Accordion("Code that reproduces this run", open=False, visible=False,
                                  elem_id="snippet") as c.snippet:
                    c.snippets = {}
                    for name, title, language in SNIPPETS:
                        with gr.Tab(title):
                            c.snippets[name] = gr.Code(language=language, interactive=False, label=name,
                                                       elem_id="snippet_" + name.replace(".", "_"))
                c.heatmap = gr.Image(label="Changes outside the mask (bright = changed)", visible=False,
                                     interactive=False, format="png", height=260, elem_id="heatmap")

        with gr.Row(equal_height=False):
            with gr.Column():
                c.refs = gr.Gallery(label="Reference images (in order; the first goes into the editor when it "
                                    "is empty)", type="filepath", interactive=True, columns=6, height=150,
                                    elem_id="refs", file_types=["image"])
                c.image_urls = gr.Textbox(label="Image URLs", lines=2, elem_id="image_urls",
                                          placeholder="https://… one per line; sent after the uploads")
            with gr.Column(), gr.Accordion("Mask", open=True):
                with gr.Row():
                    c.mask_upload = gr.File(label="Or upload a mask (PNG: transparent = edit; or black and "
                                            "white)", file_types=["image"], type="filepath", height=150,
                                            elem_id="mask_upload")
                    with gr.Column():
                        c.mask_colour = gr.Radio(list(EDIT_COLOURS), value="auto", elem_id="mask_colour",
                                                 label="In a black-and-white mask, edit where it is")
                        c.invert = gr.Checkbox(label="Invert mask (edit everything except the painted area)",
                                               elem_id="invert")
                        c.keep_outside = gr.Checkbox(label="Keep everything outside the mask: paste the "
                                                     "original pixels back after the edit", elem_id="keep_outside")
                with gr.Row():
                    show_mask = gr.Button("Show the mask that will be sent", size="sm", scale=0,
                                          elem_id="show_mask")
                    c.mask_note = gr.Markdown(MASK_HINT, elem_id="mask_note")
                c.mask_preview = gr.Image(label="Edit area (magenta) over the first image", interactive=False,
                                          format="png", height=260, visible=False, elem_id="mask_preview")

        with gr.Accordion("History (kept in this browser)", open=True, elem_id="history_section"):
            c.history_view = gr.HTML("[]", html_template=HISTORY_TEMPLATE, js_on_load=HISTORY_JS, elem_id="history")
            clear_history = gr.Button("Clear history", size="sm", elem_id="clear_history")
        with gr.Column(visible=False, elem_id="compare") as c.compare:
            gr.Markdown("### Compare")
            with gr.Row(equal_height=True):
                c.compare_note = gr.Markdown(elem_id="compare_note")
                c.compare_download = gr.DownloadButton("Download comparison", visible=False, size="sm", scale=0,
                                                       elem_id="compare_download")
            with gr.Row(equal_height=False):
                c.compare_slots = []
                for i in range(4):
                    with gr.Column(min_width=200) as slot:
                        image = gr.Image(show_label=False, type="pil", interactive=False, height=300,
                                         buttons=["fullscreen"], elem_id=f"compare_image_{i}")
                        caption = gr.HTML(elem_classes="compare-caption", elem_id=f"compare_caption_{i}")
                    c.compare_slots.append((slot, image, caption))

        page = Page(service, c)
        past = HistoryPage(service, c, page.browser)
        params = [c.controls[p.name] for p in PARAMS]
        run_inputs = {c.prompt, c.editor, c.refs, c.image_urls, c.mask_upload, c.mask_colour, c.invert,
                      c.keep_outside, c.api_key, c.password, c.try_demo, c.browser, c.job, c.run, c.ledger, c.budget,
                      c.variations, c.sweep_param, c.sweep_values, *params}
        shown = [c.result, c.before_after, c.download, c.reuse, c.reuse_settings, c.delete, c.info, c.heatmap,
                 c.shown, c.picked, c.snippet, c.bundle, c.bundle_file, *c.snippets.values()]
        run_outputs = [c.progress, *shown, c.job, c.run, c.browser, c.stop, c.resume, c.mask_preview, c.mask_note,
                       c.ledger, c.ledger_note, c.entry, c.key_note, c.batch_results, c.batch_note, c.batch_apply,
                       c.batch_picks, c.batch_runs]
        # Progress is drawn by the handlers themselves; Gradio's own overlay would mark every output "Error".
        quiet = {"api_visibility": "private", "show_progress": "hidden"}
        resume_inputs = {c.job, c.run, c.browser, c.api_key, c.ledger, c.budget}

        demo.load(page.key_status, outputs=[c.api_key, key_note, c.password, c.try_demo], api_visibility="private")
        c.try_demo.change(lambda on: gr.update(visible=on), inputs=c.try_demo, outputs=c.banner,
                          api_visibility="private")
        demo.load(page.on_load, inputs=resume_inputs, outputs=run_outputs, **quiet)
        demo.load(None, js=RESTORE_DRAFT_JS, inputs=[c.draft, c.prompt, *params], outputs=[c.prompt, *params])
        gr.on([c.prompt.change, *(p.change for p in params)], None, js=SAVE_DRAFT_JS, inputs=[c.prompt, *params],
              outputs=c.draft)
        gr.on([p.change for p in params], show_settings, inputs=params, outputs=c.settings, **quiet)
        c.resume.click(None, js=START_JS, outputs=c.progress, **quiet)
        c.resume.click(page.resume, inputs=resume_inputs, outputs=run_outputs, **quiet)
        for button, preset in zip(preset_buttons, PRESETS, strict=True):
            button.click(lambda p=preset: apply_preset(p), outputs=[c.controls[f] for f in PRESET_FIELDS] + [advice],
                         api_visibility="private")
        c.controls["background"].change(keep_transparency_possible,
                                        inputs=[c.controls["background"], c.controls["output_format"]],
                                        outputs=c.controls["output_format"], api_visibility="private")
        c.refs.upload(page.load_first_ref, inputs=[c.refs, c.editor], outputs=[c.editor, c.editor_note],
                      api_visibility="private")
        if fit_editor_uploads if fit_editor_uploads is not None else fit_editor_requested():
            demo.load(None, js=fit_in_browser(service.settings().max_side))
            c.fit_note.change(None, js="(note) => note", inputs=c.fit_note, outputs=c.editor_note)
        c.mask_upload.change(page.check_mask, inputs=run_inputs, outputs=[c.mask_preview, c.mask_note], **quiet)
        show_mask.click(page.show_mask, inputs=run_inputs, outputs=[c.mask_preview, c.mask_note], **quiet)
        gr.on([go.click, c.prompt.submit], None, js=START_JS, outputs=c.progress, **quiet)
        gr.on([go.click, c.prompt.submit], page.generate, inputs=run_inputs, outputs=run_outputs, **quiet)
        c.stop.click(page.stop, inputs={c.run, c.batch_runs}, outputs=c.stop, **quiet)
        c.sweep_param.change(page.batch.sweep_values, inputs=c.sweep_param, outputs=c.sweep_values, **quiet)
        gr.on([c.variations.change, c.sweep_param.change, c.sweep_values.change, c.ledger_note.change],
              page.batch.estimate, inputs={c.variations, c.sweep_param, c.sweep_values, c.ledger},
              outputs=[go, c.estimate], **quiet)
        c.batch_results.select(page.batch.pick, inputs={c.batch_picks, c.browser},
                               outputs=[*shown, c.batch_apply, c.sweep_pick], **quiet)
        c.batch_results.select(None, js=SCROLL_TO % "result_tabs")
        c.batch_apply.click(page.batch.apply, inputs={c.sweep_pick},
                            outputs=[*params, c.sweep_param, c.sweep_values, c.batch_apply], **quiet)
        c.reuse.click(None, js=SCROLL_TO % "editor")
        c.reuse.click(page.edit_result, inputs=c.shown, outputs=c.editor, **quiet)
        c.api_key.change(page.key_note, inputs=c.api_key, outputs=key_note, **quiet)
        credits_button.click(page.check_credits, inputs=[c.api_key, c.try_demo], outputs=key_note,
                             api_visibility="private")

        c.entry.change(None, js=APPEND_JS, inputs=[c.entry, c.history], outputs=c.history)
        c.history.change(None, js="(history) => history", inputs=c.history, outputs=c.history_view)
        c.history_view.pick(None, js=SCROLL_TO % "result_tabs")
        c.history_view.pick(past.pick, inputs={c.browser}, outputs=shown, **quiet)
        compare_outputs = [c.compare, c.compare_note, c.compare_download,
                           *(x for slot in c.compare_slots for x in slot)]
        c.history_view.compare(past.compare, inputs={c.browser}, outputs=compare_outputs, **quiet)
        c.history_view.compare(None, js=SCROLL_TO % "compare")
        c.reuse_settings.click(past.reuse_settings, inputs={c.picked, c.browser},
                               outputs=[c.prompt, *params, c.editor, c.refs, c.image_urls, c.info], **quiet)
        c.reuse_settings.click(None, js=SCROLL_TO % "editor")
        c.delete.click(past.delete, inputs={c.history, c.picked}, outputs=[c.history, *shown], **quiet)
        clear_history.click(None, js=CLEAR_JS, inputs=c.history, outputs=c.history)
        c.bundle.click(page.bundle, inputs={c.shown, c.browser}, outputs=c.bundle_file, api_name="page_bundle",
                       **quiet).then(
            None, js=DOWNLOAD_BUNDLE_JS)
        gr.api(bundle_endpoint(service), api_name="bundle")
        gr.api(edit_image_tool(service), api_name="edit_image")
        gr.api(edit_endpoint(service), api_name="edit")
        gr.api(batch_endpoint(service), api_name="batch")

    # A handler mostly waits (an edit takes ~42 s at Segmind, in a worker of its own): one visitor must not hold up
    # the others. Beyond the queue's size Gradio answers "busy"; runs in flight have their own cap (Service).
    settings = service.settings()
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    return demo


def give_freed_memory_back() -> None:
    """Large buffers (decoded photos, masks) get their own mappings, returned to the system when freed; glibc's
    default keeps raising that threshold and holds a burst's memory resident (eight 12 MP uploads prepared at once
    left 250 MB resident without this, 54 MB with it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024)


M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def fit_editor_requested() -> bool:
    return os.environ.get("PLAYGROUND_FIT_EDITOR", "").strip().lower() not in ("0", "false", "no")


def demo_requested() -> bool:
    return "--demo" in sys.argv[1:] or os.environ.get("PLAYGROUND_DEMO", "").strip().lower() in ("1", "true", "yes")


give_freed_memory_back()
demo = create_app()

if __name__ == "__main__":
    # The run folder may live outside the temp folder (PLAYGROUND_RUN_DIR, e.g. a Space's /data): results are
    # served from it. The MCP server is on with GRADIO_MCP_SERVER=True.
    demo.launch(**LAUNCH_KWARGS, allowed_paths=[load_store_settings().run_dir], prevent_thread_lock=True)
    keep_only_mcp_tools(demo)
    demo.block_thread()
