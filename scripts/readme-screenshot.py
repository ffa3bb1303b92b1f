"""Make the README's picture of the view: the demo's program on the built-in model,
exported to HTML, opened in Debian's Chromium with the tooltip of a generated token shown.

Run it with `python scripts/readme-screenshot.py` (the test extra: transformers and
Playwright); it writes docs/images/view.png.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "images" / "view.png"


def main() -> None:
    import torch
    from playwright.sync_api import sync_playwright

    import rudder
    from rudder import models
    from rudder._chromium import launch_chromium
    from rudder._demo import program

    torch.set_num_threads(1)
    rudder.settings.view = "none"
    lm = program(models.Transformers(device="cpu"), "Paris")
    page_path = Path(tempfile.mkdtemp()) / "view.html"
    rudder.export_html(lm, page_path)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 900, "height": 400}, device_scale_factor=1)
        page.goto(page_path.as_uri())
        page.wait_for_selector('.rudder[data-status="done"]')
        # The first generated token of the free text: a real choice, with real candidates.
        summary = page.locator(".rd-text .rd-token.rd-src-generated")
        summary.nth(3).hover()
        page.wait_for_selector(".rd-tooltip", state="visible")
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT), full_page=False)
        browser.close()
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
