"""The peer: guidance 0.3.x in a virtual environment of its own, made on first use.

rudder and guidance share their function names and pin different llguidance versions, so
they cannot share an interpreter. The environment (about 1.2 GB) lives outside the clone,
in the user's cache directory (``$XDG_CACHE_HOME/rudder/benchmark-peer``, by default
``~/.cache/rudder/benchmark-peer``), or where ``RUDDER_BENCH_PEER`` says, and is reused while
it holds the pinned versions below.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ENVIRONMENT_VARIABLE = "RUDDER_BENCH_PEER"
# Installed in this order: PyTorch's CPU build first, or guidance's dependencies would pull
# CUDA packages. transformers is pinned to the version guidance 0.3.1's extra names.
INSTALL_STEPS: tuple[tuple[str, ...], ...] = (
    ("torch==2.13.0",),
    ("guidance==0.3.1", "transformers==4.53.3"),
)
_MARKER = "rudder-peer.json"


def peer_location() -> Path:
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "rudder" / "benchmark-peer"


def peer_python(location: Path) -> Path:
    return location / "bin" / "python"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_peer(location: Path | None = None, say: Callable[[str], None] = _say) -> Path:
    """The peer's interpreter, after creating its environment if it is missing or stale."""
    location = location or peer_location()
    marker = location / _MARKER
    wanted = [list(step) for step in INSTALL_STEPS]
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return peer_python(location)
    if location.exists():
        if not (location / "pyvenv.cfg").is_file():
            raise RuntimeError(f"{location} exists and is not a virtual environment; move it")
        say(f"peer: {location} holds other versions than {wanted}; making it again")
        shutil.rmtree(location)
    say(f"peer: creating a virtual environment for guidance at {location}")
    subprocess.run([sys.executable, "-m", "venv", str(location)], check=True)
    log = location / "install.log"
    for step in INSTALL_STEPS:
        say(f"peer: installing {' '.join(step)} (this takes a minute or two)")
        started = time.perf_counter()
        with log.open("a") as output:
            done = subprocess.run(
                [str(peer_python(location)), "-m", "pip", "install", "--disable-pip-version-check",
                 *step],
                stdout=output, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"pip could not install {step} in {location}:\n{tail}")
        say(f"peer: installed in {time.perf_counter() - started:.0f} s")
    marker.write_text(json.dumps(wanted) + "\n")
    return peer_python(location)
