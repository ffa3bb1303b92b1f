"""Where the program runs, and so which view shows its runs.

``detect()`` tells a Jupyter kernel (JupyterLab, Notebook, VS Code and Colab all run one),
an IPython shell in a terminal, a plain terminal and plain output (a pipe, a file, CI) apart.
``chosen_view()`` turns ``rudder.settings.view`` into the view to use there:

=============  ==========  =================  ==========  =========
setting        Jupyter     IPython terminal   terminal    plain
=============  ==========  =================  ==========  =========
``auto``       widget      terminal (live)    live        none
``widget``     widget      none               none        none
``legacy``     legacy      none               none        none
``terminal``   append      live               live        append
``none``       none        none               none        none
=============  ==========  =================  ==========  =========

Nothing here imports IPython: a process that runs IPython has imported it already.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import Any, TextIO

from rudder._settings import settings


class Environment(str, enum.Enum):
    JUPYTER = "jupyter"
    IPYTHON_TERMINAL = "ipython-terminal"
    TERMINAL = "terminal"
    PLAIN = "plain"


class View(str, enum.Enum):
    WIDGET = "widget"
    LEGACY = "legacy"
    LIVE = "live"  # the terminal view, redrawn in place
    APPEND = "append"  # the terminal view as plain text, written once, in order
    NONE = "none"


def ipython_shell() -> Any | None:
    """The running IPython shell, else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    return ipython.get_ipython()


def is_kernel(shell: Any) -> bool:
    """True for a Jupyter kernel's shell (Colab's and VS Code's are kernels too)."""
    kernel_shell = getattr(sys.modules.get("ipykernel.zmqshell"), "ZMQInteractiveShell", None)
    if kernel_shell is not None and isinstance(shell, kernel_shell):
        return True
    return type(shell).__name__ == "ZMQInteractiveShell"


def is_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stdout) is a terminal that understands redraws."""
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def detect() -> Environment:
    shell = ipython_shell()
    if shell is not None and is_kernel(shell):
        return Environment.JUPYTER
    if not is_terminal():
        return Environment.PLAIN
    if shell is not None:
        return Environment.IPYTHON_TERMINAL
    return Environment.TERMINAL


def chosen_view(environment: Environment | None = None) -> View:
    """The view ``settings.view`` picks in ``environment`` (default: this process's)."""
    environment = detect() if environment is None else environment
    setting = settings.view
    notebook = environment is Environment.JUPYTER
    if setting == "none":
        return View.NONE
    if setting == "widget":
        return View.WIDGET if notebook else View.NONE
    if setting == "legacy":
        return View.LEGACY if notebook else View.NONE
    interactive = environment in (Environment.TERMINAL, Environment.IPYTHON_TERMINAL)
    if setting == "terminal":
        return View.LIVE if interactive else View.APPEND
    # auto
    if notebook:
        return View.WIDGET
    return View.LIVE if interactive else View.NONE
