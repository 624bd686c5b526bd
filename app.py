"""A browser playground for Segmind's GPT Image 1 Edit Mini: paint a mask, pick a preset, press Generate."""

import gradio as gr

from playground import ui
from playground.config import load_settings
from playground.mask import EDIT_COLOURS
from playground.params import PARAMS
from playground.presets import PRESET_FIELDS, load_presets

PRESETS = load_presets()
load_settings()  # a bad SEGMIND_* value stops the app at start-up, not at someone's first edit
CSS = """
.run-progress .bar {height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden}
.run-progress .bar > div {height: 100%; background: var(--color-accent); transition: width .8s}
.run-progress span {display: block; margin-top: .4em}
#go {min-height: 48px}
"""
LAUNCH_KWARGS = {"css": CSS, "theme": gr.themes.Soft(), "run_history": False}


def param_control(param):
    if param.choices:
        return gr.Radio(list(param.choices), value=param.default, label=param.label, info=param.help,
                        elem_id=param.name)
    return gr.Slider(param.minimum, param.maximum, value=param.default, step=1, label=param.label,
                     info=param.help, elem_id=param.name)


with gr.Blocks(title="GPT Image 1 Edit Mini playground", delete_cache=(3600, 86400)) as demo:
    gr.Markdown("# GPT Image 1 Edit Mini playground\nEdit images with Segmind's `gpt-image-1-edit-mini`: "
                "upload a photo, paint the area to change, describe the change, press **Generate**.")
    job_state = gr.BrowserState(None, storage_key="segmind-edit-job")
    stop_state = gr.State(None, delete_callback=ui.stop_waiting)

    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, max_lines=12, elem_id="prompt",
                                placeholder="e.g. Replace the sky with a warm sunset; keep the people unchanged")
            editor = gr.ImageEditor(
                label="Image to edit: paint the area to change (magenta)", type="pil", format="png",
                layers=False, transforms=(), sources=("upload", "clipboard"), height=520, elem_id="editor",
                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=40),
                eraser=gr.Eraser(default_size=40),
            )
            with gr.Row():
                refs = gr.Gallery(label="Reference images (in order; the first goes into the editor when it is empty)",
                                  type="filepath", interactive=True, columns=6, height=150, elem_id="refs",
                                  file_types=["image"])
                image_urls = gr.Textbox(label="Image URLs", lines=3, elem_id="image_urls",
                                        placeholder="https://… one per line; sent after the uploads")
            with gr.Accordion("Mask", open=True):
                with gr.Row():
                    mask_upload = gr.Image(label="Or upload a mask", type="filepath", sources=["upload"],
                                           height=150, elem_id="mask_upload")
                    with gr.Column():
                        mask_colour = gr.Radio(list(EDIT_COLOURS), value="auto", elem_id="mask_colour",
                                               label="In a black-and-white mask, edit where it is")
                        invert = gr.Checkbox(label="Invert mask (edit everything except the painted area)",
                                             elem_id="invert")
                        keep_outside = gr.Checkbox(label="Keep everything outside the mask: paste the original "
                                                   "pixels back after the edit", elem_id="keep_outside")
                with gr.Row():
                    show_mask_button = gr.Button("Show the mask that will be sent", size="sm", scale=0,
                                                 elem_id="show_mask")
                    mask_note = gr.Markdown("Paint on the image to make a mask; nothing painted means no mask.",
                                            elem_id="mask_note")
                mask_preview = gr.Image(label="Edit area (magenta) over the first image", interactive=False,
                                        format="png", height=260, visible=False, elem_id="mask_preview")

        with gr.Column(scale=2):
            with gr.Row():
                preset_buttons = [gr.Button(p.label, size="sm", elem_id=f"preset-{i}") for i, p in enumerate(PRESETS)]
            advice = gr.Markdown("Presets from Segmind's usage guide set size, quality, background, format and "
                                 "compression.", elem_id="advice")
            controls = [param_control(p) for p in PARAMS]
            control = dict(zip((p.name for p in PARAMS), controls, strict=True))
            api_key = gr.Textbox(label="API key", type="password", elem_id="api_key")
            with gr.Row():
                key_note = gr.Markdown(elem_id="key_note")
                credits_button = gr.Button("Check credits", size="sm", scale=0, elem_id="credits")
            with gr.Row():
                go = gr.Button("Generate", variant="primary", elem_id="go", scale=3)
                stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
                resume_button = gr.Button("Resume", visible=False, elem_id="resume", scale=1)
            progress = gr.HTML(elem_id="progress")
            result = gr.Image(label="Result", type="filepath", interactive=False, elem_id="result",
                              buttons=["fullscreen"], height=420)
            with gr.Row():
                download = gr.DownloadButton("Download", visible=False, elem_id="download")
                reuse = gr.Button("Edit this result", visible=False, elem_id="reuse")
            info = gr.Markdown(elem_id="info")
            heatmap = gr.Image(label="Changes outside the mask (bright = changed)", visible=False,
                               interactive=False, format="png", height=260, elem_id="heatmap")

    api_images = gr.File(file_count="multiple", visible=False)
    api_mask = gr.File(visible=False)
    api_urls = gr.JSON(visible=False)
    api_key_param = gr.Textbox(visible=False)
    api_mask_colour = gr.Radio(list(EDIT_COLOURS), value="auto", visible=False)
    api_invert = gr.Checkbox(False, visible=False)
    api_keep_outside = gr.Checkbox(False, visible=False)
    api_file = gr.File(label="image", visible=False)
    api_record = gr.JSON(label="record", visible=False)
    api_trigger = gr.Button(visible=False)

    run_outputs = {"progress": progress, "result": result, "download": download, "info": info,
                   "job_state": job_state, "stop_state": stop_state, "mask_preview": mask_preview,
                   "mask_note": mask_note, "resume_button": resume_button, "heatmap": heatmap}
    ui_inputs = [prompt, editor, refs, image_urls, mask_upload, mask_colour, invert, keep_outside]

    demo.load(ui.key_status, outputs=[api_key, key_note], api_visibility="private")
    # Progress is drawn by the handlers themselves; Gradio's own overlay would mark every output "Error".
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    demo.load(ui.resume(run_outputs), inputs=[job_state, api_key], outputs=list(run_outputs.values()), **quiet)
    resume_button.click(ui.resume(run_outputs), inputs=[job_state, api_key], outputs=list(run_outputs.values()),
                        **quiet)
    for button, preset in zip(preset_buttons, PRESETS, strict=True):
        button.click(lambda p=preset: ui.apply_preset(p), outputs=[control[f] for f in PRESET_FIELDS] + [advice],
                     api_visibility="private")
    control["background"].change(ui.keep_transparency_possible,
                                 inputs=[control["background"], control["output_format"]],
                                 outputs=control["output_format"], api_visibility="private")
    refs.upload(ui.load_first_ref, inputs=[refs, editor], outputs=editor, api_visibility="private")
    show_mask_button.click(ui.show_mask, inputs=ui_inputs + controls, outputs=[mask_preview, mask_note], **quiet)
    gr.on([go.click, prompt.submit], ui.generate(run_outputs), inputs=[api_key, *ui_inputs, *controls],
          outputs=list(run_outputs.values()), **quiet)
    stop.click(ui.stop_waiting, inputs=stop_state, api_visibility="private")
    download.change(lambda path: gr.update(visible=bool(path)), inputs=download, outputs=reuse,
                    api_visibility="private")
    reuse.click(ui.edit_result, inputs=result, outputs=editor, api_visibility="private")
    credits_button.click(ui.check_credits, inputs=api_key, outputs=key_note, api_visibility="private")
    api_trigger.click(ui.edit, inputs=[prompt, api_images, api_mask, api_urls, *controls, api_key_param,
                                       api_mask_colour, api_invert, api_keep_outside],
                      outputs=[api_file, api_record], api_name="edit")

demo.queue(default_concurrency_limit=8)  # an edit waits ~42 s; one visitor must not hold up the others

if __name__ == "__main__":
    demo.launch(**LAUNCH_KWARGS)
