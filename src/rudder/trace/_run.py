"""Runs: the nodes of one execution (a ``with rudder.run():`` block, a notebook cell, or
work done outside any run, which goes to the process's default run).

A run has a start and end time and a status, sums the usage of its generations, and owns a
system monitor that samples only while the run is active and generating.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType

from rudder._settings import settings
from rudder.errors import RunError, WrongTypeError
from rudder.trace import _events as events
from rudder.trace._monitor import SystemMonitor, SystemSample
from rudder.trace._usage import Usage


class RunStatus(str, enum.Enum):
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"


class Run:
    """A group of trace nodes with a status. Use ``with rudder.run("name") as run:``.

    A run is entered once. Work outside any run belongs to the default run, which starts
    when first used, stays running and has no monitor (a script that wants samples wraps
    its work in a run).
    """

    def __init__(self, name: str | None = None, *, run_id: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise WrongTypeError(
                f"a run's name must be a str, got {name!r}; e.g. rudder.run({str(name)!r})"
            )
        self.id = run_id if run_id is not None else uuid.uuid4().hex
        self.name = name or "run"
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.status = RunStatus.RUNNING
        self.error: str | None = None
        self._usage = Usage()
        self._lock = threading.Lock()
        self._active = 0
        self._monitor: SystemMonitor | None = None
        self._samples: tuple[SystemSample, ...] = ()
        self._token: contextvars.Token[Run | None] | None = None
        #: Whether a monitor samples while this run generates (not for the default run).
        self.monitored = True
        #: Whether this is the process's default run (it starts when first used, never ends).
        self.default = False

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> Run:
        if self.started_at is not None:
            raise RunError(f"run {self.name!r} was already entered; make a new rudder.run()")
        self.start()
        self._token = current_run.set(self)
        self.activate()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            current_run.reset(self._token)
            self._token = None
        self.deactivate()
        self.finish(error)

    def start(self) -> None:
        self.started_at = time.time()
        events.emit.run_started(self)

    def start_once(self) -> Run:
        """Start the run unless it has started (a notebook cell's run starts at its first
        node, so that cells without rudder leave no runs behind)."""
        if self.started_at is None:
            with self._lock:
                starting = self.started_at is None
                if starting:
                    self.started_at = time.time()
            if starting:
                events.emit.run_started(self)
        return self

    def finish(self, error: BaseException | None = None) -> None:
        """End the run: done, or error with the exception's text."""
        if self.finished_at is not None:
            return
        self._stop_monitor()
        self.finished_at = time.time()
        if error is not None:
            self.status = RunStatus.ERROR
            self.error = describe_error(error)
        else:
            self.status = RunStatus.DONE
        events.emit.run_finished(self)

    # -- activity and the monitor ---------------------------------------------------------

    def activate(self) -> None:
        with self._lock:
            self._active += 1

    def deactivate(self) -> None:
        with self._lock:
            self._active -= 1
            idle = self._active == 0
        if idle:
            self._stop_monitor()

    def generating(self) -> None:
        """A generation starts: start the monitor if this run has none running."""
        if not (settings.monitor and self.monitored):
            return
        with self._lock:
            if self._monitor is not None or self._active == 0:
                return
            self._monitor = SystemMonitor(
                settings.monitor_interval_s, settings.monitor_max_samples, self._sampled
            )
            self._monitor.start()

    def _sampled(self, sample: SystemSample) -> None:
        events.emit.system_sample(self, sample)

    def _stop_monitor(self) -> None:
        with self._lock:
            monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.stop()
            with self._lock:
                kept = (*self._samples, *monitor.samples)
                self._samples = kept[-settings.monitor_max_samples :]

    @property
    def monitoring(self) -> bool:
        """Whether this run's monitor thread is running now."""
        monitor = self._monitor
        return monitor is not None and monitor.running

    @property
    def samples(self) -> tuple[SystemSample, ...]:
        """The system samples taken so far (the most recent ``monitor_max_samples``)."""
        with self._lock:
            monitor = self._monitor
            live = tuple(monitor.samples) if monitor is not None else ()
            return (*self._samples, *live)[-settings.monitor_max_samples :]

    # -- usage ----------------------------------------------------------------------------

    def add_usage(self, usage: Usage) -> None:
        with self._lock:
            self._usage = self._usage + usage

    @property
    def usage(self) -> Usage:
        """The summed usage of the run's generations."""
        return self._usage

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.status.value} {self.id[:8]}>"


def describe_error(error: BaseException) -> str:
    """``ExceptionType: message`` (just the type when there is no message)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: The run new trace nodes belong to (None: the default run).
current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "rudder_current_run", default=None
)

_default: Run | None = None
_default_lock = threading.Lock()


def default_run() -> Run:
    """The run of work done outside any run (made and started when first needed)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                made = Run("default")
                made.monitored = False
                made.default = True
                made.start()
                _default = made
    return _default


def started_default_run() -> Run | None:
    """The default run if anything used it, without starting one."""
    return _default


#: The run of the notebook cell executing now (set by rudder's IPython hooks): it holds
#: for every thread, where ``current_run`` holds for one context.
_cell_run: Run | None = None


def set_cell_run(run: Run | None) -> None:
    global _cell_run
    _cell_run = run


def active_run() -> Run:
    """The run new nodes go to: the innermost ``rudder.run()``, else the notebook cell's
    run, else the default run."""
    explicit = current_run.get()
    if explicit is not None:
        return explicit
    cell = _cell_run
    return cell.start_once() if cell is not None else default_run()


def run(name: str | None = None) -> Run:
    """A new run: ``with rudder.run("summarise") as run: ...`` groups the nodes made inside
    it, gives them a status, and sums their usage in ``run.usage``."""
    return Run(name)


#: Set inside ``with rudder.hidden():``.
hiding: contextvars.ContextVar[bool] = contextvars.ContextVar("rudder_hiding", default=False)


@contextlib.contextmanager
def hidden() -> Iterator[None]:
    """Hide what is added inside from views (they show its size, not its text); the
    model still sees all of it. For large context pasted into a prompt."""
    token = hiding.set(True)
    try:
        yield
    finally:
        hiding.reset(token)
