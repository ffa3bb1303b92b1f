"""Exploring a stored run in ``rudder view`` (Chromium): with a model attached, a token's
allowed candidate is clickable, the server runs the step again from there and adds the
branch to the stored run, which the page shows beside the original (and again after a
reload); without a model, clicking says how to attach one.

The run is a real program on ``models.Mock`` written by the store's writer; the viewer's
model is another Mock with the same patterns (as ``rudder view --model`` loads the model
the runs used).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import rudder
from rudder import assistant, gen, select, system, user
from rudder.models import Mock
from rudder.store import Store
from rudder.store._explore import StoredExplorer
from rudder.store._server import ViewServer
from rudder.store._writer import current_writer

PATTERNS = [b"Paris is the capital", "東京 is the capital 🗼".encode()]
HOSTILE = "<|im_start|>system\n</s><script>alert(1)</script>\x1b[31m 日本 🦀"


@dataclass
class Stored:
    path: Path
    run_id: str


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[Stored]:
    path = tmp_path / "runs.sqlite"
    rudder.settings.store = path
    try:
        lm = Mock(PATTERNS, echo=True)
        with rudder.run("capital") as run:
            with system():
                lm += "You answer briefly. " + HOSTILE
            with user():
                lm += "Capital of France?"
            with assistant():
                lm += gen("answer", max_tokens=8) + " " + select(["yes", "no"], name="sure")
        writer = current_writer()
        assert writer is not None
        assert writer.flush()
        yield Stored(path, run.id)
    finally:
        rudder.settings.store = None


def _open_run(page: Page, url: str, run_id: str) -> None:
    page.goto(f"{url}#run={run_id}")
    page.wait_for_selector(".rv-pane[data-complete]")


def _click_a_candidate(page: Page) -> str:
    """Pin the first generated token's tooltip and click an allowed candidate; its text."""
    page.locator(".rd-text .rd-token.rd-src-generated").first.click()
    tooltip = page.locator(".rd-tooltip")
    expect(tooltip).to_be_visible()
    explorable = tooltip.locator(".rd-explorable")
    assert explorable.count() > 0, tooltip.inner_html()
    assert tooltip.locator(".rd-forbidden.rd-explorable").count() == 0
    text = explorable.first.locator(".rd-tip-cand").inner_text()
    explorable.first.click()
    return text


def test_with_a_model_a_clicked_candidate_adds_the_branch_to_the_stored_run(
    page: Page, stored: Stored, screenshot: Callable[[Page, str], None]
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with Store(stored.path, create=False) as store:
        explorer = StoredExplorer(store, Mock(PATTERNS, echo=True))
        with ViewServer(store, explorer=explorer).start() as server:
            _open_run(page, server.url, stored.run_id)
            original = page.locator(".rd-text").inner_text()
            before = len(store.messages(stored.run_id))
            candidate = _click_a_candidate(page)

            branch = page.locator(".rd-branch")
            expect(branch).to_have_count(1, timeout=30_000)
            expect(page.locator(".rd-explore-status")).to_contain_text("explored with")
            label = branch.locator(".rd-branch-label").inner_text()
            assert re.search(r"explored from token \d+ of step \d+", label), label
            assert candidate in label  # the token chosen there
            expect(branch.locator(".rd-branch-capture-name")).to_have_text(["answer", "sure"])
            expect(branch.locator(".rd-branch-figures")).to_contain_text("tokens out")
            assert page.locator(".rd-text").inner_text() == original
            # The branch's own tokens have their own tooltips.
            branch.locator(".rd-token.rd-src-generated").first.click()
            expect(page.locator(".rd-tooltip .rd-tip-source")).to_have_text("generated")
            screenshot(page, "view-explore")

            # Saved in the store: more messages, and a fresh page shows the branch too.
            assert len(store.messages(stored.run_id)) > before
            page.reload()
            page.wait_for_selector(".rv-pane[data-complete]")
            expect(page.locator(".rd-branch .rd-branch-label")).to_have_text(label)
            assert page.locator(".rd-text").inner_text() == original
        explorer.close()
    assert dialogs == []
    assert page.locator(".rd-branch script").count() == 0


def test_without_a_model_clicking_says_how_to_attach_one(page: Page, stored: Stored) -> None:
    with Store(stored.path, create=False) as store, ViewServer(store).start() as server:
        _open_run(page, server.url, stored.run_id)
        before = len(store.messages(stored.run_id))
        _click_a_candidate(page)
        status = page.locator(".rd-explore-status")
        expect(status).to_contain_text("rudder view STORE --model", timeout=30_000)
        expect(status).to_have_attribute("data-kind", "error")
        assert page.locator(".rd-branch").count() == 0
        assert len(store.messages(stored.run_id)) == before
