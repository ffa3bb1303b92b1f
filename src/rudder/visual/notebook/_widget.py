"""The notebook widget: an anywidget that streams one run's messages to the client.

Messages go out as custom comm messages as they are published (never as an ever-growing
synced trait); the widget's module keeps them per model and hosts the client in a
sandboxed iframe. A client that missed some asks for a replay, answered from the bus.
When the run is done its messages are saved once in ``_final``, so a saved notebook shows
the output without a kernel, and the output's ``text/html`` becomes a static rendering for
viewers without widgets.
"""

from __future__ import annotations

import logging
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from rudder.visual.html._page import client_page, messages_json
from rudder.visual.html._static_html import static_outputs
from rudder.visual.notebook._followed import FollowedRun
from rudder.visual.stream._bus import Bus, Subscription, get_bus
from rudder.visual.stream._protocol import (
    DetailRequest,
    ExploreRequest,
    parse_client_message,
)
from rudder.visual.stream._view_state import LIVE_VIEW_NODES, RunView

if TYPE_CHECKING:
    from rudder.visual.stream._protocol import ServerMessage

_log = logging.getLogger("rudder.visual")

WIDGET_MODULE = Path(str(resources.files("rudder.visual") / "static" / "widget.js"))


class RunWidget(anywidget.AnyWidget, FollowedRun):
    """The live view of one run (``run_id``) in a notebook output."""

    _esm = WIDGET_MODULE
    _page = traitlets.Unicode("").tag(sync=True)
    _final = traitlets.Unicode("").tag(sync=True)
    run_id = traitlets.Unicode("").tag(sync=True)
    #: The widget's own model id, saved with it: a view restored from a saved notebook
    #: looks its model up by it to tell whether a kernel still holds it (can answer).
    _comm_id = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run_id: str, *, bus: Bus | None = None, **kwargs: Any) -> None:
        super().__init__(run_id=run_id, _page=client_page(), **kwargs)
        self._comm_id = self.model_id
        self._bus = bus if bus is not None else get_bus()
        self._view = RunView(run_id, LIVE_VIEW_NODES)
        self._view_lock = threading.Lock()
        self._finished = threading.Event()
        self.on_msg(self._client_message)
        self._subscription: Subscription | None = self._bus.subscribe(_Relay(self), run_id=run_id)

    # -- the bus's side -----------------------------------------------------------------------

    def deliver(self, message: ServerMessage) -> None:
        """Send one message of the run to the frontend (from the subscription's thread)."""
        self.send({"rudder": "messages", "json": messages_json([message])})
        with self._view_lock:
            self._view.apply(message)
        if message.type == "run_finished":
            self._save_final()

    def _save_final(self) -> None:
        from rudder.visual.html._export import complete_stream

        self._final = messages_json(complete_stream(self._bus, self.run_id))
        self._finished.set()

    # -- the client's side --------------------------------------------------------------------

    def _client_message(self, _widget: object, content: Any, _buffers: object) -> None:
        if not isinstance(content, dict) or content.get("rudder") != "client":
            return
        try:
            message = parse_client_message(content.get("message") or {})
        except ValueError as error:
            _log.warning("ignored a malformed message from the notebook client: %s", error)
            return
        if isinstance(message, (ExploreRequest, DetailRequest)):
            self._answer(message)
            return
        subscription = self._subscription
        if subscription is not None:
            subscription.handle(message)
            return
        # Closed: answer from what the bus still holds.
        after = message.after_seq if message.type == "replay_request" else message.last_seq
        held = self._bus.messages(self.run_id, -1 if after is None else after)
        if held:
            self.send({"rudder": "messages", "json": messages_json(held)})

    def _answer(self, request: ExploreRequest | DetailRequest) -> None:
        from rudder.visual.notebook._requests import answer_request

        answer = answer_request(request)
        if answer.type == "explore_answer" and answer.status == "done":
            if self._subscription is None:
                # The cell has ended: send the branch's messages, and save them with the rest.
                with self._view_lock:
                    after = self._view.last_seq
                for message in self._bus.messages(self.run_id, after):
                    self.deliver(message)
                self._save_final()
            else:
                self.flush()
        self.send({"rudder": "answer", "json": answer.model_dump_json()})

    # -- the cell's end -----------------------------------------------------------------------

    def mimebundle(self) -> dict[str, Any]:
        """The output's data: the widget, static HTML for viewers without widgets, and the
        run's text for plain-text readers (nbconvert to text, a terminal client)."""
        made = self._repr_mimebundle_()
        data: dict[str, Any] = dict((made[0] if isinstance(made, tuple) else made) or {})
        with self._view_lock:
            data.update(static_outputs(self._view))
        return data

    @property
    def live(self) -> bool:
        return self.comm is not None

    def retire(self, handle: Any) -> None:
        """Replace this output (``handle``, its display) with its static HTML, then close
        the widget: ipywidgets keeps every open widget, with its saved run, until closed."""
        self.close_stream()
        with self._view_lock:
            handle.update(static_outputs(self._view), raw=True)
        self.close()


class _Relay:
    """The widget as the bus sees it: a renderer."""

    __slots__ = ("widget",)

    def __init__(self, widget: RunWidget) -> None:
        self.widget = widget

    def send(self, message: ServerMessage) -> None:
        self.widget.deliver(message)
