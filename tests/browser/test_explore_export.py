"""Exploring in an exported page: the allowed candidates of a generated token are offered,
and clicking one says that a live kernel is needed (there is none to run the branch)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

import rudder
from rudder import models, select


def test_clicking_a_candidate_in_an_export_says_a_live_kernel_is_needed(
    page: Page, tmp_path: Path
) -> None:
    lm = models.Mock([b"Paris is big", b"Rome is old"]) + "City:"
    original = lm + select(["Paris is big", "Rome is old"], name="city")
    path = rudder.export_html(original, tmp_path / "run.html")
    page.goto(path.as_uri())
    page.locator(".rd-token.rd-src-generated").first.click()
    tooltip = page.locator(".rd-tooltip")
    expect(tooltip).to_be_visible()
    explorable = tooltip.locator(".rd-explorable")
    expect(explorable.first).to_be_visible()
    assert tooltip.locator(".rd-forbidden.rd-explorable").count() == 0
    explorable.first.click()
    expect(page.locator(".rd-explore-status")).to_contain_text("needs a live kernel")
    assert page.locator(".rd-branch").count() == 0
    text = page.locator(".rd-text").inner_text()
    assert "Paris" in text


def test_an_exported_run_shows_its_explored_branch_beside_the_program(
    page: Page, tmp_path: Path
) -> None:
    with rudder.run("explored") as run:
        lm = models.Mock([b"Paris is big", b"Rome is old"], echo=True) + "City:"
        original = lm + select(["Paris is big", "Rome is old"], name="city")
        detail = rudder.token_detail(original, 0, count=300)
        rome = next(c.token_id for c in detail.candidates if c.allowed and c.text == "R")
        rudder.explore(original, 0, rome)
    path = rudder.export_html(run, tmp_path / "run.html")
    page.goto(path.as_uri())
    branch = page.locator(".rd-branch")
    expect(branch).to_have_count(1)
    expect(branch.locator(".rd-branch-label")).to_contain_text("explored from token 0")
    expect(branch.locator(".rd-branch-text")).to_have_text("Rome is old")
    expect(page.locator(".rd-text")).to_contain_text("Paris is big")
    assert "Rome" not in page.locator(".rd-text").inner_text()
