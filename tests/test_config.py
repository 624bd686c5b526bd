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


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("SEGMIND_POLL_S", "0", "from 0.01 to 60"),
    ("SEGMIND_POLL_S", "-1", "from 0.01 to 60"),
    ("SEGMIND_POLL_S", "nan", "from 0.01 to 60"),
    ("SEGMIND_DEADLINE_S", "0", "from 0.1 to 86400"),
    ("SEGMIND_DEADLINE_S", "-600", "from 0.1 to 86400"),
    ("SEGMIND_DEADLINE_S", "inf", "from 0.1 to 86400"),
    ("SEGMIND_DEADLINE_S", "NaN", "from 0.1 to 86400"),
    ("SEGMIND_DEADLINE_S", "ten minutes", "from 0.1 to 86400"),
    ("SEGMIND_MAX_SIDE", "0", "whole number from 256 to 8192"),
    ("SEGMIND_MAX_SIDE", "100000", "whole number from 256 to 8192"),
    ("SEGMIND_MAX_SIDE", "2048.5", "whole number from 256 to 8192"),
    ("SEGMIND_RETRIES", "-1", "whole number from 1 to 10"),
    ("SEGMIND_RETRIES", "0", "whole number from 1 to 10"),
    ("SEGMIND_RETRIES", "three", "whole number from 1 to 10"),
    ("SEGMIND_RETRY_BASE_S", "-0.5", "from 0 to 60"),
    ("SEGMIND_RETRY_BASE_S", "inf", "from 0 to 60"),
    ("SEGMIND_RETRY_BASE_S", "-inf", "from 0 to 60"),
])
def test_a_number_out_of_range_names_the_variable_the_value_and_the_range(name, value, allowed):
    with pytest.raises(ValueError) as caught:
        load_settings({name: value})
    assert name in str(caught.value) and repr(value) in str(caught.value) and allowed in str(caught.value)


def test_numbers_at_the_edges_of_their_ranges_are_accepted():
    settings = load_settings({"SEGMIND_POLL_S": "0.01", "SEGMIND_DEADLINE_S": " 0.1 ", "SEGMIND_MAX_SIDE": "256",
                              "SEGMIND_RETRIES": "10", "SEGMIND_RETRY_BASE_S": "0"})
    assert (settings.poll_s, settings.deadline_s, settings.max_side, settings.retries, settings.retry_base_s) == (
        0.01, 0.1, 256, 10, 0.0)


def test_an_empty_number_counts_as_unset():
    assert load_settings({"SEGMIND_POLL_S": "", "SEGMIND_RETRIES": "  "}).retries == 3
