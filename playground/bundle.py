"""A run to take away: one zip with its images as sent, result, heat map, request body, record, code and report.

Nothing in it can hold a key: the request body and the record are stored without one, and the snippets read the
key from SEGMIND_API_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
import zipfile
from pathlib import Path

from .config import Settings
from .report import report_html
from .run import RunRecord
from .snippets import DATA_URI, DEFAULT_APP_URL, SentFile, input_names, json_text, snippets, with_files
from .store import Run

SCRIPTS = ("edit.sh",)


class BundleError(ValueError):
    """Why a run cannot be bundled, in words for whoever asked."""


def data_uri_note(uri: str, file: SentFile) -> str:
    """What stands for a data URI in the bundle's request.json: its size and hash, and the file holding its bytes."""
    data = base64.b64decode(uri[DATA_URI.match(uri).end():])
    return (f"<data URI of {file.name}: {file.mime}, {len(data)} bytes, "
            f"sha256 {hashlib.sha256(data).hexdigest()}>")


def request_without_data(body: dict, run: Run) -> dict:
    """The body as sent, each data URI shortened to a note (the image itself is in the bundle)."""
    files = with_files(body, run)

    def short(value: object, file: object) -> object:
        return data_uri_note(value, file) if isinstance(file, SentFile) else value

    out = {name: body[name] for name in files}  # in the snippets' order: prompt, images, mask, parameters
    out["image_urls"] = [short(v, f) for v, f in zip(body.get("image_urls") or [], files["image_urls"], strict=True)]
    if "mask" in body:
        out["mask"] = short(body["mask"], files["mask"])
    return out


def bundle_files(run: Run, settings: Settings, *, app_url: str = DEFAULT_APP_URL) -> dict[str, bytes]:
    """Every file of the bundle by name, in the order a reader meets them."""
    saved, body = run.read_json("record.json"), run.read_json("request.json")
    if saved is None or body is None or not saved.get("result_file") or not run.has(saved["result_file"]):
        raise BundleError("This run has no result to take away (yet): it is still running, it failed, or it "
                          "never reached Segmind.")
    record = RunRecord.from_dict(saved)
    names = [*input_names(run, record), "mask.png", record.result_file, record.model_output_file,
             record.heatmap_file]
    files = {name: run.read(name) for name in dict.fromkeys(n for n in names if n and run.has(n))}
    files["request.json"] = (json_text(request_without_data(body, run)) + "\n").encode()
    files["record.json"] = run.read("record.json")
    files.update({name: text.encode() for name, text in snippets(run, settings, app_url=app_url).items()})
    files["report.html"] = report_html(run).encode()
    return files


def bundle(run: Run, settings: Settings, *, app_url: str = DEFAULT_APP_URL) -> Path:
    """Write the run's zip into its own folder (where the app serves files from) and return its path."""
    record_time = time.localtime((run.read_json("record.json") or {}).get("started_at") or time.time())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in bundle_files(run, settings, app_url=app_url).items():
            info = zipfile.ZipInfo(name, date_time=record_time[:6])
            info.external_attr = (0o100755 if name in SCRIPTS else 0o100644) << 16  # regular files, scripts executable
            # Images are compressed already; deflating them again costs time and saves nothing.
            info.compress_type = zipfile.ZIP_STORED if Path(name).suffix in (".png", ".jpg", ".webp") \
                else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return run.write(bundle_name(run), buf.getvalue())


def bundle_name(run: Run) -> str:
    """The zip's file name: it names the run (lower-cased, as the run's file names must be)."""
    return f"segmind-edit-{run.run_id.lower()}.zip"
