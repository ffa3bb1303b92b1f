"""Running the client's pinned node tools (``web/node_modules``, from ``npm ci --prefix web``,
which ``.ci/run`` does). When they are missing the tests fail with the command to run; they
never skip."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
TIMEOUT_S = 180


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("`node` is not on PATH: install Node.js and npm (.ci/run does it with apt-get)")
    return path


def require_node_modules() -> None:
    """The pinned devDependencies are installed, at the versions package.json pins."""
    pinned = json.loads((WEB / "package.json").read_text())["devDependencies"]
    for name, version in pinned.items():
        manifest = WEB / "node_modules" / name / "package.json"
        installed = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        if installed != version:
            pytest.fail(
                f"web/node_modules has {name} {installed or 'missing'}, package.json pins "
                f"{version}: run `npm ci --prefix web`"
            )


def run_node(*args: str | Path) -> subprocess.CompletedProcess[str]:
    require_node_modules()
    return subprocess.run(
        [node(), *map(str, args)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
