"""Settings from the environment."""

import pytest

from playground.config import load_settings, server_api_key


def test_defaults_are_segmind_s_own_addresses_and_the_queue():
    settings = load_settings({})
    assert settings.base_url == "https://api.segmind.com"
    assert settings.upload_url == "https://workflows-api.segmind.com/upload-asset"
    assert (settings.transport, settings.api_mode, settings.deadline_s, settings.max_side) == (
        "upload", "queue", 600.0, 2048)


def test_values_are_read_and_normalised():
    settings = load_settings({"SEGMIND_BASE_URL": "http://127.0.0.1:9/", "SEGMIND_IMAGE_TRANSPORT": " Inline ",
                              "SEGMIND_API_MODE": "SYNC", "SEGMIND_DEADLINE_S": "30", "SEGMIND_RETRIES": "1"})
    assert (settings.base_url, settings.transport, settings.api_mode) == ("http://127.0.0.1:9", "inline", "sync")
    assert settings.poll.deadline_s == 30 and settings.retry.attempts == 1


@pytest.mark.parametrize(("name", "value"), [("SEGMIND_IMAGE_TRANSPORT", "ftp"), ("SEGMIND_API_MODE", "v3"),
                                             ("SEGMIND_DEADLINE_S", "soon")])
def test_a_bad_value_fails_loudly(name, value):
    with pytest.raises(ValueError):
        load_settings({name: value})


def test_the_server_key_is_optional_and_trimmed():
    assert server_api_key({}) is None and server_api_key({"SEGMIND_API_KEY": "  "}) is None
    assert server_api_key({"SEGMIND_API_KEY": " SG_x \n"}) == "SG_x"
