"""Notebook cells as runs, and the widget that shows them.

When rudder is imported in a Jupyter kernel, IPython's ``pre_run_cell`` and
``post_run_cell`` hooks make each cell a run (started at its first node, so cells without
rudder leave nothing behind), and the first node a cell shows (echo on) puts a widget for
its run in the cell's output. The run's stream carries the nodes an earlier cell made, so a
cell that continues an old Model shows the whole path in its own output. A re-run cell
gets a new run and a new output (Jupyter clears the old one): nothing is shown twice.
At the end of the cell the widget is flushed, its stream closed and its output's static
HTML brought up to date.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from rudder._settings import settings
from rudder.trace import _events as events
from rudder.trace._events import TraceListener
from rudder.trace._run import Run, set_cell_run

if TYPE_CHECKING:
    from rudder.trace._node import TraceNode
    from rudder.visual._widget import RunWidget

_log = logging.getLogger("rudder.visual")


def kernel_shell() -> Any | None:
    """The IPython shell of a Jupyter kernel this process is, else None (IPython is not
    imported here: a kernel has imported it already)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    return shell


def widget_available() -> bool:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


class _Shown:
    __slots__ = ("handle", "widget")

    def __init__(self, widget: RunWidget, handle: Any) -> None:
        self.widget = widget
        self.handle = handle


class NotebookCells(TraceListener):
    """The hooks and the trace listener that turn cells into runs shown by widgets."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cell: Run | None = None
        self._shown: dict[str, _Shown] = {}
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
        with self._lock:
            shown, self._shown = self._shown, {}
        for item in shown.values():
            self._finish_output(item)

    def _finish_output(self, item: _Shown) -> None:
        widget = item.widget
        if not widget.flush():
            _log.warning("the view of run %s did not catch up before the cell ended", widget.run_id)
        if widget.finished:
            widget.close_stream()
        try:
            item.handle.update(widget.mimebundle(), raw=True)
        except Exception:
            _log.exception("could not update the output of run %s", widget.run_id)

    # -- the trace ----------------------------------------------------------------------------

    def node_added(self, node: TraceNode) -> None:
        if self.cell is None or not node.echo or node.run_id in self._shown:
            return
        if settings.view == "none":
            return
        if not widget_available():
            self._warn_once()
            return
        from IPython.display import display

        from rudder.visual._widget import RunWidget

        with self._lock:
            if node.run_id in self._shown:
                return
            widget = RunWidget(node.run_id)
            handle = display(widget.mimebundle(), raw=True, display_id=True)  # type: ignore[no-untyped-call]
            self._shown[node.run_id] = _Shown(widget, handle)

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
    """Install the notebook hooks when this process is a Jupyter kernel (once)."""
    global _installed
    if _installed is None:
        shell = kernel_shell()
        if shell is not None:
            _installed = NotebookCells(shell)
            _installed.install()
    return _installed
