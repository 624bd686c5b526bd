import os
import shutil

import pytest
from fake_segmind import FakeSegmind
from pages import gradient_png

from playground.config import load_settings, server_api_key
from playground.guard import MAX_RUNS, Guard, GuardSettings
from playground.service import Service
from playground.store import RunStore

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def photo(tmp_path):
    """The browser tests' photo: a small colour gradient (pages.PHOTO_SIZE) as a PNG file."""
    return str(gradient_png(tmp_path / "photo.png"))


@pytest.fixture
def fake():
    with FakeSegmind() as server:
        yield server
    assert server.crashes == [], "the fake itself failed"


class AppConfig:
    """What the test app reads its settings from: plain values set by each test, not the environment."""

    def __init__(self):
        self.env: dict[str, str] = {}

    def settings(self):
        return load_settings(self.env)

    def server_key(self):
        return server_api_key(self.env)


@pytest.fixture(scope="session")
def app_config():
    return AppConfig()


@pytest.fixture(scope="session")
def service(app_config, tmp_path_factory):
    # The shared app runs hundreds of edits from one address and shows the server key's balance; the guard's
    # limits and hiding are tested on apps of their own (test_guard_app.py).
    open_guard = Guard(GuardSettings(runs_per_hour=MAX_RUNS, runs_per_day=MAX_RUNS, show_balance=True))
    return Service(store=RunStore(tmp_path_factory.mktemp("runs")), settings=app_config.settings,
                   server_key=app_config.server_key, guard=open_guard)


@pytest.fixture(scope="session")
def app_url(service):
    from app import LAUNCH_KWARGS, create_app

    demo = create_app(service)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    yield url
    demo.close()


@pytest.fixture
def app_env(fake, app_config):
    """Point the running app at this test's fake; returns a setter for further SEGMIND_* settings."""
    app_config.env = {"SEGMIND_BASE_URL": fake.url, "SEGMIND_UPLOAD_URL": fake.upload_url, "SEGMIND_POLL_S": "0.01",
                      "SEGMIND_RETRY_BASE_S": "0.01", "SEGMIND_API_MODE": "queue",
                      "SEGMIND_IMAGE_TRANSPORT": "upload"}

    def set_env(**values):
        app_config.env.update(values)

    yield set_env
    app_config.env = {}


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


@pytest.fixture
def new_page(browser):
    """new_page(**context_options): a page in a browser context of its own, closed after the test (an open
    page keeps the editor's canvas drawing, and every later test pays for it)."""
    contexts = []

    def make(**options):
        context = browser.new_context(**options)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()

