"""The terminal view in-process: what it writes for real programs on a Mock, and how rich
renders it at a fixed width.

The view follows runs on the process's bus, exactly as it does for a script; its output
goes to a string instead of a terminal.
"""

from __future__ import annotations

import io
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

import rudder
from rudder import assistant, gen, models, select, user
from rudder._shown_text import visible
from rudder.visual.stream._view_state import Piece, text_piece
from rudder.visual.terminal._environment import Environment, View, chosen_view
from rudder.visual.terminal._terminal import TerminalView
from rudder.visual.terminal._terminal_output import HELD_TOKENS, AppendOutput, LiveOutput
from rudder.visual.terminal._terminal_text import piece_text

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def plain() -> Iterator[tuple[TerminalView, io.StringIO]]:
    stream = io.StringIO()
    view = TerminalView(AppendOutput(stream))
    yield view, stream
    view.close()


def run_shown(view: TerminalView, name: str, program: Callable[[], models.Model]) -> models.Model:
    """Run ``program()`` in a new run the view follows; returns its Model."""
    with rudder.run(name) as run:
        view.follow(run.id)
        lm = program()
    view.wait_idle()
    return lm


def test_append_only_output_is_the_program_text_with_role_labels_and_figures(
    plain: tuple[TerminalView, io.StringIO],
) -> None:
    view, stream = plain

    def program() -> models.Model:
        lm = models.Mock(["Paris is lovely.", "yes"], echo=True)
        with user():
            lm += "Where is Paris?"
        with assistant():
            lm += "Answer: " + gen("answer", stop=".", max_tokens=20) + ". Sure? "
            lm += select(["yes", "no"], name="sure")
        return lm

    lm = run_shown(view, "chat", program)
    written = stream.getvalue()
    assert "\x1b" not in written
    lines = written.splitlines()
    assert lines[:4] == [
        "── user ──",
        "Where is Paris?",
        "── assistant ──",
        f"Answer: {lm['answer']}. Sure? {lm['sure']}",
    ]
    assert lines[4].startswith("✓ run chat: done · tokens ")
    assert "token reduction" in lines[4]
    assert len(lines) == 5


def test_a_branch_and_a_new_program_are_marked_and_nothing_is_written_twice(
    plain: tuple[TerminalView, io.StringIO],
) -> None:
    view, stream = plain

    def program() -> models.Model:
        base = models.Mock(["abc"], echo=True) + "Base text."
        base + " first"  # a branch the program drops
        made.append(base + " second")
        models.Mock(["abc"], echo=True) + "Other."
        return made[0]

    made: list[models.Model] = []
    second = run_shown(view, "branches", program)
    lines = stream.getvalue().splitlines()
    assert lines[:5] == [
        "Base text. first",
        "↳ continues from “…Base text.”",
        " second",
        "── a new program ──",
        "Other.",
    ]
    # A later run carries the earlier nodes again (its stream is self-contained): only
    # its own step is written, marked as continuing the earlier text.
    stream.truncate(0)
    stream.seek(0)
    run_shown(view, "later", lambda: second + " More.")
    later = stream.getvalue().splitlines()
    assert later[:2] == ["↳ continues from “…Base text. second”", " More."]
    assert later[2].startswith("✓ run later: done")


def test_hidden_steps_show_their_size_and_echo_off_steps_nothing(
    plain: tuple[TerminalView, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    view, stream = plain

    def program() -> models.Model:
        lm = models.Mock(["secret words"], echo=True) + "Context: "
        with rudder.hidden():
            lm += "a secret"
        monkeypatch.setattr(rudder.settings, "echo", False)
        lm += " muted"
        monkeypatch.setattr(rudder.settings, "echo", True)
        return lm + " shown"

    run_shown(view, "hiding", program)
    first = stream.getvalue().splitlines()[0]
    assert first == "Context: [hidden: 8 characters] shown"


def test_a_streamed_generation_is_written_once_in_order_despite_backtracking() -> None:
    stream = io.StringIO()
    output = AppendOutput(stream)
    output.generation_started("run")
    tokens = [Text(f"t{i} ") for i in range(HELD_TOKENS + 5)]
    output.tokens(tokens)
    assert stream.getvalue() == "t0 t1 t2 t3 t4 "  # the rest is held for backtracking
    output.backtrack(3)
    output.tokens([Text("end")])
    output.generation_ended()
    kept = [t.plain for t in tokens[: len(tokens) - 3]]
    assert stream.getvalue() == "".join(kept) + "end"
    assert output.lost_tokens == 0


def test_user_output_never_shares_a_line_with_run_text() -> None:
    stream = io.StringIO()
    output = AppendOutput(stream)
    output.text(Text("run text"))
    output.user_write("user ", stream)
    output.user_write("line\n", stream)
    output.text(Text("more run text"))
    output.user_write("partial", stream)
    output.text(Text(" after"))
    assert stream.getvalue() == "run text\nuser line\nmore run text\npartial\n after"


def test_model_text_cannot_move_the_cursor_or_restyle_the_terminal() -> None:
    hostile = "red \x1b[31mtext\x1b[2J\r[bold]not markup[/bold]"
    assert visible(hostile) == "red \\x1b[31mtext\\x1b[2J\\x0d[bold]not markup[/bold]"
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system="standard")
    console.print(piece_text(text_piece(hostile), "type"))
    written = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in written
    assert "\x1b[31m" not in written
    assert "[bold]not markup[/bold]" in written


def test_tokens_are_coloured_by_type_or_by_probability() -> None:
    from rudder.trace._records import TokenRecord

    def token(source: str, prob: float) -> Piece:
        record = TokenRecord(id=1, text="x", source=source, prob=prob, latency_s=0.0)
        return Piece("token", "x", record)

    by_type = [piece_text(token(s, 0.1), "type").style for s in ("input", "forced", "generated")]
    assert by_type == ["", "blue", "green"]
    by_probability = [
        piece_text(token("generated", p), "probability").style for p in (0.95, 0.6, 0.3, 0.01)
    ]
    assert by_probability == ["green", "yellow", "dark_orange", "red"]
    console = Console(file=io.StringIO(), width=40, force_terminal=True, color_system="standard")
    console.print(piece_text(token("generated", 0.5), "type"), end="")
    assert console.file.getvalue() == "\x1b[32mx\x1b[0m"  # type: ignore[attr-defined]


def test_the_live_region_shows_the_unfinished_line_the_generation_and_a_status() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=30, height=6, force_terminal=True, color_system=None)
    output = LiveOutput(screen, "type", console=console)
    try:
        output.text(Text("settled line\nunfinished "))
        output.generation_started("rudder · run demo")
        output.tokens([Text("one "), Text("two "), Text("three")])
        output.backtrack(1)
        recorder = Console(file=io.StringIO(), width=30, height=6, color_system=None)
        recorder.print(output._region())
        region = recorder.file.getvalue().splitlines()  # type: ignore[attr-defined]
        assert region == ["unfinished one two ", "rudder · run demo · generatin…"]
        wide = Console(file=io.StringIO(), width=80, height=6, color_system=None)
        output.console = wide
        wide.print(output._region())
        status = wide.file.getvalue().splitlines()[-1]  # type: ignore[attr-defined]
        assert status == "rudder · run demo · generating · 2 tokens  forced generated"
        output.console = console
    finally:
        output.close()
    settled = ANSI.sub("", screen.getvalue())
    assert "settled line" in settled
    assert settled.rstrip().endswith("unfinished one two")


def test_the_live_region_is_changed_and_drawn_under_one_lock_from_two_threads() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=40, height=8, force_terminal=True, color_system=None)
    output = LiveOutput(screen, "type", console=console)
    output._live.refresh_per_second = 200  # rich's refresh thread draws as often as it can
    unlocked: list[str] = []
    region, settle = output._region, output._settle

    def checked_region() -> Any:
        if not output.lock._is_owned():  # type: ignore[attr-defined]
            unlocked.append("drawn")
        return region()

    def checked_settle(text: Text) -> None:
        if not output.lock._is_owned():  # type: ignore[attr-defined]
            unlocked.append("changed")
        settle(text)

    output._region = checked_region  # type: ignore[method-assign]
    output._settle = checked_settle  # type: ignore[method-assign]
    failures: list[BaseException] = []

    def generations() -> None:
        try:
            for index in range(150):
                output.generation_started("rudder · run stress")
                output.tokens([Text(f"g{index}-a "), Text("日本🙂 "), Text("<|im_end|>")])
                output.backtrack(1)
                output.generation_ended()
                output.text(Text("\n"))
        except BaseException as error:
            failures.append(error)

    def prints() -> None:
        try:
            for index in range(150):
                output.user_write(f"user line {index}\n", screen)
        except BaseException as error:
            failures.append(error)

    output.text(Text("start "))
    threads = [threading.Thread(target=generations), threading.Thread(target=prints)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    output.close()
    assert failures == []
    assert unlocked == []
    written = ANSI.sub("", screen.getvalue())
    for index in range(150):
        assert written.count(f"user line {index}\n") == 1
        assert f"g{index}-a 日本🙂 \n" in written


@pytest.mark.parametrize(
    ("setting", "environment", "expected"),
    [
        ("auto", Environment.JUPYTER, View.WIDGET),
        ("auto", Environment.IPYTHON_TERMINAL, View.LIVE),
        ("auto", Environment.TERMINAL, View.LIVE),
        ("auto", Environment.PLAIN, View.NONE),
        ("terminal", Environment.PLAIN, View.APPEND),
        ("terminal", Environment.JUPYTER, View.APPEND),
        ("terminal", Environment.TERMINAL, View.LIVE),
        ("legacy", Environment.JUPYTER, View.LEGACY),
        ("legacy", Environment.TERMINAL, View.NONE),
        ("widget", Environment.TERMINAL, View.NONE),
        ("none", Environment.JUPYTER, View.NONE),
    ],
)
def test_the_setting_and_the_environment_choose_the_view(
    setting: str, environment: Environment, expected: View, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rudder.settings, "view", setting)
    assert chosen_view(environment) is expected


def test_legacy_mode_switches_the_view_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rudder.settings, "view", "auto")
    rudder.legacy_mode(True)
    assert rudder.settings.view == "legacy"
    rudder.legacy_mode(False)
    assert rudder.settings.view == "auto"
    with pytest.raises(rudder.errors.SettingsError, match="True or False"):
        rudder.legacy_mode("yes")  # type: ignore[arg-type]
    with pytest.raises(rudder.errors.SettingsError, match="token_colors must be one of"):
        rudder.settings.token_colors = "rainbow"


def test_the_stream_guard_is_a_text_stream_installed_only_while_a_run_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rudder.trace import _events
    from rudder.visual.terminal import _console

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(rudder.settings, "view", "terminal")
    # This test's own listener, in place of the process's (which follows what it shows).
    views = _console.TerminalViews()
    monkeypatch.setattr(
        _events,
        "listeners",
        [listener for listener in _events.listeners if listener is not _console._installed]
        + [views],
    )
    try:
        assert sys.stdout is out
        with rudder.run("guarded"):
            lm = models.Mock(["x"], echo=True) + "run text \x1b[2J"
            assert isinstance(sys.stdout, _console.GuardedStream)
            assert isinstance(sys.stdout, io.TextIOBase)
            assert sys.stdout.encoding == out.encoding
            assert not sys.stdout.isatty()
            print("the user's line")
        assert views.view is not None
        assert views.view.wait_idle(10)
        # The run's end was written: the guard is off, the streams are as they were.
        assert sys.stdout is out
        assert sys.stderr is err
        print("after the run")
    finally:
        if views.view is not None:
            views.close()
    assert str(lm) == "run text \x1b[2J"
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["run text \\x1b[2J", "the user's line"]
    assert lines[2].startswith("✓ run guarded: ")
    assert lines[3] == "after the run"
