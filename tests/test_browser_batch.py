"""Variations and a sweep in headless Chromium against the local fake: the estimate before, the runs side by side,
the grid after, each run in the history, and a swept value applied with one click."""

import pytest
from playwright.sync_api import expect
from test_browser import upload_and_paint
from test_browser_show import app, photo  # noqa: F401  (fixtures shared with the showing tests)

pytestmark = pytest.mark.browser

expect.set_options(timeout=20_000)


def open_batch(page):
    page.locator("#batch_section .label-wrap").first.click()
    expect(page.locator("#variations")).to_be_visible()


def test_variations_then_a_sweep_whose_value_is_applied(app, fake, photo):  # noqa: F811
    page = app
    upload_and_paint(page, photo)
    page.locator("#prompt textarea").fill("add a red balloon")
    open_batch(page)

    page.locator("#variations label", has_text="2").click()
    expect(page.locator("#go")).to_have_text("Generate 2 runs")
    expect(page.locator("#estimate")).to_contain_text("the cost is known after the first run")
    page.locator("#go").click()
    expect(page.locator("#batch_results .thumbnail-item")).to_have_count(2)
    expect(page.locator("#batch_results")).to_contain_text("Variation 1")
    expect(page.locator("#batch_results")).to_contain_text("Variation 2")
    expect(page.locator("#batch_results")).to_contain_text("0.028 credits")
    expect(page.locator("#history .hcard")).to_have_count(2)
    expect(page.locator("#ledger")).to_contain_text("2")
    expect(page.locator("#result img")).to_be_visible()
    assert len(fake.edits) == 2 and len({e.output for e in fake.edits}) >= 1

    page.locator("#variations label", has_text="1").click()
    page.locator("#sweep input").click()
    page.get_by_role("option", name="Quality").click()
    expect(page.locator("#sweep_values")).to_be_visible()
    expect(page.locator("#estimate")).to_contain_text("Tick at least two values of Quality")
    page.locator("#sweep_values label", has_text="low").click()
    page.locator("#sweep_values label", has_text="high").click()
    expect(page.locator("#go")).to_have_text("Generate 2 runs")
    expect(page.locator("#estimate")).to_contain_text("about 0.056 credits (2 × 0.028")
    page.locator("#go").click()
    expect(page.locator("#batch_results")).to_contain_text("Quality low")
    expect(page.locator("#batch_results")).to_contain_text("Quality high")
    expect(page.locator("#batch_results .thumbnail-item")).to_have_count(2)
    expect(page.locator("#history .hcard")).to_have_count(4)
    assert sorted(e.payload["quality"] for e in fake.edits[2:]) == ["high", "low"]

    page.locator("#batch_results .thumbnail-item").nth(1).click()
    expect(page.locator("#batch_apply")).to_have_text("Use Quality high")
    expect(page.locator("#info")).to_contain_text("quality high")
    page.locator("#batch_apply").click()
    expect(page.locator("#go")).to_have_text("Generate")
    expect(page.locator("#sweep_values")).to_be_hidden()
    page.locator("#settings .label-wrap").first.click()
    expect(page.locator("#quality input[value='high']")).to_be_checked()
