"""Where the terminal view writes: live (redrawn in place) or append-only.

Both take the same calls from the view: ``text`` (settled run text, written once),
``line`` (a line of the view's own, on a line of its own), a running generation's
``tokens`` and ``backtrack``, and the user's own output (``user_write``), which must come
out whole and in order, never inside a line of run text.

``LiveOutput`` (a terminal) writes settled lines above a rich ``Live`` region that shows
the unfinished line, the running generation and a status line. ``AppendOutput`` (a pipe,
a file, CI) writes plain text once, in order, with no escape codes; it holds back the last
few tokens of a running generation, since a stop string spread over tokens may take them
back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from rudder.visual.terminal._terminal_text import NOTE_STYLE, legend

if TYPE_CHECKING:
    from rich.console import RenderableType

#: Tokens of a running generation the append-only output holds back for backtracking.
HELD_TOKENS = 16
#: Characters of run text the live region shows at most (older ones are settled above).
LIVE_CHARS = 8000


class TerminalOutput:
    """The calls the terminal view makes (see the module's docstring)."""

    def text(self, text: Text) -> None:
        raise NotImplementedError

    def line(self, text: Text) -> None:
        raise NotImplementedError

    def end_line(self) -> None:
        """Settled text goes on on a new line (a role's message ended)."""
        raise NotImplementedError

    def generation_started(self, label: str) -> None:
        raise NotImplementedError

    def tokens(self, texts: list[Text]) -> None:
        raise NotImplementedError

    def backtrack(self, count: int) -> None:
        raise NotImplementedError

    def generation_ended(self) -> None:
        raise NotImplementedError

    def idle(self, label: str) -> None:
        """Nothing is generating; ``label`` names what the view shows."""

    def user_write(self, data: str, stream: TextIO) -> None:
        raise NotImplementedError

    def user_flush(self, stream: TextIO) -> None:
        stream.flush()

    def close(self) -> None:
        """Write what is pending and stop redrawing (the view can start again later)."""


class AppendOutput(TerminalOutput):
    """Plain text, written once and in order; ``stream`` is where run text goes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._at_line_start = True
        self._user_wrote_last = False
        self._held: list[str] = []
        self.lost_tokens = 0  # taken back after they were written (more than HELD_TOKENS)

    def _write(self, data: str) -> None:
        if data:
            if self._user_wrote_last:
                self._user_wrote_last = False
                self._end_line()  # run text never continues a line the user left open
            self.stream.write(data)
            self.stream.flush()
            self._at_line_start = data.endswith("\n")

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def text(self, text: Text) -> None:
        self._write(text.plain)

    def line(self, text: Text) -> None:
        self._end_line()
        self._write(text.plain + "\n")

    def end_line(self) -> None:
        self._end_line()

    def generation_started(self, label: str) -> None:
        self._held = []

    def tokens(self, texts: list[Text]) -> None:
        self._held.extend(text.plain for text in texts)
        if len(self._held) > HELD_TOKENS:
            cut = len(self._held) - HELD_TOKENS
            self._write("".join(self._held[:cut]))
            del self._held[:cut]

    def backtrack(self, count: int) -> None:
        if count > len(self._held):
            self.lost_tokens += count - len(self._held)
        del self._held[max(0, len(self._held) - count) :]

    def generation_ended(self) -> None:
        self._write("".join(self._held))
        self._held = []

    def user_write(self, data: str, stream: TextIO) -> None:
        if stream is self.stream:
            if not self._user_wrote_last:
                self._end_line()  # the user's output never continues a line of run text
            self.stream.write(data)
            if data:
                self._user_wrote_last = True
                self._at_line_start = data.endswith("\n")
        else:
            stream.write(data)

    def close(self) -> None:
        self._end_line()
        self.stream.flush()


class LiveOutput(TerminalOutput):
    """A rich ``Live`` region under the settled text of a terminal."""

    def __init__(self, stream: TextIO, colors: str = "type", console: Console | None = None):
        self.console = console or Console(file=stream, highlight=False, emoji=False)
        self.colors = colors
        self._pending = Text()  # the unfinished last line of settled text
        self._generation: Text | None = None
        self._token_lengths: list[int] = []
        self._label = ""
        self._generating = False
        self._user_lines: dict[int, str] = {}  # id(stream) -> its unfinished line
        self._live = Live(
            console=self.console,
            get_renderable=self._region,
            transient=True,
            auto_refresh=True,
            refresh_per_second=8,
            redirect_stdout=False,  # the view's own guard orders user output
            redirect_stderr=False,
        )
        #: The lock rich's refresh thread holds while it draws the region (``_region``):
        #: every change to what the region shows is made holding it too.
        self.lock = self._live._lock

    # -- the region ---------------------------------------------------------------------------

    @property
    def on_screen(self) -> bool:
        return self._live.is_started

    def _start(self) -> None:
        if not self._live.is_started:
            self._live.start()

    def _region(self) -> RenderableType:
        body = self._pending.copy()
        if self._generation is not None:
            body.append_text(self._generation)
        if len(body) > LIVE_CHARS:
            body = body[len(body) - LIVE_CHARS :]
        width = max(self.console.width, 10)
        rows = max(self.console.height - 2, 1)
        lines = list(body.wrap(self.console, width)) if body else []
        state = f"generating · {len(self._token_lengths)} tokens" if self._generating else "idle"
        status = Text(f"{self._label} · {state}", style=NOTE_STYLE, no_wrap=True)
        status.overflow = "ellipsis"  # one line, whatever the width
        status.append("  ")
        status.append_text(legend(self.colors))
        return Group(*lines[-rows:], status)

    def _settle(self, text: Text) -> None:
        """Print the complete lines of pending + ``text`` above the region."""
        combined = self._pending.copy()
        combined.append_text(text)
        cut = combined.plain.rfind("\n")
        if cut < 0:
            self._pending = combined
            return
        self._pending = combined[cut + 1 :]
        self.console.print(combined[:cut], soft_wrap=True)

    # -- the view's calls ---------------------------------------------------------------------

    def text(self, text: Text) -> None:
        with self.lock:
            self._start()
            self._settle(text)

    def line(self, text: Text) -> None:
        with self.lock:
            self._start()
            if self._pending:
                self.console.print(self._pending, soft_wrap=True)
                self._pending = Text()
            self.console.print(text, soft_wrap=True)

    def end_line(self) -> None:
        with self.lock:
            if self._pending:
                self._settle(Text("\n"))

    def generation_started(self, label: str) -> None:
        with self.lock:
            self._start()
            self._generation = Text()
            self._token_lengths = []
            self._label = label
            self._generating = True

    def tokens(self, texts: list[Text]) -> None:
        with self.lock:
            if self._generation is None:
                return
            for text in texts:
                self._generation.append_text(text)
                self._token_lengths.append(len(text))

    def backtrack(self, count: int) -> None:
        with self.lock:
            if self._generation is None or count <= 0:
                return
            taken = self._token_lengths[-count:]
            del self._token_lengths[-count:]
            self._generation.right_crop(sum(taken))

    def generation_ended(self) -> None:
        with self.lock:
            generation, self._generation = self._generation, None
            self._generating = False
            if generation is not None:
                self._settle(generation)

    def idle(self, label: str) -> None:
        with self.lock:
            self._label = label

    def user_write(self, data: str, stream: TextIO) -> None:
        with self.lock:
            if not self._live.is_started:
                stream.write(data)
                return
            if self._pending:
                # The user's line goes after the run text written before it: that text's
                # unfinished line is settled first (run text goes on on a new line).
                self.console.print(self._pending, soft_wrap=True)
                self._pending = Text()
            # Whole lines go above the region, as the user wrote them (colours included).
            key = id(stream)
            buffered = self._user_lines.pop(key, "") + data
            lines, _, rest = buffered.rpartition("\n")
            if rest:
                self._user_lines[key] = rest
            if lines or buffered.endswith("\n"):
                self.console.print(Text.from_ansi(lines), soft_wrap=True)

    def user_flush(self, stream: TextIO) -> None:
        with self.lock:
            rest = self._user_lines.pop(id(stream), "")
            if rest and self._live.is_started:
                self.console.print(Text.from_ansi(rest), soft_wrap=True)
            elif rest:
                stream.write(rest)
            stream.flush()

    def close(self) -> None:
        with self.lock:
            self._live.stop()
            if self._generation is not None:
                self.generation_ended()
            if self._pending:
                self.console.print(self._pending, soft_wrap=True)
                self._pending = Text()
            for key in list(self._user_lines):
                self.console.print(Text.from_ansi(self._user_lines.pop(key)), soft_wrap=True)
