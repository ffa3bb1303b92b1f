"""``rudder demo``: the showcase program as a command, its output, report and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rudder import __main__ as command
from rudder import _demo
from rudder._demo import City


def _rudder(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rudder", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _printed_record(stdout: str) -> object:
    """The record the demo prints as indented JSON, from its ``{`` line to its ``}`` line."""
    lines = stdout.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    return json.loads("\n".join(lines[start : end + 1]))


def test_the_demo_prints_a_valid_record_and_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = _rudder("demo", "--city", "Rome", "--output", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = City.model_validate(_printed_record(result.stdout))
    assert record.name == "Rome"
    assert record.country == "Italy"
    # The terminal view shows the program first; the captures come after it.
    assert result.stdout.index('Record: {"name":"Rome"') < result.stdout.index("Captures")
    assert "country: Italy" in result.stdout
    assert "founded: 753 BC" in result.stdout
    for figure in ("prompt tokens", "output tokens", "forced share", "time to first token"):
        assert figure in result.stdout
    assert "built-in model" in result.stderr
    assert f"Report: {report}" in result.stdout
    page = report.read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>")
    assert "Rome" in page


def test_a_model_that_cannot_be_loaded_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    result = _rudder("demo", "--model", str(missing), "--output", "r.html", cwd=tmp_path)
    assert result.returncode == 2
    assert "rudder demo:" in result.stderr
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_unknown_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main(["demo", "--colour", "red"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --colour red" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [["--help"], ["demo", "--help"]])
def test_help(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main(arguments)
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "demo" in printed
    if arguments[0] == "demo":
        for option in ("--city", "--model", "--device", "--seed", "--output"):
            assert option in printed


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_missing_extras_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real_find_spec = _demo.importlib.util.find_spec

    def without_torch(name: str, *args: object) -> object:
        return None if name == "torch" else real_find_spec(name)

    monkeypatch.setattr(_demo.importlib.util, "find_spec", without_torch)
    args = command.parser().parse_args(["demo", "--output", str(tmp_path / "r.html")])
    assert _demo.run(args) == 2
    err = capsys.readouterr().err
    assert "needs torch" in err
    assert "pip install 'rudder[transformers]'" in err
    assert "pip install torch==2.13.0 && pip install -e '.[transformers]'" in err
