"""What a script can do without the page or gradio_client: join an app's queue for one event and read the stream."""

import uuid

import requests


def fn_index(url: str, api_name: str) -> int:
    config = requests.get(f"{url}config", timeout=10).json()
    return next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name)


def queue_post(url: str, index: int, data: list) -> str:
    """The event stream's lines up to the event's end, as text; the refusal's text when joining is refused."""
    session = uuid.uuid4().hex[:10]
    joined = requests.post(f"{url}gradio_api/queue/join", timeout=10, json={
        "data": data, "fn_index": index, "session_hash": session, "event_data": None})
    if joined.status_code != 200:
        return joined.text
    with requests.get(f"{url}gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=60) as stream:
        lines = []
        for line in stream.iter_lines(decode_unicode=True):
            lines.append(line)
            if "process_completed" in line:
                break
    return "\n".join(lines)
