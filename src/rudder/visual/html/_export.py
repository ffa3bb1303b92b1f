"""The HTML export: a Model's program or a run as one self-contained file.

The file is the client page (:mod:`rudder.visual.html._page`) with a finished message stream
inlined, so it opens anywhere without a network and shows what the notebook widget shows
when the run is done, tooltips included.

- A **Model** is exported as its trace path: the whole program up to that Model, with the
  nodes made in earlier runs or cells. A private bus and publisher turn the path into the
  stream a live view of the Model's run would have received, except that generations come
  complete rather than token by token, and that steps made with echo off are shown too:
  ``echo`` decides what is shown live, not what an explicit export holds. A Model with no
  steps exports an empty run.
- A **Run** (``rudder.run()``) is exported as its stream on the process bus, as it is now,
  as every view of it saw it (its echo-off steps were never published): a run still going
  shows as running; a run whose start the bounded history dropped begins with a ``reset``.

Either way hidden steps show only their size. This module imports no pydantic until an
export is made.
"""

from __future__ import annotations

import errno
import os
import pathlib
import sys
import tempfile
from typing import TYPE_CHECKING

from rudder.errors import ExportError, ExportPathError
from rudder.trace import _run as runs
from rudder.trace._node import NodeKind
from rudder.trace._run import Run, RunStatus
from rudder.visual.html._page import client_page, messages_json
from rudder.visual.stream._bus import Bus, get_bus
from rudder.visual.stream._publisher import Publisher

if TYPE_CHECKING:
    from rudder.models._model import Model
    from rudder.trace._node import TraceNode
    from rudder.visual.stream._protocol import ServerMessage

#: The record name of a Model's export when its run cannot be named.
EXPORT_NAME = "export"
#: Permissions of a new export file (a temporary file is made private; the export is not).
NEW_FILE_MODE = 0o644


def export_messages(source: Model | Run) -> list[ServerMessage]:
    """The complete message stream that shows ``source``: a Model's program so far, or a
    run as the process's bus holds it."""
    from rudder.models._model import Model

    if isinstance(source, Model):
        return _model_messages(source)
    if isinstance(source, Run):
        return _run_messages(source, get_bus())
    raise ExportError(
        f"only a Model or a Run (rudder.run()) can be exported, not {type(source).__name__}: "
        "pass the Model a program made (lm) or the run it ran in"
    )


def to_html(source: Model | Run, *, title: str | None = None) -> str:
    """``source`` as one self-contained HTML page (see :func:`export_html`)."""
    messages = export_messages(source)
    if title is None:
        title = f"{_run_name_of(messages)} · rudder"
    return client_page(messages_json(messages), title=title)


def export_html(
    source: Model | Run, path: str | os.PathLike[str], *, title: str | None = None
) -> pathlib.Path:
    """Write ``source`` (a Model or a ``rudder.run()``) to ``path`` as one self-contained HTML
    file that needs no network to open; returns the file's absolute path.

    The folder must exist (:class:`~rudder.errors.ExportPathError` otherwise). The file is
    replaced whole or not at all: the page is written to a temporary file beside it, then
    renamed over it.
    """
    target = _export_target(path)
    return write_page(to_html(source, title=title), target)  # the page is made first


def write_page(page: str, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write a page to ``path`` whole or not at all; returns the file's absolute path."""
    target = _export_target(path)
    _write_whole(target, page.encode("utf-8"))
    return target


def _export_target(path: str | os.PathLike[str]) -> pathlib.Path:
    target = pathlib.Path(path).absolute()
    if target.is_dir():
        raise ExportPathError(
            errno.EISDIR, f"cannot export to {target}: it is a folder; name a file in it"
        )
    folder = target.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ExportPathError(
            errno.ENOENT,
            f"cannot export to {target}: {folder} {what}; create the folder first "
            "(os.makedirs) or name a file in a folder that exists",
        )
    return target


# -- a Model ---------------------------------------------------------------------------------


def _model_messages(lm: Model) -> list[ServerMessage]:
    last = lm.trace
    if last is None:
        return _empty_run_messages()
    path = last.path()
    run = Run(_known_run_name(last.run_id), run_id=last.run_id)
    run.started_at = path[0].created_at
    run.finished_at = max(_ended_at(node) for node in path)
    run.status = RunStatus.DONE
    run.add_usage(lm.usage)

    # A history large enough for any path: an export must not start with a reset.
    bus = Bus(max_runs=1, max_messages_per_run=sys.maxsize)
    publisher = Publisher(bus, show_echo_off=True)
    publisher.run_started(run)
    # The last node brings the whole path, oldest first, into its run's stream.
    publisher.node_added(last)
    for node in path:
        # What the end of a generation sends (captures, usage, status), for the generations
        # of the Model's own run: a live view of it got ancestors from earlier runs without.
        ended = node.input.kind is NodeKind.GRAMMAR and node.usage is not None
        if ended and node.run_id == last.run_id:
            publisher.node_finished(node, None)
    publisher.run_finished(run)
    return bus.messages(run.id)


def _empty_run_messages() -> list[ServerMessage]:
    """A Model with no steps: a finished run that shows nothing."""
    import time

    run = Run(EXPORT_NAME)
    run.started_at = run.finished_at = time.time()
    run.status = RunStatus.DONE
    bus = Bus(max_runs=1)
    publisher = Publisher(bus)
    publisher.run_started(run)
    publisher.run_finished(run)
    return bus.messages(run.id)


def _ended_at(node: TraceNode) -> float:
    return node.created_at + (node.usage.total_s if node.usage is not None else 0.0)


def _known_run_name(run_id: str) -> str:
    """The name of run ``run_id`` when it is one rudder still knows (the current run, the
    notebook cell's, the default run); nodes keep only their run's id."""
    for run in (runs.current_run.get(), runs._cell_run, runs._default):
        if run is not None and run.id == run_id:
            return run.name
    return EXPORT_NAME


# -- a Run -----------------------------------------------------------------------------------


def _run_messages(run: Run, bus: Bus) -> list[ServerMessage]:
    if run.started_at is None:
        raise ExportError(
            f"run {run.name!r} has not started, so there is nothing to export: export it "
            "inside or after its `with` block"
        )
    messages = complete_stream(bus, run.id)
    if not messages:
        raise ExportError(
            f"run {run.name!r} is no longer held: views keep the messages of the latest "
            f"{bus.max_runs} runs only; export a Model the run made instead (lm.to_html())"
        )
    return messages


def complete_stream(bus: Bus, run_id: str) -> list[ServerMessage]:
    """The messages ``bus`` holds for ``run_id``, led by a ``reset`` when its bounded history
    dropped the start, so that a view folds them without asking for a replay."""
    from rudder.visual.stream._protocol import Reset

    messages = bus.messages(run_id)
    if messages and messages[0].seq > 0:
        first = messages[0].seq
        reason = "history bounded: older messages were dropped"
        messages.insert(0, Reset(seq=first, run_id=run_id, reason=reason, first_seq=first))
    return messages


def _run_name_of(messages: list[ServerMessage]) -> str:
    for message in messages:
        if message.type in ("run_started", "run_finished"):
            return message.run.name
    return EXPORT_NAME


# -- the file --------------------------------------------------------------------------------


def _write_whole(target: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder and a rename,
    so that a failure leaves the old file (or none), never half a page."""
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _cannot_write(target, error) from error
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        mode = target.stat().st_mode & 0o777 if target.exists() else NEW_FILE_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as error:
        pathlib.Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(target, error) from error
        raise


def _cannot_write(target: pathlib.Path, error: OSError) -> ExportPathError:
    return ExportPathError(
        error.errno, f"cannot write the export to {target}: {error.strerror or error}"
    )
