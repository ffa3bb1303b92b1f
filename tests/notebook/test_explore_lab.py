"""Exploring from a token in a real JupyterLab (Debian's Chromium, Playwright): a clicked
token's tooltip asks the kernel for its detail (20 candidates, the allowed-set size) and
offers the candidates the grammar allowed; clicking one asks the kernel, which runs
the generation again with that token; the branch appears beside the original, marked as
explored, with a completed grammar; the next cell reads it back with ``rudder.branches()``.
The notebook is then saved, its kernel shut down and the notebook opened again: the kernel
JupyterLab starts for it never made the saved widget, which shows the original and the
branch from the saved widget state, and clicking a candidate there says that a live kernel
is needed. (JupyterLab with no kernel at all shows no saved widget: its widget manager
loads the notebook's widget state only after asking a kernel for its widgets.)
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Browser, Page
from tests.notebook.test_jupyterlab import (  # noqa: F401 (lab is a fixture)
    QUICK,
    SETUP,
    SLOW,
    VIEW,
    Lab,
    lab,
    wait_for,
)

NOTEBOOK = "rudder_explore.ipynb"
PROGRAM = "picked = lm + 'Colour: ' + select(['red', 'green', 'blue'], name='colour')"
READ = """\
import json
found = [[b['colour'], b.trace.explored.token_index] for b in rudder.branches()]
print('BRANCHES', json.dumps(found))
"""
CELLS = ("setup", "program", "read")
#: Whether the open tooltip lies wholly inside the view's iframe (run inside it).
TOOLTIP_FITS_JS = """() => {
  const tip = document.querySelector('.rd-tooltip');
  return tip !== null && !tip.hidden && tip.getBoundingClientRect().bottom <= window.innerHeight;
}"""
OPTIONS = ("red", "green", "blue")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _cell(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".jp-Notebook .jp-CodeCell").nth(CELLS.index(name))


def _output(page: Page, name: str) -> str:
    return _cell(page, name).locator(".jp-OutputArea").inner_text()


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What the live view showed, for the test of the saved notebook to compare with."""
    return {}


@pytest.fixture(scope="module")
def page(lab: Lab, browser: Browser, tiny_model_path: Path) -> Iterator[Page]:  # noqa: F811
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    sources = {"setup": SETUP.format(path=str(tiny_model_path)), "program": PROGRAM, "read": READ}
    notebook.cells = [nbformat.v4.new_code_cell(sources[name]) for name in CELLS]
    nbformat.write(notebook, lab.root / NOTEBOOK)
    opened = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        opened.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=SLOW * 1000)
        opened.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(
            timeout=SLOW * 1000
        )
        opened.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
        opened.locator(".lm-Menu-content").get_by_text("Run All Cells", exact=True).click()
        wait_for(lambda: "BRANCHES []" in _output(opened, "read"), SLOW, "the cells to run")
        yield opened
    finally:
        opened.close()


def test_clicking_an_allowed_candidate_shows_the_branch_and_the_next_cell_reads_it(
    page: Page, tmp_path: Path, artifacts_dir: Path, seen: dict[str, Any]
) -> None:
    view = _cell(page, "program").frame_locator(VIEW)
    view.locator(".rd-metric-status .rd-metric-value", has_text="done").wait_for(
        timeout=QUICK * 1000
    )
    original = view.locator(".rd-text").inner_text()
    chosen = next(option for option in OPTIONS if original.rstrip().endswith(option))

    # Click the generated token: its tooltip stays open, its allowed candidates clickable.
    view.locator(".rd-text .rd-token.rd-src-generated").first.click()
    tooltip = view.locator(".rd-tooltip")
    tooltip.wait_for(state="visible", timeout=QUICK * 1000)
    # The kernel tells more than was streamed: 20 candidates and the allowed-set size.
    allowed_count = tooltip.locator(".rd-tip-allowed-count")
    allowed_count.wait_for(timeout=SLOW * 1000)
    allowed_total = int(allowed_count.inner_text().split()[-1])
    assert allowed_total >= 3  # red, green, blue
    assert tooltip.locator(".rd-tip-top .rd-tip-row").count() == 20
    # And the likeliest of the tokens the grammar allowed, likeliest first, all allowed.
    allowed_rows = tooltip.locator(".rd-tip-allowed .rd-tip-row")
    assert allowed_rows.count() == min(20, allowed_total)
    assert tooltip.locator(".rd-tip-allowed .rd-forbidden").count() == 0
    shown = [float(p.rstrip("%")) for p in allowed_rows.locator(".rd-tip-prob").all_inner_texts()]
    assert shown == sorted(shown, reverse=True), shown
    explorable = tooltip.locator(".rd-explorable")
    assert explorable.count() > 0, tooltip.inner_html()
    assert tooltip.locator(".rd-forbidden.rd-explorable").count() == 0
    texts = [
        json.loads(t).replace("·", " ")
        for t in explorable.locator(".rd-tip-cand").all_inner_texts()
    ]
    # A candidate that starts another option (not a bare space on the way to any of them).
    pick = next(i for i, t in enumerate(texts) if t.strip() and not chosen.startswith(t.strip()))
    candidate = texts[pick]
    explorable.nth(pick).click()

    branch = view.locator(".rd-branch")
    branch.first.wait_for(timeout=SLOW * 1000)
    status = view.locator(".rd-explore-status")
    wait_for(lambda: "explored with" in status.inner_text(), QUICK, "the explore answer")
    branch_text = branch.first.locator(".rd-branch-text").inner_text()
    label = branch.first.locator(".rd-branch-label").inner_text()
    found = re.search(r"explored from token (\d+) of step \d+", label, re.IGNORECASE)
    assert found, label
    index = int(found.group(1))
    # The grammar was completed from the chosen token: the branch ends with another option.
    other = next(option for option in OPTIONS if branch_text.strip().endswith(option))
    assert other != chosen
    assert other.startswith(candidate.strip())
    # The original stays as it was, beside the branch (the view is wide enough for both).
    assert view.locator(".rd-text").inner_text() == original
    text_box = view.locator(".rd-text").bounding_box()
    branch_box = branch.first.bounding_box()
    assert text_box is not None
    assert branch_box is not None
    assert branch_box["x"] >= text_box["x"] + text_box["width"], (text_box, branch_box)
    assert branch_box["y"] < text_box["y"] + text_box["height"], (text_box, branch_box)
    # The branch's own capture and figures.
    assert branch.first.locator(".rd-branch-capture-name").inner_text() == "colour"
    assert branch.first.locator(".rd-branch-capture-value").inner_text() == other
    assert "tokens out" in branch.first.locator(".rd-branch-figures").inner_text()
    seen.update(original=original, branch=branch_text, label=label)

    # The branch's own token has its own tooltip and candidates (shown in the screenshot).
    branch.first.locator(".rd-token.rd-src-generated").first.click()
    tooltip.wait_for(state="visible", timeout=QUICK * 1000)
    assert tooltip.locator(".rd-tip-source").inner_text() == "generated"
    frame = _cell(page, "program").locator(VIEW).element_handle().content_frame()
    assert frame is not None
    wait_for(
        lambda: frame.evaluate(TOOLTIP_FITS_JS),
        QUICK,
        "the view's iframe to grow to its tooltip",
    )
    _cell(page, "program").locator(VIEW).screenshot(path=tmp_path / "explore.png")
    # For people to look at (git-ignored); docs/images/explore.png is one of these.
    shutil.copy(tmp_path / "explore.png", artifacts_dir / "lab-explore.png")

    # The next cell reads the branch back as a Model.
    _cell(page, "read").locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    wait_for(
        lambda: f'BRANCHES [["{other}", {index}]]' in _output(page, "read"),
        SLOW,
        "the read cell to print the branch",
        lambda: _output(page, "read"),
    )


def _saved_branches(path: Path) -> int:
    """How many explored nodes the rudder widgets of the saved notebook hold."""
    saved = nbformat.read(path, as_version=4)
    state = saved.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    finals = [entry["state"].get("_final") or "[]" for entry in state.values()]
    return sum(
        1
        for final in finals
        for message in json.loads(final)
        if message["type"] == "node_added" and message["node"].get("explored")
    )


def _kernels(server: Lab) -> list[Any]:
    with urllib.request.urlopen(f"{server.url}/api/kernels?token={server.token}") as answer:
        return list(json.load(answer))


def test_the_saved_notebook_reopened_shows_the_branch_and_says_a_live_kernel_is_needed(
    page: Page,
    lab: Lab,  # noqa: F811
    browser: Browser,
    seen: dict[str, Any],
    artifacts_dir: Path,
) -> None:
    assert seen, "the explore test runs first and records what it saw"
    page.locator(".lm-MenuBar-itemLabel").get_by_text("File", exact=True).click()
    page.locator(".lm-Menu-content").get_by_text("Save Notebook", exact=True).click()
    wait_for(
        lambda: _saved_branches(lab.root / NOTEBOOK) == 1,
        QUICK,
        "the saved notebook to hold the branch in its widget state",
    )
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Kernel", exact=True).click()
    page.locator(".lm-Menu-content").get_by_text("Shut Down Kernel", exact=True).click()
    wait_for(
        lambda: not _kernels(lab), QUICK, "the kernel to shut down", lambda: str(_kernels(lab))
    )
    page.close()

    # Opened again, in a new page: JupyterLab starts a new kernel, which knows nothing of it.
    reopened = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        reopened.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=SLOW * 1000)
        view = _cell(reopened, "program").frame_locator(VIEW)
        view.locator(".rd-metric-status .rd-metric-value", has_text="done").wait_for(
            timeout=QUICK * 1000
        )
        # Both, from the saved widget state: the original as it was, the branch beside it.
        assert view.locator(".rd-text").inner_text() == seen["original"]
        branch = view.locator(".rd-branch")
        assert branch.count() == 1
        assert branch.locator(".rd-branch-text").inner_text() == seen["branch"]
        assert branch.locator(".rd-branch-label").inner_text() == seen["label"]

        # Clicking a candidate says that a live kernel is needed (and asks nothing).
        view.locator(".rd-text .rd-token.rd-src-generated").first.click()
        tooltip = view.locator(".rd-tooltip")
        tooltip.wait_for(state="visible", timeout=QUICK * 1000)
        explorable = tooltip.locator(".rd-explorable")
        assert explorable.count() > 0, tooltip.inner_html()
        explorable.first.click()
        status = view.locator(".rd-explore-status")
        wait_for(
            lambda: "needs a live kernel" in status.inner_text(),
            QUICK,
            "the view to say that exploring needs a live kernel",
            lambda: status.inner_text(),
        )
        assert "pending" not in status.inner_text()
        assert view.locator(".rd-branch").count() == 1
    finally:
        # For people to look at (git-ignored), the failing page included.
        reopened.screenshot(path=artifacts_dir / "lab-explore-saved.png")
        reopened.close()
