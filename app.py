"""A browser playground for Segmind's GPT Image 1 Edit Mini: paint a mask, pick a preset, press Generate."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from playground.api import edit_endpoint
from playground.config import load_settings, load_store_settings
from playground.mask import EDIT_COLOURS
from playground.params import PARAMS
from playground.presets import PRESET_FIELDS, load_presets
from playground.service import Service
from playground.store import RunStore, state_secret
from playground.ui import NO_RUN, Page, apply_preset, keep_transparency_possible, load_first_ref

PRESETS = load_presets()
CSS = """
.run-progress .bar {height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden}
.run-progress .bar > div {height: 100%; background: var(--color-accent); transition: width .8s}
.run-progress span {display: block; margin-top: .4em}
.run-progress span span {display: inline; margin: 0}
#go {min-height: 48px}
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
LAUNCH_KWARGS = {"css": CSS, "theme": gr.themes.Soft(), "run_history": False, "head": CLOCK_JS}


def param_control(param):
    if param.choices:
        return gr.Radio(list(param.choices), value=param.default, label=param.label, info=param.help,
                        elem_id=param.name)
    return gr.Slider(param.minimum, param.maximum, value=param.default, step=1, label=param.label,
                     info=param.help, elem_id=param.name)


def create_app(service: Service | None = None) -> gr.Blocks:
    """The page and its API around `service` (by default: Segmind, settings from the environment)."""
    if service is None:
        load_settings()  # a bad SEGMIND_* value stops the app at start-up, not at someone's first edit
        stored = load_store_settings()
        service = Service(store=RunStore(stored.run_dir, stored.run_ttl_s))
        service.store.start_sweeping()
        secret = state_secret(stored.run_dir, stored.state_secret)
    else:
        secret = state_secret(service.store.root)

    with gr.Blocks(title="GPT Image 1 Edit Mini playground", delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# GPT Image 1 Edit Mini playground\nEdit images with Segmind's `gpt-image-1-edit-mini`: "
                    "upload a photo, paint the area to change, describe the change, press **Generate**.")
        c = SimpleNamespace()
        c.browser = gr.BrowserState("", storage_key="segmind-playground-browser", secret=secret)
        c.job = gr.BrowserState(NO_RUN, storage_key="segmind-edit-run", secret=secret)
        c.run = gr.State("")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                c.prompt = gr.Textbox(label="Prompt", lines=3, max_lines=12, elem_id="prompt",
                                      placeholder="e.g. Replace the sky with a warm sunset; keep the people unchanged")
                c.editor = gr.ImageEditor(
                    label="Image to edit: paint the area to change (magenta)", type="pil", format="png",
                    layers=False, transforms=(), sources=("upload", "clipboard"), height=520, elem_id="editor",
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=40),
                    eraser=gr.Eraser(default_size=40),
                )
                with gr.Row():
                    c.refs = gr.Gallery(label="Reference images (in order; the first goes into the editor when it "
                                        "is empty)", type="filepath", interactive=True, columns=6, height=150,
                                        elem_id="refs", file_types=["image"])
                    c.image_urls = gr.Textbox(label="Image URLs", lines=3, elem_id="image_urls",
                                              placeholder="https://… one per line; sent after the uploads")
                with gr.Accordion("Mask", open=True):
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
                        c.mask_note = gr.Markdown("Paint on the image to make a mask; nothing painted means no "
                                                  "mask.", elem_id="mask_note")
                    c.mask_preview = gr.Image(label="Edit area (magenta) over the first image", interactive=False,
                                              format="png", height=260, visible=False, elem_id="mask_preview")

            with gr.Column(scale=2):
                with gr.Row():
                    preset_buttons = [gr.Button(p.label, size="sm", elem_id=f"preset-{i}")
                                      for i, p in enumerate(PRESETS)]
                advice = gr.Markdown("Presets from Segmind's usage guide set size, quality, background, format and "
                                     "compression.", elem_id="advice")
                c.controls = {p.name: param_control(p) for p in PARAMS}
                c.api_key = gr.Textbox(label="API key", type="password", elem_id="api_key")
                with gr.Row():
                    key_note = gr.Markdown(elem_id="key_note")
                    credits_button = gr.Button("Check credits", size="sm", scale=0, elem_id="credits")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="go", scale=3)
                    c.stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, visible=False)
                    c.resume = gr.Button("Resume", visible=False, elem_id="resume", scale=1)
                c.progress = gr.HTML(elem_id="progress")
                c.result = gr.Image(label="Result", type="filepath", interactive=False, elem_id="result",
                                    buttons=["fullscreen"], height=420)
                with gr.Row():
                    c.download = gr.DownloadButton("Download", visible=False, elem_id="download")
                    c.reuse = gr.Button("Edit this result", visible=False, elem_id="reuse")
                c.info = gr.Markdown(elem_id="info")
                c.heatmap = gr.Image(label="Changes outside the mask (bright = changed)", visible=False,
                                     interactive=False, format="png", height=260, elem_id="heatmap")

        page = Page(service, c)
        run_inputs = {c.prompt, c.editor, c.refs, c.image_urls, c.mask_upload, c.mask_colour, c.invert,
                      c.keep_outside, c.api_key, c.browser, c.job, c.run, *c.controls.values()}
        run_outputs = [c.progress, c.result, c.download, c.reuse, c.info, c.heatmap, c.job, c.run, c.browser,
                       c.stop, c.resume, c.mask_preview, c.mask_note]
        # Progress is drawn by the handlers themselves; Gradio's own overlay would mark every output "Error".
        quiet = {"api_visibility": "private", "show_progress": "hidden"}
        resume_inputs = {c.job, c.run, c.browser, c.api_key}

        demo.load(page.key_status, outputs=[c.api_key, key_note], api_visibility="private")
        demo.load(page.on_load, inputs=resume_inputs, outputs=run_outputs, **quiet)
        c.resume.click(None, js=START_JS, outputs=c.progress, **quiet)
        c.resume.click(page.resume, inputs=resume_inputs, outputs=run_outputs, **quiet)
        for button, preset in zip(preset_buttons, PRESETS, strict=True):
            button.click(lambda p=preset: apply_preset(p), outputs=[c.controls[f] for f in PRESET_FIELDS] + [advice],
                         api_visibility="private")
        c.controls["background"].change(keep_transparency_possible,
                                        inputs=[c.controls["background"], c.controls["output_format"]],
                                        outputs=c.controls["output_format"], api_visibility="private")
        c.refs.upload(load_first_ref, inputs=[c.refs, c.editor], outputs=c.editor, api_visibility="private")
        c.mask_upload.change(page.check_mask, inputs=run_inputs, outputs=[c.mask_preview, c.mask_note], **quiet)
        show_mask.click(page.show_mask, inputs=run_inputs, outputs=[c.mask_preview, c.mask_note], **quiet)
        gr.on([go.click, c.prompt.submit], None, js=START_JS, outputs=c.progress, **quiet)
        gr.on([go.click, c.prompt.submit], page.generate, inputs=run_inputs, outputs=run_outputs, **quiet)
        c.stop.click(page.stop, inputs=c.run, api_visibility="private")
        c.reuse.click(page.edit_result, inputs=c.run, outputs=c.editor, api_visibility="private")
        credits_button.click(page.check_credits, inputs=c.api_key, outputs=key_note, api_visibility="private")
        gr.api(edit_endpoint(service), api_name="edit")

    demo.queue(default_concurrency_limit=8)  # an edit waits ~42 s; one visitor must not hold up the others
    return demo


demo = create_app()

if __name__ == "__main__":
    demo.launch(**LAUNCH_KWARGS)
