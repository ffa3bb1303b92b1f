"""The process's terminal view: when it shows a run, the guard on the standard streams,
and the default run's figures at exit.

A trace listener looks at the first node each run shows (echo on) and, when
``chosen_view()`` says the terminal view (live in a terminal, append-only elsewhere), has
the one terminal view of the process follow that run. Until a view is chosen the check is
repeated for later nodes (a program may set ``rudder.settings.view`` after its first step);
once a run is followed, its nodes cost one dictionary lookup.
"""

from __future__ import annotations

import atexit
import collections
import io
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from rudder._settings import settings
from rudder.trace._events import TraceListener, add_listener
from rudder.trace._run import started_default_run
from rudder.visual.terminal._environment import Environment, View, chosen_view, detect

if TYPE_CHECKING:
    from rudder.trace._node import TraceNode
    from rudder.visual.terminal._terminal import TerminalView


class GuardedStream(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while the terminal view shows a run: writes wait for
    the view to catch up, then go out through it (whole, in order, never mid-line)."""

    def __init__(self, stream: TextIO, view: TerminalView) -> None:
        super().__init__()
        self.guarded = stream
        self._view = view

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.guarded.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.guarded.errors

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.guarded.isatty()

    def fileno(self) -> int:
        return self.guarded.fileno()

    def write(self, data: str) -> int:
        if not isinstance(data, str):
            raise TypeError(f"write() argument must be str, not {type(data).__name__}")
        if data:
            self._view.user_write(data, self.guarded)
        return len(data)

    def flush(self) -> None:
        self._view.user_flush(self.guarded)

    def close(self) -> None:
        """The guarded stream is not ours to close (``IOBase`` closes on collection)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.guarded, name)


class TerminalViews(TraceListener):
    """Attaches the process's terminal view to runs (see the module's docstring)."""

    def __init__(self) -> None:
        self.view: TerminalView | None = None
        self._lock = threading.Lock()
        self._followed: dict[str, None] = {}
        self._key: tuple[object, ...] | None = None
        self._view = View.NONE
        self._redirected: list[tuple[logging.StreamHandler[Any], Any]] = []
        # Guards taken off are kept a while: the guard may come off during a write through
        # it (the view catches up and its run ends), and print() holds sys.stdout without a
        # reference of its own, so freeing the guard then would free it under print().
        self._retired: collections.deque[GuardedStream] = collections.deque(maxlen=8)

    def node_added(self, node: TraceNode) -> None:
        if not node.echo or node.run_id in self._followed:
            return
        view = self._chosen_view()
        if view not in (View.LIVE, View.APPEND):
            return
        with self._lock:
            if node.run_id in self._followed:
                return
            if len(self._followed) > 10_000:
                self._followed.clear()  # ids of long-finished runs
            self._followed[node.run_id] = None
            terminal = self._terminal(view)
        terminal.follow(node.run_id)

    def _chosen_view(self) -> View:
        """``chosen_view()``, worked out again only when the setting, stdout or the IPython
        module changed: this runs for every shown node until a run is followed."""
        key = (settings.view, sys.stdout, sys.modules.get("IPython"))
        if key != self._key:  # streams and modules compare by identity
            self._key = key
            self._view = chosen_view()
        return self._view

    def _terminal(self, view: View) -> TerminalView:
        if self.view is None:
            from rudder.visual.terminal._terminal import TerminalView
            from rudder.visual.terminal._terminal_output import AppendOutput, LiveOutput

            stream = sys.stdout
            output = (
                LiveOutput(stream, settings.token_colors)
                if view is View.LIVE
                else AppendOutput(stream)
            )
            self.view = TerminalView(output, on_screen=self._guard)
            atexit.register(self.close)
        return self.view

    def _guard(self, on: bool) -> None:
        """Install the guard on the standard streams while the view shows a run (outside
        Jupyter: a kernel's streams are its own); take it off when it shows none."""
        view = self.view
        if on and view is not None and detect() is not Environment.JUPYTER:
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if not isinstance(stream, GuardedStream):
                    setattr(sys, name, GuardedStream(stream, view))
            guards = [s for s in (sys.stdout, sys.stderr) if isinstance(s, GuardedStream)]
            self._redirected += redirect_log_handlers({id(s.guarded): s for s in guards})
        elif not on:
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if isinstance(stream, GuardedStream):
                    self._retired.append(stream)
                    setattr(sys, name, stream.guarded)
            for handler, stream in self._redirected:
                if isinstance(handler.stream, GuardedStream):
                    handler.setStream(stream)
            self._redirected = []

    def close(self) -> None:
        """At exit: the default run's figures, then the streams as they were."""
        view = self.view
        if view is None:
            return
        view.close(_default_run_line())  # takes the guard off


def redirect_log_handlers(
    guards: dict[int, GuardedStream],
) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Point logging handlers made before the guard (``logging.basicConfig``, a library's
    own) at the guarded streams: a line they wrote straight to the terminal would land
    inside the live region and be drawn over. Returns each handler with its old stream."""
    loggers: list[Any] = [logging.getLogger()]
    loggers += list(logging.Logger.manager.loggerDict.values())
    redirected = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler and id(handler.stream) in guards:
                redirected.append((handler, handler.setStream(guards[id(handler.stream)])))
    return redirected


def _default_run_line() -> str | None:
    """The default run's figures, when it generated anything."""
    import time

    from rudder.visual.stream._figures import figures

    run = started_default_run()
    if run is None or run.usage.output_tokens == 0:
        return None
    return "rudder: " + " · ".join(figures(run.usage, run.started_at, time.time()))


_installed: TerminalViews | None = None


def catch_up() -> None:
    """Wait until the terminal view (if any) has written what was published."""
    if _installed is not None and _installed.view is not None:
        _installed.view.wait_idle()


def install() -> TerminalViews:
    """Register the listener (once; ``import rudder`` does)."""
    global _installed
    if _installed is None:
        _installed = TerminalViews()
        add_listener(_installed)
    return _installed
