"""IPython cells as runs, and the notebook outputs that show them.

When rudder is imported in IPython, its ``pre_run_cell`` and ``post_run_cell`` hooks make
each cell a run (started at its first node, so cells without rudder leave nothing behind).
In a Jupyter kernel, the first node a cell shows (echo on) puts a widget for its run in the
cell's output, or with ``rudder.legacy_mode(True)`` static HTML that the hooks update in
place while the cell runs; in IPython in a terminal, the terminal view shows the runs. The
run's stream carries the nodes an earlier cell made, so a cell that continues an old Model
shows the whole path in its own output. A re-run cell gets a new run and a new output
(Jupyter clears the old one): nothing is shown twice. At the end of the cell the output is
flushed, its stream closed and its static HTML brought up to date.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rudder._settings import settings
from rudder.trace import _events as events
from rudder.trace._events import TraceListener
from rudder.trace._run import Run, set_cell_run
from rudder.visual.terminal._environment import (
    Environment,
    View,
    chosen_view,
    ipython_shell,
    is_kernel,
)

if TYPE_CHECKING:
    from rudder._state import Token
    from rudder.trace._node import TraceNode

_log = logging.getLogger("rudder.visual")
#: Seconds between updates of a legacy output while its cell runs.
UPDATE_INTERVAL_S = 0.25


class CellOutput(Protocol):
    """What the hooks need of a run's output: the widget or the legacy display."""

    run_id: str

    def flush(self, timeout: float = ...) -> bool: ...

    def close_stream(self) -> None: ...

    @property
    def finished(self) -> bool: ...

    def mimebundle(self) -> dict[str, Any]: ...

    @property
    def live(self) -> bool:
        """Whether the output is a widget still open (one the kernel can answer)."""
        ...

    def retire(self, handle: Any) -> None:
        """Show the static HTML in place of the live output (``handle``) and close it."""
        ...


def widget_available() -> bool:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


class _Shown:
    __slots__ = ("handle", "output")

    def __init__(self, output: CellOutput, handle: Any) -> None:
        self.output = output
        self.handle = handle


class NotebookCells(TraceListener):
    """The hooks and the trace listener that turn cells into runs, shown in the cells'
    outputs when ``shows_outputs`` (a Jupyter kernel)."""

    def __init__(self, shell: Any, *, shows_outputs: bool = True) -> None:
        self.shell = shell
        self.shows_outputs = shows_outputs
        self.cell: Run | None = None
        self._shown: dict[str, _Shown] = {}
        self._legacy: list[_Shown] = []  # outputs the hooks update while the cell runs
        self._live: deque[_Shown] = deque()  # ended cells' widgets, oldest first
        self._last_update = 0.0
        self._lock = threading.Lock()
        self._warned = False

    def install(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        events.add_listener(self)
        # The cell importing rudder is running already: it is a cell too.
        self.pre_run_cell()

    def uninstall(self) -> None:
        hooks = (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell))
        for name, hook in hooks:
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(name, hook)
        events.remove_listener(self)
        self._end_cell(None)

    # -- cells --------------------------------------------------------------------------------

    def pre_run_cell(self, info: object = None) -> None:
        self._end_cell(None)  # a cell whose post hook never came
        run = _CellRun(self.shell)
        run.activate()
        self.cell = run
        set_cell_run(run)

    def post_run_cell(self, result: Any = None) -> None:
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        self._end_cell(error)

    def _end_cell(self, error: BaseException | None) -> None:
        run, self.cell = self.cell, None
        if run is None:
            return
        set_cell_run(None)
        run.deactivate()
        if run.started_at is not None:
            run.finish(error)
        from rudder.visual.terminal import _console

        _console.catch_up()  # the terminal view, when it shows cells, writes into this one
        with self._lock:
            shown, self._shown, self._legacy = self._shown, {}, []
        for item in shown.values():
            self._finish_output(item)
            if item.output.live:
                self._live.append(item)
        self._retire_beyond(settings.live_widgets)

    def _retire_beyond(self, kept: int) -> None:
        """Turn the oldest live outputs beyond ``kept`` into their static HTML, and close
        their widgets (ipywidgets holds every open widget for the kernel's life)."""
        while len(self._live) > kept:
            item = self._live.popleft()
            try:
                item.output.retire(item.handle)
            except Exception:
                _log.exception("could not retire the output of run %s", item.output.run_id)

    def _finish_output(self, item: _Shown) -> None:
        output = item.output
        if not output.flush():
            _log.warning("the view of run %s did not catch up before the cell ended", output.run_id)
        if output.finished:
            output.close_stream()
        self._update(item)

    def _update(self, item: _Shown) -> None:
        try:
            item.handle.update(item.output.mimebundle(), raw=True)
        except Exception:
            _log.exception("could not update the output of run %s", item.output.run_id)

    # -- the trace ----------------------------------------------------------------------------

    def node_added(self, node: TraceNode) -> None:
        if self.cell is None or not node.echo or not self.shows_outputs:
            return
        if node.run_id in self._shown:
            self._update_legacy()
            return
        view = chosen_view(Environment.JUPYTER)
        if view is View.WIDGET and not widget_available():
            self._warn_once()
        elif view in (View.WIDGET, View.LEGACY):
            self._show(node.run_id, view)

    def tokens_changed(
        self, node: TraceNode, added: Sequence[Token], backtracked: int, healed_bytes: int
    ) -> None:
        if self._legacy:
            self._update_legacy()

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        if self._legacy:
            self._update_legacy(force=True)

    def _show(self, run_id: str, view: View) -> None:
        from IPython.display import display

        with self._lock:
            if run_id in self._shown:
                return
            output: CellOutput
            if view is View.WIDGET:
                from rudder.visual.notebook._widget import RunWidget

                output = RunWidget(run_id)
            else:
                from rudder.visual.notebook._legacy import LegacyDisplay

                output = LegacyDisplay(run_id)
            handle = display(output.mimebundle(), raw=True, display_id=True)  # type: ignore[no-untyped-call]
            item = self._shown[run_id] = _Shown(output, handle)
            if view is View.LEGACY:
                self._legacy.append(item)

    def _update_legacy(self, *, force: bool = False) -> None:
        """Bring the legacy outputs up to date, at most every ``UPDATE_INTERVAL_S`` (from
        the generating thread, which is the cell's: its outputs go to the right cell)."""
        now = time.monotonic()
        if not force and now - self._last_update < UPDATE_INTERVAL_S:
            return
        self._last_update = now
        for item in list(self._legacy):
            item.output.flush(1.0)
            self._update(item)

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            print(
                "rudder: install the notebook extra (pip install 'rudder[notebook]') to see "
                "runs live in this notebook; rudder.settings.view = 'none' hides this note",
                file=sys.stderr,
            )


class _CellRun(Run):
    """A cell's run, named after the cell's execution count when it starts (IPython 9 counts
    the cell before ``pre_run_cell``, IPython 8 after it; the running cell's result holds
    the number the notebook shows)."""

    def __init__(self, shell: Any) -> None:
        super().__init__("cell")
        self._shell = shell

    def start_once(self) -> Run:
        if self.started_at is None:
            result = getattr(getattr(self._shell, "displayhook", None), "exec_result", None)
            count = getattr(result, "execution_count", None)
            if count is not None:
                self.name = f"cell {count}"
        return super().start_once()


_installed: NotebookCells | None = None


def install() -> NotebookCells | None:
    """Install the cell hooks when this process runs IPython (once)."""
    global _installed
    if _installed is None:
        shell = ipython_shell()
        if shell is not None and hasattr(shell, "events"):
            _installed = NotebookCells(shell, shows_outputs=is_kernel(shell))
            _installed.install()
    return _installed
