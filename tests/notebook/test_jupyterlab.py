"""The widget in a real JupyterLab, driven by Debian's Chromium through Playwright.

One JupyterLab server (127.0.0.1, a random token, a temporary root, settings and
workspaces) and one browser serve the module. The notebook loads the tiny model, runs a
program with roles, ``gen`` and ``select``, then two short cells straight after it, then a
cell that waits (in the kernel) for a flag file, so that a test can look at the widget
while its cell is still running. Screenshots, the browser's console and the server's log
go to ``tests/artifacts/notebook/``.

While a cell runs the kernel's shell channel is busy: messages from the page (the
client's replay requests) are handled only after the cell, so a live view depends on the
widget's module keeping what the kernel sent. The assertion messages carry what each
view's ``window.rudder.state`` holds and the end of the console log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page
from playwright.sync_api import Error as PlaywrightError

VIEW = 'iframe[title="rudder run view"]'
STATUS = ".rd-metric-status .rd-metric-value"
NOTEBOOK = "rudder_lab.ipynb"
#: Seconds for things that need a kernel to start and import torch (2 slow cores).
SLOW = 120.0
#: Seconds for things the page does on its own.
QUICK = 30.0

SETUP = """\
import torch
torch.set_num_threads(1)
import transformers
transformers.utils.logging.disable_progress_bar()
import rudder
from rudder import models, gen, select, user, assistant
lm = models.Transformers({path!r})
"""
PROGRAM = """\
with user():
    lm += 'What is the capital of France? <img src=x onerror=alert(1)>'
with assistant():
    lm += 'Answer: ' + gen('answer', regex='[a-z]+', max_tokens=6) + '. Sure? '
    lm += select(['yes', 'no'], name='choice')
"""
SECOND = "second = lm + ' Second: ' + gen('second', regex='[a-z ]+', max_tokens=5)"
THIRD = "third = lm + ' Third: ' + select(['red', 'green', 'blue'], name='colour')"
LIVE = """\
import pathlib
import time
live = lm + ' Live: ' + gen('live', regex='[a-z ]+', max_tokens=6)
# The cell goes on until the test has looked at the live view (bounded).
flag = pathlib.Path({flag!r})
deadline = time.monotonic() + 120
while not flag.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""
#: Code cells, in order; the first loads the model and shows nothing.
CELLS = ("setup", "program", "second", "third", "live")
PROGRAM_CELLS = CELLS[1:]

#: What one view in the page holds (run inside the client's iframe).
STATE_JS = """() => {
  const r = window.rudder;
  if (!r) return null;
  const s = r.state;
  return {
    runId: s.runId, lastSeq: s.lastSeq, gaps: s.gaps, wantsReplayAfter: s.wantsReplayAfter,
    status: s.run ? s.run.status : null, nodes: s.nodes.size,
    tokens: document.querySelectorAll('.rd-token').length,
  };
}"""
#: Where the open tooltip lies in its view's viewport (the iframe shows only that).
TOOLTIP_BOX_JS = """() => {
  const tip = document.querySelector('.rd-tooltip');
  if (!tip || tip.hidden) return null;
  const box = tip.getBoundingClientRect();
  return {
    top: box.top, bottom: box.bottom, left: box.left, right: box.right,
    viewportHeight: window.innerHeight, viewportWidth: window.innerWidth,
    scrollHeight: document.documentElement.scrollHeight,
  };
}"""
#: Logs the client's messages to the host (client_ready, replay_request) in the console.
CLIENT_LOG_JS = """
window.addEventListener('message', (event) => {
  const data = event.data;
  if (data && data.envelope === 'rudder-view' && data.kind === 'client') {
    console.log('rudder client->host ' + JSON.stringify(data.message));
  }
});
"""


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, explain: Callable[[], str] = str
) -> Any:
    """Poll ``condition`` until it is truthy (its value), else fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the server -----------------------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def api_status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/status?token={self.token}", timeout=5
            ) as answer:
                return dict(json.load(answer))
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _settings(directory: Path) -> None:
    """User settings: every cell kept in the page (no windowing), no news, no update check,
    widget state saved with the notebook (JupyterLab's "Save Widget State Automatically")."""
    files = {
        "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("jupyterlab")
    root, settings, workspaces, runtime = (base / n for n in ("root", "settings", "ws", "rt"))
    for directory in (root, settings, workspaces, runtime):
        directory.mkdir()
    _settings(settings)
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        # Nothing that reaches the network: no news feed, no update check, no PyPI.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workspaces}",
    ]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "PYTHONUNBUFFERED": "1"}
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        wait_for(
            lambda: process.poll() is not None or server.api_status() is not None,
            SLOW,
            "JupyterLab's /api/status",
            server.log_tail,
        )
        assert process.poll() is None, f"JupyterLab exited:\n{server.log_tail()}"
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.copy(log, artifacts_dir / "jupyterlab-server.log")


# -- the notebook in the page ---------------------------------------------------------------


@dataclass
class Notebook:
    page: Page
    flag: Path
    artifacts: Path
    console: list[str] = field(default_factory=list)
    failures: int = 0

    def cell(self, name: str) -> Locator:
        return self.page.locator(".jp-Notebook .jp-CodeCell").nth(CELLS.index(name))

    def views(self, name: str) -> Locator:
        return self.cell(name).locator(VIEW)

    def view(self, name: str) -> FrameLocator:
        return self.cell(name).frame_locator(VIEW)

    def prompt(self, name: str) -> str:
        return self.cell(name).locator(".jp-InputPrompt").inner_text().strip()

    def execution_count(self, name: str) -> int | None:
        found = re.fullmatch(r"\[(\d+)\]:", self.prompt(name))
        return int(found.group(1)) if found else None

    def states(self) -> list[Any]:
        """What every view in the page holds."""
        out: list[Any] = []
        for frame in self.page.frames:
            if frame.url.startswith("about:srcdoc"):
                try:
                    out.append(frame.evaluate(STATE_JS))
                except PlaywrightError as error:  # a frame that went away while asked
                    out.append(f"unreadable: {error}")
        return out

    def explain(self) -> str:
        """What a failure message shows; the page is saved as lab-failure-N.png."""
        self.failures += 1
        shot = self.artifacts / f"lab-failure-{self.failures}.png"
        self.page.screenshot(path=shot, full_page=True)
        prompts = {name: self.prompt(name) for name in CELLS}
        console = "\n".join(self.console[-40:])
        return (
            f"prompts: {prompts}\nviews (window.rudder.state): {self.states()}\n"
            f"screenshot: {shot}\nconsole (last 40):\n{console}"
        )

    def evaluate(self, name: str, script: str) -> Any:
        """``script`` run in the cell's one view (None while there is none to ask)."""
        views = self.views(name)
        if views.count() != 1:
            return None
        try:
            frame = views.element_handle(timeout=1000).content_frame()
            return frame.evaluate(script) if frame is not None else None
        except PlaywrightError:  # the view was replaced while asked
            return None

    def view_state(self, name: str) -> Any:
        """What the cell's one view holds (None while there is none to ask)."""
        return self.evaluate(name, STATE_JS)

    def run_id(self, name: str) -> str:
        state = self.view_state(name)
        assert state is not None, f"no view to ask in cell {name!r}\n{self.explain()}"
        return str(state["runId"])

    def status(self, name: str) -> str:
        values = self.view(name).locator(STATUS)
        return values.first.inner_text() if values.count() else ""

    def wait_done(self, name: str, timeout: float = QUICK) -> None:
        """Wait for the cell's one view to say "done" (its cell has finished already)."""
        self.cell(name).scroll_into_view_if_needed()
        wait_for(
            lambda: self.views(name).count() == 1 and self.status(name) == "done",
            timeout,
            f"one view with status 'done' in cell {name!r}",
            self.explain,
        )

    def wait_executed(self, names: tuple[str, ...], after: dict[str, int | None]) -> None:
        """Wait until each cell shows an execution count newer than ``after``'s."""

        def newer() -> bool:
            for name in names:
                count, old = self.execution_count(name), after.get(name)
                if count is None or (old is not None and count <= old):
                    return False
            return True

        wait_for(newer, SLOW, f"cells {names} to finish", self.explain)

    def run_all(self) -> None:
        self.page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
        self.page.locator(".lm-Menu-content").get_by_text("Run All Cells", exact=True).click()

    def rerun(self, name: str, keys: str = "Shift+Enter") -> None:
        """Select the cell (command mode) and run it: Shift+Enter selects the next cell,
        Control+Enter stays."""
        self.cell(name).locator(".jp-InputPrompt").click()
        self.page.keyboard.press(keys)

    def screenshot(self, stem: str, view_of: str | None = None) -> None:
        self.page.screenshot(path=self.artifacts / f"{stem}.png", full_page=True)
        if view_of is not None:
            self.views(view_of).first.screenshot(path=self.artifacts / f"{stem}-widget.png")


def write_notebook(path: Path, model: Path, flag: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    sources = {
        "setup": SETUP.format(path=str(model)),
        "program": PROGRAM,
        "second": SECOND,
        "third": THIRD,
        "live": LIVE.format(flag=str(flag)),
    }
    notebook.cells = [nbformat.v4.new_code_cell(sources[name]) for name in CELLS]
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def notebook(
    lab: Lab, browser: Browser, tiny_model_path: Path, artifacts_dir: Path
) -> Iterator[Notebook]:
    flag = lab.root / "live.flag"
    flag.touch()  # Run All goes straight through the live cell
    write_notebook(lab.root / NOTEBOOK, tiny_model_path, flag)
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    opened = Notebook(page, flag, artifacts_dir)
    page.on("console", lambda m: opened.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: opened.console.append(f"pageerror: {e}"))
    page.add_init_script(CLIENT_LOG_JS)
    try:
        page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=SLOW * 1000)
        wait_for(
            lambda: page.locator(".jp-Notebook .jp-CodeCell").count() == len(CELLS),
            SLOW,
            "the notebook's cells",
        )
        status = page.locator(".jp-StatusBar-TextItem", has_text="| Idle")
        status.first.wait_for(timeout=SLOW * 1000)
        opened.run_all()
        opened.wait_executed(CELLS, {})
        yield opened
    finally:
        flag.touch()  # never leave the kernel waiting
        (artifacts_dir / "jupyterlab-console.log").write_text("\n".join(opened.console))
        page.close()


# -- tests ----------------------------------------------------------------------------------


def test_the_widget_extensions_are_installed() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    for extension in ("anywidget", "@jupyter-widgets/jupyterlab-manager"):
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(extension)), "")
        assert "enabled" in line, text
        assert "OK" in line, text


def test_run_all_ends_done_in_every_cell(notebook: Notebook) -> None:
    assert notebook.views("setup").count() == 0
    for name in PROGRAM_CELLS:
        notebook.wait_done(name)
        view = notebook.view(name)
        assert view.locator(".rd-token").count() > 0, notebook.explain()
        assert view.locator(".rd-token.rd-src-generated").count() > 0, notebook.explain()
    notebook.screenshot("lab-run-all", view_of="program")


def test_the_view_shows_the_program_and_tokens(notebook: Notebook) -> None:
    notebook.wait_done("program")
    view = notebook.view("program")
    text = view.locator(".rd-text").inner_text()
    assert "What is the capital of France? <img src=x onerror=alert(1)>" in text
    assert view.locator(".rd-text img").count() == 0
    assert view.locator(".rd-role").all_text_contents() == ["user", "assistant"]
    assert view.locator(".rd-token.rd-src-forced").count() > 0
    # The later cells continue the program: their views show its text too.
    notebook.wait_done("third")
    third = notebook.view("third").locator(".rd-text").inner_text()
    assert "What is the capital of France?" in third
    assert "Third:" in third


def test_hovering_a_generated_token_shows_its_candidates(notebook: Notebook) -> None:
    notebook.wait_done("program")
    view = notebook.view("program")
    view.locator(".rd-token.rd-src-generated").first.hover()
    tooltip = view.locator(".rd-tooltip")
    tooltip.wait_for(state="visible", timeout=QUICK * 1000)
    assert tooltip.locator(".rd-tip-row").count() > 0
    assert tooltip.locator(".rd-tip-source").inner_text() == "generated"

    # The iframe shows its own viewport only: the tooltip must lie wholly inside it
    # (the view grows, or places the tooltip where there is room), else its rows are cut.
    def inside() -> bool:
        box = notebook.evaluate("program", TOOLTIP_BOX_JS)
        # (a pixel of slack: layout boxes are fractional, the iframe's height is not)
        return bool(box) and box["top"] >= -1 and box["bottom"] <= box["viewportHeight"] + 1

    try:
        wait_for(
            inside,
            10,
            "the tooltip to fit in the view's iframe",
            lambda: (
                f"tooltip box: {notebook.evaluate('program', TOOLTIP_BOX_JS)}\n"
                + notebook.explain()
            ),
        )
    finally:
        notebook.screenshot("lab-tooltip", view_of="program")
        notebook.page.mouse.move(0, 0)


def test_rerunning_cells_replaces_their_outputs(notebook: Notebook) -> None:
    names = ("second", "third")
    before = {name: notebook.execution_count(name) for name in names}
    old_runs = {notebook.run_id(name) for name in names}
    # Shift+Enter runs the selected cell and selects the next: two cells in quick succession.
    notebook.rerun("second")
    notebook.page.keyboard.press("Shift+Enter")
    notebook.wait_executed(names, before)
    for name in names:
        notebook.wait_done(name)
        assert notebook.views(name).count() == 1, notebook.explain()
        assert notebook.cell(name).locator(".jp-OutputArea-output").count() == 1
        assert notebook.run_id(name) not in old_runs
    notebook.screenshot("lab-rerun", view_of="second")


def test_the_view_streams_while_its_cell_runs(notebook: Notebook) -> None:
    old_run = notebook.run_id("live")
    before = notebook.execution_count("live")
    notebook.flag.unlink()
    notebook.rerun("live", "Control+Enter")
    try:
        # After generating, the cell holds the kernel until the flag file appears: the
        # messages reach the page while it runs, and the view must show them.
        wait_for(
            lambda: (
                notebook.prompt("live") == "[*]:"
                and notebook.views("live").count() == 1
                and (notebook.view_state("live") or {}).get("runId", old_run) != old_run
            ),
            QUICK,
            "the live cell to run and show a new view",
            notebook.explain,
        )
        notebook.cell("live").scroll_into_view_if_needed()
        live = notebook.view("live")
        wait_for(
            lambda: (
                live.locator(".rd-token.rd-src-generated").count() > 0
                and "Live:" in live.locator(".rd-text").inner_text()
            ),
            QUICK,
            "generated tokens in the view while its cell still runs",
            notebook.explain,
        )
        assert notebook.prompt("live") == "[*]:"
        assert notebook.status("live") in ("running", "generating"), notebook.explain()
        notebook.screenshot("lab-live", view_of="live")
    finally:
        notebook.flag.touch()
    notebook.wait_executed(("live",), {"live": before})
    notebook.wait_done("live")
