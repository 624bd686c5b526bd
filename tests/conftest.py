import os
import shutil

import pytest
from fake_segmind import FakeSegmind

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def fake():
    with FakeSegmind() as server:
        yield server
    assert server.crashes == [], "the fake itself failed"


@pytest.fixture(scope="session")
def app_url():
    from app import LAUNCH_KWARGS, demo

    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    yield url
    demo.close()


@pytest.fixture
def app_env(fake, monkeypatch):
    """Point the running app at this test's fake; returns a setter for further SEGMIND_* variables."""
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    defaults = {"SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url, "SEGMIND_POLL_S": "0.01",
                "SEGMIND_RETRY_BASE_S": "0.01", "SEGMIND_API_MODE": "queue", "SEGMIND_IMAGE_TRANSPORT": "upload"}
    for name, value in defaults.items():
        monkeypatch.setenv(name, value)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.fixture(scope="session")
def gradio_client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    yield client
    client.close()


@pytest.fixture
def client(gradio_client, app_env):
    return gradio_client


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is missing: install it with `apt-get install -y chromium` (or run `make test`).")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS}
