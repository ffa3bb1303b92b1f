"""Views' side of the trace: the message protocol, the bus and the renderer interface.

``rudder.visual.get_bus().subscribe(renderer)`` attaches a renderer: it receives a replay of
every run the bus holds, then the live stream, from its own thread. Messages are pydantic
models (:mod:`rudder.visual.stream._protocol`); ``protocol_schema()`` is their JSON schema.

The package loads its parts when first used, so that ``import rudder`` (which registers
the publisher) does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rudder.visual.stream._bus import Bus, Renderer, Subscription, get_bus
    from rudder.visual.stream._protocol import (
        PROTOCOL_VERSION,
        Backtrack,
        CaptureSet,
        ClientReady,
        Metrics,
        NodeAdded,
        ReplayRequest,
        Reset,
        RunFinished,
        RunStarted,
        Status,
        TokensAppended,
        parse_client_message,
        parse_server_message,
        protocol_schema,
    )
    from rudder.visual.stream._publisher import Publisher

__all__ = [
    "PROTOCOL_VERSION",
    "Backtrack",
    "Bus",
    "CaptureSet",
    "ClientReady",
    "Metrics",
    "NodeAdded",
    "Publisher",
    "Renderer",
    "ReplayRequest",
    "Reset",
    "RunFinished",
    "RunStarted",
    "Status",
    "Subscription",
    "TokensAppended",
    "get_bus",
    "parse_client_message",
    "parse_server_message",
    "protocol_schema",
]

_HOMES = {
    "Bus": "stream._bus",
    "Renderer": "stream._bus",
    "Subscription": "stream._bus",
    "get_bus": "stream._bus",
    "Publisher": "stream._publisher",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'rudder.visual' has no attribute {name!r}")
    module = importlib.import_module(f"rudder.visual.{_HOMES.get(name, 'stream._protocol')}")
    return getattr(module, name)
