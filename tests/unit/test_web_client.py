"""The client's own checks, from the test command: its Vitest suite passes, and the built
files committed in the Python package (``rudder/visual/static``) are what the sources in
``web/`` build to, so that ``pip install`` of the repository gives the current client.
(``tsc`` over all of ``web/src`` runs in test_protocol_schema.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from web_tools import ROOT, WEB, run_node

VITE = WEB / "node_modules" / "vite" / "bin" / "vite.js"
VITEST = WEB / "node_modules" / "vitest" / "vitest.mjs"
STATIC = ROOT / "src" / "rudder" / "visual" / "static"


@pytest.mark.parametrize("mode", ["client", "widget", "viewer"])
def test_committed_build_is_current(mode: str, tmp_path: Path) -> None:
    result = run_node(VITE, "build", "--mode", mode, "--logLevel", "warn", "--outDir", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    built = (tmp_path / f"{mode}.js").read_text()
    committed = STATIC / f"{mode}.js"
    assert committed.exists(), f"{committed} is missing: run `npm run build --prefix web`"
    assert committed.read_text() == built, (
        f"{committed.relative_to(ROOT)} is not what web/src builds to: run "
        "`npm run build --prefix web` and commit the result"
    )


def test_vitest_suite_passes() -> None:
    result = run_node(VITEST, "run", "--reporter", "dot")
    assert result.returncode == 0, "the client's Vitest suite failed:\n" + result.stdout[-4000:]
