"""The README's code runs, its commands are the ones CI uses, and the examples run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_block_runs(index: int) -> None:
    code = _blocks("python")[index]
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "readme"})


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_command() -> None:
    commands = [block.strip() for block in _blocks("bash")]
    assert len(commands) == 2
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command in ci_script


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_example_runs(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
