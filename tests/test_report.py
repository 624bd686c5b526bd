"""The HTML reports in headless Chromium with the network cut off: they render, show their runs, and ask for nothing."""

import re

import pytest
from playwright.sync_api import expect
from run_factory import AWKWARD_PROMPT, make_run

from playground import __version__
from playground.report import comparison_html, report_html
from playground.store import RunStore

# Run apart from the other tests (see the Makefile): two software-rendered Chromiums would slow each other down.
pytestmark = pytest.mark.browser


@pytest.fixture
def offline(page):
    """A page that can reach nothing: every request is refused and noted (data: URIs are not requests)."""
    asked = []

    def refuse(route):
        asked.append(route.request.url)
        route.abort()

    page.route("**/*", refuse)
    page.on("request", lambda request: None if request.url.startswith("data:") else asked.append(request.url))
    page.asked = asked
    return page


def images_loaded(page):
    return page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")


def test_the_report_renders_offline_with_every_image(offline, fake, tmp_path):
    _, run, record = make_run(fake, tmp_path, prompt=AWKWARD_PROMPT, keep_outside=True, url_images=1)
    text = report_html(run)
    assert not re.search(r"(src|href)\s*=\s*['\"](?!data:)", text) and "<link" not in text and "@import" not in text
    offline.set_content(text)
    assert offline.locator(".prompt").text_content() == AWKWARD_PROMPT  # escaped, shown as typed
    loaded = images_loaded(offline)
    assert len(loaded) >= 5 and all(loaded)  # after, before, mask, heat map, the model's own output
    assert offline.asked == []
    page_text = offline.locator("main").inner_text()
    for fact in (record.request_id, f"{record.cost:g} credits", record.params["quality"], __version__,
                 *record.notes[:1]):
        assert fact in page_text
    slider = offline.locator(".slider input")
    slider.evaluate("el => { el.value = 20; el.dispatchEvent(new Event('input')); }")
    assert offline.locator(".slider").evaluate("el => el.style.getPropertyValue('--pos')") == "20%"


def test_the_report_lists_the_output_checks(offline, fake, tmp_path):
    fake.fail("wrong_size")
    _, run, record = make_run(fake, tmp_path, params={"size": "1024x1024"})
    assert record.problems
    offline.set_content(report_html(run))
    expect(offline.locator("li.problem")).to_have_text(record.problems)
    assert all(images_loaded(offline)) and offline.asked == []


def test_the_comparison_shows_every_run_and_highlights_what_differs(offline, fake, tmp_path):
    store = RunStore(tmp_path / "runs")
    runs = [make_run(fake, tmp_path, store=store, prompt=f"make the sky {colour}", params={"quality": quality})[1]
            for colour, quality in (("red", "low"), ("blue", "medium"), ("red", "high"))]
    offline.set_content(comparison_html(runs))
    loaded = images_loaded(offline)
    assert len(loaded) == 3 and all(loaded) and offline.asked == []
    for run in runs:
        expect(offline.locator("table.compare")).to_contain_text(run.run_id[:8])
    expect(offline.locator("tr.differs th", has_text="Quality")).to_be_visible()
    expect(offline.locator("tr", has=offline.locator("th", has_text="Size"))).not_to_have_class("differs")
    expect(offline.locator("tr.differs mark")).to_have_text(["red", "blue", "red"])


def test_a_comparison_takes_two_to_four_runs(fake, tmp_path):
    _, run, _ = make_run(fake, tmp_path)
    with pytest.raises(ValueError, match="2 to 4"):
        comparison_html([run])
