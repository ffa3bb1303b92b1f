"""The terminal view as users meet it: a script in a real terminal (tmux) and in a pipe.

tmux gives the script a terminal of a fixed size; ``capture-pane`` reads the screen while
the script generates and after it ends. The pipe tests read what a log or CI would hold.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROGRAM = Path(__file__).with_name("program.py")
ESCAPE = re.compile(r"\x1b")


def program_lines(result: dict[str, str]) -> list[str]:
    """What the view shows of program.py, the user's prints where the program made them."""
    return [
        "── system ──",
        "You are terse.",
        "── user ──",
        "Where is Paris?",
        "USER LINE ONE",
        "── assistant ──",
        f"{result['answer']}.",
        "USER LINE TWO",
        f" Sure? {result['sure']}",
        "USER LINE THREE",
    ]


def run_piped(tmp_path: Path, view: str | None) -> tuple[str, dict[str, str]]:
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("RUDDER_VIEW", None)
    if view is not None:
        env["RUDDER_VIEW"] = view
    done = subprocess.run(
        [sys.executable, str(PROGRAM), str(result)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout, json.loads(result.read_text(encoding="utf-8"))


def test_in_a_pipe_the_view_is_off_unless_asked_for(tmp_path: Path) -> None:
    out, _ = run_piped(tmp_path, None)
    assert out == "USER LINE ONE\nUSER LINE TWO\nUSER LINE THREE\n"


def test_append_only_output_in_a_pipe_has_every_character_once_in_order(tmp_path: Path) -> None:
    out, result = run_piped(tmp_path, "terminal")
    assert not ESCAPE.search(out), "escape codes in a pipe"
    lines = out.splitlines()
    assert lines[:10] == program_lines(result)
    assert out.count(result["answer"]) == 1
    assert lines[10].startswith("rudder: tokens ")  # the default run's figures, at exit
    assert len(lines) == 11


# -- a real terminal ----------------------------------------------------------------------------


class Tmux:
    """One tmux server of its own (a private socket) with one window of a fixed size."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=True,
            timeout=30,
        )
        return done.stdout

    def screen(self, *, escapes: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "main")

    def wait_for(self, found: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if found(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed what was awaited:\n{screen}")
            time.sleep(0.05)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is missing: scripts/install-test-tools installs it"
    server = Tmux(tmp_path / "tmux.sock")
    yield server
    subprocess.run(["tmux", "-S", str(server.socket), "kill-server"], check=False)


def start(tmux: Tmux, tmp_path: Path, delay: float, *options: str) -> Path:
    result = tmp_path / "result.json"
    command = (
        f"env -u RUDDER_VIEW TERM=xterm-256color PYTHONIOENCODING=utf-8 "
        f"{sys.executable} {PROGRAM} {result} {delay} {' '.join(options)}; "
        "echo EXITED $?; sleep 600"
    )
    tmux("new-session", "-d", "-s", "main", "-x", "100", "-y", "30", command)
    return result


def test_live_view_updates_in_place_and_keeps_the_users_prints(tmux: Tmux, tmp_path: Path) -> None:
    result_path = start(tmux, tmp_path, delay=0.08)
    during = tmux.wait_for(lambda screen: "generating ·" in screen)
    # While generating: the run so far, the user's first print after the text it followed,
    # and the status line under the growing answer.
    lines = [line.rstrip() for line in during.splitlines() if line.strip()]
    assert lines[:5] == [
        "── system ──",
        "You are terse.",
        "── user ──",
        "Where is Paris?",
        "USER LINE ONE",
    ]
    status = next(line for line in lines if "generating ·" in line)
    assert status.startswith("rudder · run default · generating · ")
    assert "forced generated" in status

    final = tmux.wait_for(lambda screen: "EXITED" in screen)
    result = json.loads(result_path.read_text(encoding="utf-8"))
    lines = [line.rstrip() for line in final.splitlines() if line.strip()]
    assert lines[:10] == program_lines(result)
    assert lines[10].startswith("rudder: tokens ")
    assert lines[-1] == "EXITED 0"
    assert "generating ·" not in final  # the live region is gone, nothing left behind
    assert final.count(result["answer"]) == 1


def test_warnings_and_library_logs_during_a_live_generation_get_lines_of_their_own(
    tmux: Tmux, tmp_path: Path
) -> None:
    result_path = start(tmux, tmp_path, 0.05, "warn")
    final = tmux.wait_for(lambda screen: "EXITED" in screen)
    result = json.loads(result_path.read_text(encoding="utf-8"))
    lines = [line.rstrip() for line in final.splitlines() if line.strip()]
    warning = next(i for i, line in enumerate(lines) if "A LIBRARY WARNING" in line)
    assert lines[warning].endswith("FutureWarning: A LIBRARY WARNING")
    assert (
        lines[warning + 1].strip()
        == 'warnings.warn("A LIBRARY WARNING", FutureWarning, stacklevel=1)'
    )
    assert "library: A LIBRARY LOG LINE" in lines
    # The run's text is whole around them: the warnings are out of the way of every line
    # of model text, and no status line is left behind.
    shown = [line for line in lines if "LIBRARY" not in line and "warnings.warn" not in line]
    assert shown[:10] == program_lines(result)
    assert shown[10].startswith("rudder: tokens ")
    assert "generating ·" not in final


def test_live_view_colours_generated_tokens(tmux: Tmux, tmp_path: Path) -> None:
    result_path = start(tmux, tmp_path, delay=0.0)
    tmux.wait_for(lambda screen: "EXITED" in screen)
    answer = json.loads(result_path.read_text(encoding="utf-8"))["answer"]
    coloured = tmux.screen(escapes=True)
    line = next(line for line in coloured.splitlines() if answer[:12] in line)
    # Generated tokens are green (SGR 32); the program's own text is not coloured.
    assert "\x1b[32m" in line
    plain = next(line for line in coloured.splitlines() if "Where is Paris?" in line)
    assert "\x1b[32m" not in plain
    assert "\x1b[34m" not in plain


def test_ipython_in_a_terminal_shows_each_cell_as_a_run(tmux: Tmux) -> None:
    command = (
        f"env -u RUDDER_VIEW TERM=xterm-256color {sys.executable} -m IPython --no-banner "
        "--colors=NoColor --simple-prompt"
    )
    tmux("new-session", "-d", "-s", "main", "-x", "120", "-y", "40", command)
    tmux.wait_for(lambda screen: "In [1]:" in screen)
    tmux("send-keys", "-t", "main", "import rudder; from rudder import models, gen", "Enter")
    tmux.wait_for(lambda screen: "In [2]:" in screen)
    program = "lm = models.Mock(['Hello there.'], echo=True) + 'Say: ' + gen('x', max_tokens=9)"
    tmux("send-keys", "-t", "main", program, "Enter")
    tmux.wait_for(lambda screen: "In [3]:" in screen)
    tmux("send-keys", "-t", "main", "print('CAPTURED', repr(lm['x']))", "Enter")
    screen = tmux.wait_for(lambda screen: "In [4]:" in screen)
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    captured = next(line for line in lines if line.startswith("CAPTURED "))
    said = ast.literal_eval(captured.removeprefix("CAPTURED "))
    at = lines.index(f"In [2]: {program}")
    assert lines[at + 1] == f"Say: {said}"
    assert lines[at + 2].startswith("✓ run cell 2: done · tokens ")


# -- hostile text -------------------------------------------------------------------------------

HOSTILE_PROGRAM = PROGRAM.with_name("hostile.py")
#: Control characters the hostile program's text holds, which must never reach the terminal
#: raw (as UTF-8: ESC, BEL, CSI, OSC, ST, RLO).
RAW_CONTROLS = (b"\x1b[2J", b"\x1b]0;", b"\x07", b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x9c")
RLO = "\u202e".encode()
SHOWN = (
    r"\x1b[2J\x1b]0;pwned\x07 \x9b31m\x9d0;title\x9c abc\u202etxt.exe "
    "<|im_start|>system </script><b>bold</b>"
)
SPLIT = "日本語 🎉 café"


def visible(text: str) -> str:
    """The view's escapes, spelled out here rather than imported from the code under test."""
    out = []
    for char in text:
        code = ord(char)
        if code in (9, 10):
            out.append(char)
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code == 0x202E:
            out.append("\\u202e")
        else:
            out.append(char)
    return "".join(out)


def test_hostile_text_reaches_a_pipe_as_visible_text(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "RUDDER_VIEW": "terminal"}
    done = subprocess.run(
        [sys.executable, str(HOSTILE_PROGRAM), str(result)],
        capture_output=True,
        env=env,
        timeout=120,
        check=True,
    )
    raw = done.stdout
    for control in (*RAW_CONTROLS, b"\x1b", RLO):
        assert control not in raw, f"{control!r} written raw to the pipe"
    said = json.loads(result.read_text(encoding="utf-8"))["said"]
    lines = raw.decode("utf-8").splitlines()
    assert lines == [
        "BEFORE THE RUN",
        "── user ──",
        f"Quote: {SHOWN}",
        "── assistant ──",
        f"{visible(said)} Then: {SPLIT}",
        lines[5],
    ]
    assert lines[5].startswith(f"✓ run name {SHOWN}: done · tokens ")


def test_hostile_text_in_a_terminal_is_shown_and_never_obeyed(tmux: Tmux, tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    written = tmp_path / "written.bin"
    command = (
        f"env -u RUDDER_VIEW TERM=xterm-256color PYTHONIOENCODING=utf-8 "
        f"{sys.executable} {HOSTILE_PROGRAM} {result}; echo EXITED $?; sleep 600"
    )
    tmux("new-session", "-d", "-s", "main", "-x", "200", "-y", "40", "sleep 600")
    tmux("set-option", "-t", "main", "allow-rename", "on")
    tmux("pipe-pane", "-t", "main", "-o", f"cat > {written}")  # every byte the pane gets
    tmux("respawn-pane", "-k", "-t", "main", command)
    screen = tmux.wait_for(lambda screen: "EXITED" in screen)
    raw = written.read_bytes()
    for control in (*RAW_CONTROLS, RLO):
        assert control not in raw, f"{control!r} written raw to the terminal"
    said = json.loads(result.read_text(encoding="utf-8"))["said"]
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    # Nothing cleared the screen: the line printed before the run is still there.
    assert lines[0] == "BEFORE THE RUN"
    assert lines[1:4] == ["── user ──", f"Quote: {SHOWN}", "── assistant ──"]
    assert f"{visible(said)} Then: {SPLIT}" in "".join(lines[4:6])
    assert any(line.startswith(f"✓ run name {SHOWN}: done") for line in lines)
    assert "generating ·" not in screen
    # No escape sequence set the window's title.
    assert "pwned" not in tmux("display-message", "-p", "-t", "main", "#{pane_title}")
