"""Process-wide settings: ``rudder.settings.echo = False`` and the like."""

from __future__ import annotations

import os
import pathlib

from rudder.errors import SettingsError, StoreError

#: The views ``settings.view`` can pick (see ``rudder.visual.terminal._environment``).
VIEWS = ("auto", "widget", "legacy", "terminal", "none")
#: How the terminal view colours tokens.
TOKEN_COLORS = ("type", "probability")


class Settings:
    """Switches that apply to every Model; each is checked when set.

    - ``echo``: views show Models whose own ``echo`` is on (off here silences all of them).
    - ``monitor``: sample CPU, RAM, GPU and VRAM while a run (``rudder.run()``, a notebook
      cell) generates; work outside any run is not sampled.
    - ``monitor_interval_s``: seconds between samples (0.05 to 3600).
    - ``monitor_max_samples``: samples a run keeps (the oldest are dropped).
    - ``view``: how runs are shown. ``"auto"`` picks by where the program runs: the widget
      in a Jupyter kernel, the live terminal view in a terminal (or an IPython shell in
      one), nothing when output goes to a pipe or a file. ``"widget"``, ``"legacy"``
      (static HTML in notebooks, updated in place), ``"terminal"`` (live in a terminal,
      append-only text elsewhere) and ``"none"`` choose one. The ``RUDDER_VIEW``
      environment variable sets it at import.
    - ``token_colors``: the terminal view colours tokens by ``"type"`` (input, forced,
      generated) or by ``"probability"``.
    - ``store``: where every run is kept (see ``rudder.store``): None (the default: runs
      are kept nowhere), a path to a SQLite file, or True for the per-user store
      (``~/.local/share/rudder/runs.sqlite`` on Linux). Setting it opens the store. The
      ``RUDDER_STORE`` environment variable sets it at import (a path, or ``1`` for the
      per-user store); that store is opened when the first run starts.
    - ``store_max_runs``, ``store_max_bytes``: the store keeps the newest runs within both
      bounds (10,000 runs, 1 GiB of messages); older ones are deleted as runs end.
    - ``live_widgets``: a notebook keeps the widgets of the newest cells' outputs live (20);
      when a cell ends beyond that, the oldest live output becomes its static HTML and its
      widget is closed, so that a kernel open for days holds a bounded number of them.
      Exploring from a token needs a live widget.
    """

    __slots__ = (
        "_echo",
        "_live_widgets",
        "_monitor",
        "_monitor_interval_s",
        "_monitor_max_samples",
        "_store",
        "_store_max_bytes",
        "_store_max_runs",
        "_token_colors",
        "_view",
    )

    def __init__(self) -> None:
        self._view = _view_from_environment()
        self._echo = True
        self._monitor = True
        self._monitor_interval_s = 0.5
        self._monitor_max_samples = 1200
        self._token_colors = "type"
        self._store = _store_from_environment()
        self._store_max_runs = 10_000
        self._store_max_bytes = 2**30
        self._live_widgets = 20

    @property
    def echo(self) -> bool:
        return self._echo

    @echo.setter
    def echo(self, value: bool) -> None:
        self._echo = _flag("echo", value)

    @property
    def monitor(self) -> bool:
        return self._monitor

    @monitor.setter
    def monitor(self, value: bool) -> None:
        self._monitor = _flag("monitor", value)

    @property
    def monitor_interval_s(self) -> float:
        return self._monitor_interval_s

    @monitor_interval_s.setter
    def monitor_interval_s(self, value: float) -> None:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0.05 <= value <= 3600:
            raise SettingsError(
                f"monitor_interval_s must be a number of seconds from 0.05 to 3600, got {value!r}"
            )
        self._monitor_interval_s = float(value)

    @property
    def monitor_max_samples(self) -> int:
        return self._monitor_max_samples

    @monitor_max_samples.setter
    def monitor_max_samples(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"monitor_max_samples must be an int >= 1, got {value!r}")
        self._monitor_max_samples = value

    @property
    def view(self) -> str:
        return self._view

    @view.setter
    def view(self, value: str) -> None:
        if value not in VIEWS:
            raise SettingsError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {value!r}")
        self._view = value

    @property
    def token_colors(self) -> str:
        return self._token_colors

    @token_colors.setter
    def token_colors(self, value: str) -> None:
        if value not in TOKEN_COLORS:
            choices = ", ".join(map(repr, TOKEN_COLORS))
            raise SettingsError(f"token_colors must be one of {choices}, got {value!r}")
        self._token_colors = value

    @property
    def store(self) -> pathlib.Path | None:
        return self._store

    @store.setter
    def store(self, value: str | os.PathLike[str] | bool | None) -> None:
        path = _store_path(value)
        from rudder.store._writer import attach

        try:
            attach(path)
        except StoreError as error:
            raise SettingsError(f"store: {error}") from error
        self._store = path

    @property
    def store_max_runs(self) -> int:
        return self._store_max_runs

    @store_max_runs.setter
    def store_max_runs(self, value: int) -> None:
        self._store_max_runs = _count("store_max_runs", value)

    @property
    def store_max_bytes(self) -> int:
        return self._store_max_bytes

    @store_max_bytes.setter
    def store_max_bytes(self, value: int) -> None:
        self._store_max_bytes = _count("store_max_bytes", value)

    @property
    def live_widgets(self) -> int:
        return self._live_widgets

    @live_widgets.setter
    def live_widgets(self, value: int) -> None:
        self._live_widgets = _count("live_widgets", value)

    def __repr__(self) -> str:
        return (
            f"Settings(view={self.view!r}, token_colors={self.token_colors!r}, "
            f"echo={self.echo}, monitor={self.monitor}, "
            f"monitor_interval_s={self.monitor_interval_s}, "
            f"monitor_max_samples={self.monitor_max_samples}, store={self.store!r})"
        )


def _view_from_environment() -> str:
    value = os.environ.get("RUDDER_VIEW", "auto").strip().lower() or "auto"
    if value not in VIEWS:
        import warnings

        warnings.warn(
            f"RUDDER_VIEW={value!r} is not a view ({', '.join(VIEWS)}); using 'auto'",
            stacklevel=2,
        )
        return "auto"
    return value


_STORE_OFF = ("", "0", "off", "false", "no", "none")
_STORE_DEFAULT = ("1", "on", "true", "yes", "default")


def _store_from_environment() -> pathlib.Path | None:
    value = os.environ.get("RUDDER_STORE", "").strip()
    if value.lower() in _STORE_OFF:
        return None
    if value.lower() in _STORE_DEFAULT:
        return _store_path(True)
    return _store_path(value)


def _store_path(value: object) -> pathlib.Path | None:
    if value is None or value is False:
        return None
    if value is True:
        from rudder.store._store import default_path

        return default_path()
    if isinstance(value, str | os.PathLike) and str(value).strip():
        return pathlib.Path(value).expanduser().absolute()
    raise SettingsError(
        f"store must be a path to a SQLite file, True (the per-user store) or None (off), "
        f"got {value!r}"
    )


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be an int >= 1, got {value!r}")
    return value


def legacy_mode(enabled: bool = True) -> None:
    """Show runs in notebooks as static HTML, updated in place while they run, instead of
    the widget (for hosts that cannot show widgets); ``legacy_mode(False)`` goes back to
    ``"auto"``. The same as ``rudder.settings.view = "legacy"``."""
    if _flag("enabled", enabled):
        settings.view = "legacy"
    elif settings.view == "legacy":
        settings.view = "auto"


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be True or False, got {value!r}")
    return value


#: The one settings object (``rudder.settings``).
settings = Settings()
