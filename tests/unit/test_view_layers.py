"""The view layer's packages import downwards only: stream, then html and terminal (each on
stream alone), then notebook. Each is imported alone, in a fresh interpreter, and must load
nothing from a package above it (nor from a sibling it does not build on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rudder

SRC = str(Path(rudder.__file__).parent.parent)
PACKAGES = ("stream", "html", "terminal", "notebook")
#: What each package may load of the others.
BUILDS_ON = {
    "stream": set(),
    "html": {"stream"},
    "terminal": {"stream"},
    "notebook": {"stream", "html", "terminal"},
}


def loaded_view_packages(module: str) -> set[str]:
    """The view packages loaded by importing ``module`` (and everything it imports) alone,
    ``rudder`` itself left out: its import installs every view's hooks."""
    code = (
        "import importlib, json, sys, types\n"
        # rudder/__init__ registers the views at import: load the package's files without it.
        "package = types.ModuleType('rudder'); package.__path__ = [sys.argv[2] + '/rudder']\n"
        "sys.modules['rudder'] = package\n"
        "importlib.import_module(sys.argv[1])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rudder.visual.'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", code, module, SRC],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    names = json.loads(done.stdout.splitlines()[-1])
    return {name.split(".")[2] for name in names if name.count(".") >= 3}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_view_package_loads_nothing_from_a_layer_above_it(package: str) -> None:
    modules = sorted(
        f"rudder.visual.{package}.{path.stem}"
        for path in (Path(SRC) / "rudder" / "visual" / package).glob("_*.py")
        if path.stem != "__init__"
    )
    assert modules, f"no modules in rudder.visual.{package}"
    for module in modules:
        loaded = loaded_view_packages(module) - {package}
        assert loaded <= BUILDS_ON[package], f"{module} loads {sorted(loaded)}"


def test_the_check_sees_what_a_module_builds_on() -> None:
    assert loaded_view_packages("rudder.visual.notebook._widget") == {
        "notebook",
        "html",
        "stream",
    }
    assert loaded_view_packages("rudder.visual.stream._protocol") == {"stream"}
