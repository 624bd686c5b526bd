"""The MCP tool, listed and called with an MCP client (streamable HTTP) against the app and the local fake."""

import asyncio
import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image
from ports import free_port

from playground.api import keep_only_mcp_tools
from playground.params import PARAMS

KEY = "test-key"



@pytest.fixture(scope="module")
def mcp_url(service):
    from app import LAUNCH_KWARGS, create_app

    demo = create_app(service)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, mcp_server=True,
                quiet=True, **LAUNCH_KWARGS)
    keep_only_mcp_tools(demo)
    yield demo.local_url.rstrip("/") + "/gradio_api/mcp/"
    demo.close()


def data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def photo() -> Image.Image:
    x = np.linspace(0, 255, 320).astype(np.uint8)
    return Image.fromarray(np.dstack([np.tile(x, (240, 1))] * 3), "RGB")


def session_do(url, headers, action):
    """Run an MCP client session in a thread of its own: the browser tests' Playwright keeps an event loop
    running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _session(url, headers, action)).result()


async def _session(url, headers, action):
    http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=120))
    async with http, streamable_http_client(url, http_client=http) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        return await action(session)


def test_the_tool_names_every_parameter_and_its_values_and_takes_no_key(mcp_url, app_env):
    tools = session_do(mcp_url, {}, lambda s: s.list_tools()).tools
    assert [t.name for t in tools] == ["edit_image"]
    schema = tools[0].inputSchema
    assert schema["required"] == ["prompt", "image"]
    for p in PARAMS:
        prop = schema["properties"][p.name]
        if p.choices:
            assert prop["enum"] == list(p.choices)
        assert p.help.split(";")[0].rstrip(".") in prop["description"]
    assert not any("key" in name or "password" in name for name in schema["properties"])
    assert "X-Segmind-Api-Key" in tools[0].description


def test_calling_the_tool_edits_with_the_key_from_the_header(mcp_url, app_env, fake):
    result = session_do(mcp_url, {"X-Segmind-Api-Key": KEY}, lambda s: s.call_tool(
        "edit_image", {"prompt": "make it warmer", "image": data_uri(photo()), "quality": "low"}))
    assert not result.isError, result.content
    image = next(c for c in result.content if c.type == "image")
    assert Image.open(io.BytesIO(base64.b64decode(image.data))).size == (1536, 1024)
    assert len(fake.edits) == 1 and fake.edits[0].payload["quality"] == "low"


def test_the_tool_refuses_what_segmind_would_and_never_takes_a_key_argument(mcp_url, app_env, fake):
    async def calls(s):
        await s.list_tools()
        return (await s.call_tool("edit", {"prompt": "x", "image": data_uri(photo()), "api_key": KEY}),
                await s.call_tool("edit_image", {"prompt": "x", "image": data_uri(photo()), "size": "huge"}),
                await s.call_tool("edit_image", {"prompt": "x", "image": "/etc/hostname"}),
                await s.call_tool("edit_image", {"prompt": "x", "image": data_uri(photo())}))
    hidden, bad_size, path, no_key = session_do(mcp_url, {}, calls)
    assert hidden.isError and "Unknown tool" in hidden.content[0].text
    assert bad_size.isError and "'huge' is not one of" in bad_size.content[0].text
    assert path.isError
    assert no_key.isError and "API key" in no_key.content[0].text
    assert fake.edits == []
