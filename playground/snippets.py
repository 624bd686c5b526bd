"""Code that runs one stored run again: Python with `requests`, cURL, and gradio_client against this app's /edit.

Each snippet carries the run's JSON body as it was sent (request.json). An image that went inline as a data URI is
read back from the run's own file (input-1.png …, mask.png, as a bundle names them), so no snippet holds megabytes of
base64. The key comes only from SEGMIND_API_KEY, the address from SEGMIND_BASE_URL (default: the app's).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from .config import Settings
from .params import MODEL, PARAMS
from .run import MIME_EXTENSIONS, RunRecord
from .store import Run

DEFAULT_APP_URL = "http://127.0.0.1:7860/"
DATA_URI = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,")
OUTPUT = "edited"  # the name a snippet saves its image under; result.* in a bundle stays the run's own


@dataclass(frozen=True)
class SentFile:
    """An image the body carried as a data URI, and the run's file holding the same bytes."""

    name: str
    mime: str


def input_names(run: Run, record: RunRecord) -> list[str]:
    """The run's uploaded images as sent, in order: input-1.png, input-2.jpg …"""
    found = [run.find(f"input-{i}") for i in range(1, len(record.image_names) + 1)]
    return [path.name for path in found if path is not None]


def with_files(body: dict, run: Run) -> dict:
    """`body` with each data URI replaced by the `SentFile` it was made from. The uploads come first in image_urls,
    in order, so the Nth entry is input-N; the mask is mask.png."""

    def sent(value: object, stem: str) -> object:
        match = DATA_URI.match(value) if isinstance(value, str) else None
        if not match:
            return value
        found = run.find(stem)
        mime = match.group(1)
        return SentFile(found.name if found else f"{stem}.{MIME_EXTENSIONS.get(mime, 'bin')}", mime)

    order = ["prompt", "image_urls", "mask", *(p.name for p in PARAMS)]
    out = {k: body[k] for k in sorted(body, key=lambda k: order.index(k) if k in order else len(order))}
    out["image_urls"] = [sent(url, f"input-{i}") for i, url in enumerate(body.get("image_urls") or [], start=1)]
    if "mask" in body:
        out["mask"] = sent(body["mask"], "mask")
    return out


def snippets(run: Run, settings: Settings, *, app_url: str = DEFAULT_APP_URL) -> dict[str, str]:
    """{"edit.py", "edit.sh", "edit_client.py"}: the run again, in its own API mode (queue or sync)."""
    body = run.read_json("request.json")
    saved = run.read_json("record.json")
    if body is None or saved is None:
        raise ValueError("This run never built its request, so there is nothing to repeat.")
    record = RunRecord.from_dict(saved)
    mode = record.mode if record.mode in ("queue", "sync") else settings.api_mode
    body = with_files(body, run)
    return {"edit.py": python_snippet(run.run_id, body, mode, settings.base_url),
            "edit.sh": curl_snippet(run.run_id, body, mode, settings.base_url),
            "edit_client.py": client_snippet(run, record, app_url)}


def _has_files(body: dict) -> bool:
    return any(isinstance(v, SentFile) for v in [*body["image_urls"], body.get("mask")])


def _extension(output_format: object) -> str:
    return "jpg" if output_format == "jpeg" else str(output_format)


def _how(mode: str) -> str:
    return ("Segmind's v2 queue (submit, poll, download)" if mode == "queue"
            else "Segmind's v1 API (one call that answers with the image)")


# -- Python (requests) ----------------------------------------------------------------------------------------------

def _py(value: object) -> str:
    """A Python literal for `value`, in double quotes where it can be."""
    if isinstance(value, SentFile):
        return f"data_uri({_py(value.name)}, {_py(value.mime)})"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    text = repr(value)
    if isinstance(value, str) and text[0] == "'" and '"' not in value:
        text = f'"{text[1:-1]}"'
    return text


def _py_list(items: list[str]) -> str:
    """Rendered items as a list value inside a four-space-indented block: one line, or one item a line."""
    if len(items) <= 1:
        return f"[{''.join(items)}]"
    return "[\n" + "".join(f"        {item},\n" for item in items) + "    ]"


def _py_value(value: object) -> str:
    return _py_list([_py(v) for v in value]) if isinstance(value, list) else _py(value)


PY_INLINE = '''
HERE = Path(__file__).resolve().parent


def data_uri(name, mime):
    """A file of this run as the data URI that was sent."""
    return f"data:{mime};base64," + base64.b64encode((HERE / name).read_bytes()).decode()

'''

PY_COMMON = '''

def check(resp):
    """Stop with Segmind's own words on any answer but 2xx."""
    if resp.status_code >= 300:
        raise SystemExit(f"Segmind answered {resp.status_code}: {resp.text[:500]}")
    return resp
'''

PY_QUEUE = '''

def output_url(value):
    """The image URL in a result: a string, a list, or objects with a url."""
    if isinstance(value, list):
        return output_url(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("url")
    return value


# Keyed calls never follow a redirect: it would carry x-api-key wherever it points.
job = check(requests.post(f"{BASE_URL}/v2/{MODEL}", json=payload, headers=HEADERS, timeout=(10, 60),
                          allow_redirects=False)).json()
request_id = job["request_id"]
print("Queued as request", request_id)
deadline = time.time() + 600
while True:
    resp = requests.get(f"{BASE_URL}/v2/requests/{request_id}/status", headers=HEADERS, timeout=(10, 30),
                        allow_redirects=False)
    status = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    if resp.status_code == 422 or status.get("status") == "FAILED":  # a failed job answers 422
        raise SystemExit(f"Request {request_id} failed: {status.get('error')}")
    check(resp)  # 404: Segmind keeps a job for an hour
    if status.get("status") == "COMPLETED":
        break
    if time.time() > deadline:
        raise SystemExit(f"Request {request_id} is not done after 10 minutes.")
    time.sleep(float(os.environ.get("SEGMIND_POLL_S", "2")))
result = check(requests.get(f"{BASE_URL}/v2/requests/{request_id}", headers=HEADERS, timeout=(10, 30),
                            allow_redirects=False)).json()
if result.get("status") == "FAILED":
    raise SystemExit(f"Request {request_id} failed: {result.get('error')}")
url = output_url(result.get("output")) or output_url(result.get("images"))
if not url:
    raise SystemExit(f"Request {request_id} completed without an image: {result}")
image = check(requests.get(url, timeout=(10, 120))).content  # from Segmind's CDN: no key
print("Cost:", (result.get("metrics") or {}).get("cost"), "credits")
'''

PY_SYNC = '''

# Keyed calls never follow a redirect: it would carry x-api-key wherever it points.
resp = check(requests.post(f"{BASE_URL}/v1/{MODEL}", json=payload, headers=HEADERS, timeout=(10, 240),
                           allow_redirects=False))
image = resp.content
print("Request", resp.headers.get("x-request-id"), "cost:", resp.headers.get("x-cost"), "credits")
'''

PY_SAVE = '''
# The bytes tell the format; Segmind's Content-Type may not.
if image.startswith(b"\\x89PNG"):
    ext = "png"
elif image.startswith(b"\\xff\\xd8\\xff"):
    ext = "jpg"
elif image[:4] == b"RIFF" and image[8:12] == b"WEBP":
    ext = "webp"
else:
    ext = {"jpeg": "jpg"}.get(payload["output_format"], payload["output_format"])
path = Path(f"{OUTPUT}.{ext}")
path.write_bytes(image)
print("Saved", path)
'''


def python_snippet(run_id: str, body: dict, mode: str, base_url: str) -> str:
    inline = _has_files(body)
    lines = [f'"""Run {run_id} again: GPT Image 1 Edit Mini on {_how(mode)}.',
             "",
             "Needs `pip install requests`; set SEGMIND_API_KEY (and SEGMIND_BASE_URL for another address).",
             *(["The images sent inline are read from this run's files next to this script."] if inline else []),
             '"""',
             *(["import base64"] if inline else []),
             "import os",
             "import sys",
             *(["import time"] if mode == "queue" else []),
             "from pathlib import Path",
             "",
             "import requests",
             "",
             f'BASE_URL = os.environ.get("SEGMIND_BASE_URL", {_py(base_url)}).rstrip("/")',
             f"MODEL = {_py(MODEL)}",
             f"OUTPUT = {_py(OUTPUT)}",
             'KEY = os.environ.get("SEGMIND_API_KEY") or sys.exit("Set SEGMIND_API_KEY to your Segmind API key.")',
             'HEADERS = {"x-api-key": KEY}']
    text = "\n".join(lines) + "\n" + (PY_INLINE if inline else "")
    text += "\npayload = {\n" + "".join(f"    {_py(k)}: {_py_value(v)},\n" for k, v in body.items()) + "}\n"
    return text + PY_COMMON + (PY_QUEUE if mode == "queue" else PY_SYNC) + PY_SAVE


# -- cURL ----------------------------------------------------------------------------------------------------------

def json_text(value: object) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate in the prompt: only JSON's \\u escapes can carry it
        text = json.dumps(value, indent=2)
    return text


def _heredoc_json(body: dict) -> str:
    """The body as the text of an unquoted here-document: JSON with $, ` and \\ escaped, and each inline image as
    a command substitution that reads its file."""
    marks = {}

    def mark(value: object) -> object:
        if isinstance(value, SentFile):
            token = f"@@{secrets.token_hex(8)}@@"  # random, so no prompt can contain it
            marks[token] = value
            return token
        return [mark(v) for v in value] if isinstance(value, list) else value

    text = json_text({k: mark(v) for k, v in body.items()})
    text = text.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")
    for token, file in marks.items():
        text = text.replace(token, f"data:{file.mime};base64,$(base64 < \"$HERE/{file.name}\" | tr -d '\\n')")
    return text


SH_QUEUE = '''
# The first "name": "value" (or "name": ["value") in a JSON answer, without needing jq.
field() { sed -n "s/.*\\"$1\\" *: *\\[\\{0,1\\} *\\"\\([^\\"]*\\)\\".*/\\1/p" | head -n 1; }

answer=$(printf '%s' "$body" | curl -sS -X POST "$BASE_URL/v2/$MODEL" -H "x-api-key: $SEGMIND_API_KEY" \\
  -H "Content-Type: application/json" --data-binary @-)
request_id=$(printf '%s' "$answer" | field request_id)
[ -n "$request_id" ] || { echo "Segmind answered: $answer" >&2; exit 1; }
echo "Queued as request $request_id"
while :; do
  status=$(curl -sS "$BASE_URL/v2/requests/$request_id/status" -H "x-api-key: $SEGMIND_API_KEY")
  case "$(printf '%s' "$status" | field status)" in
    COMPLETED) break ;;
    QUEUED|PROCESSING) ;;
    *) echo "Request $request_id: $status" >&2; exit 1 ;;  # FAILED (HTTP 422), or expired after an hour (404)
  esac
  [ "$SECONDS" -lt 600 ] || { echo "Request $request_id is not done after 10 minutes." >&2; exit 1; }
  sleep "${SEGMIND_POLL_S:-2}"
done
result=$(curl -sS "$BASE_URL/v2/requests/$request_id" -H "x-api-key: $SEGMIND_API_KEY")
url=$(printf '%s' "$result" | field output)
[ -n "$url" ] || url=$(printf '%s' "$result" | field url)
[ -n "$url" ] || { echo "Request $request_id completed without an image: $result" >&2; exit 1; }
curl -sS --fail -o "$OUTPUT.download" "$url"  # from Segmind's CDN: no key
'''

SH_SYNC = '''
code=$(printf '%s' "$body" | curl -sS -X POST "$BASE_URL/v1/$MODEL" -H "x-api-key: $SEGMIND_API_KEY" \\
  -H "Content-Type: application/json" --data-binary @- -o "$OUTPUT.download" -w '%{http_code}')
if [ "$code" != 200 ]; then
  echo "Segmind answered $code: $(cat "$OUTPUT.download")" >&2
  rm -f "$OUTPUT.download"
  exit 1
fi
'''

SH_SAVE = '''
# The bytes tell the format; Segmind's Content-Type may not.
case "$(head -c 12 "$OUTPUT.download" | od -An -tx1 | tr -d ' \\n')" in
  89504e47*) ext=png ;;
  ffd8ff*) ext=jpg ;;
  52494646????????57454250) ext=webp ;;
  *) ext=%s ;;
esac
mv "$OUTPUT.download" "$OUTPUT.$ext"
echo "Saved $OUTPUT.$ext"
'''


def curl_snippet(run_id: str, body: dict, mode: str, base_url: str) -> str:
    inline = _has_files(body)
    lines = ["#!/usr/bin/env bash",
             f"# Run {run_id} again: GPT Image 1 Edit Mini on {_how(mode)}.",
             "# Needs bash and curl; set SEGMIND_API_KEY (and SEGMIND_BASE_URL for another address).",
             *(["# The images sent inline are read from this run's files next to this script."] if inline else []),
             "set -euo pipefail",
             ': "${SEGMIND_API_KEY:?Set SEGMIND_API_KEY to your Segmind API key}"',
             f'BASE_URL="${{SEGMIND_BASE_URL:-{base_url}}}"',
             'BASE_URL="${BASE_URL%/}"',
             f"MODEL={MODEL}",
             f"OUTPUT={OUTPUT}",
             *(['HERE="$(cd "$(dirname "$0")" && pwd)"'] if inline else []),
             "",
             "body=$(cat <<JSON",
             _heredoc_json(body),
             "JSON",
             ")"]
    save = SH_SAVE % _extension(body.get("output_format", "png"))
    return "\n".join(lines) + "\n" + (SH_QUEUE if mode == "queue" else SH_SYNC) + save


# -- gradio_client against this app --------------------------------------------------------------------------------

def client_snippet(run: Run, record: RunRecord, app_url: str) -> str:
    meta = run.meta
    names = input_names(run, record)
    images = _py_list([f"handle_file(str(HERE / {_py(n)}))" for n in names]) if names else "None"
    mask = 'handle_file(str(HERE / "mask.png"))' if run.has("mask.png") else "None"
    values = {"prompt": _py(record.prompt), "images": images, "mask": mask,
              "image_urls": _py_value(list(record.image_urls)) if record.image_urls else "None",
              **{p.name: _py(record.params.get(p.name, p.default)) for p in PARAMS},
              "api_key": 'os.environ.get("SEGMIND_API_KEY")',
              # mask.png is already in the API's form (transparent = edit), so it is taken as it is.
              "mask_edit_colour": '"auto"', "invert_mask": "False",
              "keep_outside_mask": repr(bool(meta.get("keep_outside")))}
    arguments = "".join(f"    {name}={value},\n" for name, value in values.items())
    return f'''"""Run {run.run_id} again through the playground's /edit API, with this run's images as sent.

Needs `pip install gradio_client`. Usage: python edit_client.py [APP_URL]   (default {app_url})
SEGMIND_API_KEY is sent as api_key when set; without it the app uses its own key, if it has one.
"""
import os
import shutil
import sys
from pathlib import Path

from gradio_client import Client, handle_file

HERE = Path(__file__).resolve().parent
APP_URL = sys.argv[1] if len(sys.argv) > 1 else {_py(app_url)}

client = Client(APP_URL, verbose=False)
result, record = client.predict(
{arguments}    api_name="/edit",
)
path = Path("{OUTPUT}" + Path(result).suffix)  # the app names its file by the format it really is
shutil.copyfile(result, path)
print("Saved", path, "- request", record["request_id"], "cost:", record["cost"], "credits")
'''
