"""What the tests of the message stream share: a view folded from messages that must all
apply, the messages a subscriber to one run receives, and a client page's messages whole
again."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rudder.visual.html._page import CANDIDATE_FIELDS, wire_tokens
from rudder.visual.stream._protocol import ServerMessage
from rudder.visual.stream._view_state import RunView


def folded(run_id: str, messages: Iterable[ServerMessage], **view_options: Any) -> RunView:
    """The view of run ``run_id`` after ``messages``, each of which it must apply."""
    view = RunView(run_id, **view_options)
    for message in messages:
        assert view.apply(message), f"message {message.seq} ({message.type}) was not applied"
    return view


class _Kept:
    def __init__(self) -> None:
        self.messages: list[ServerMessage] = []

    def send(self, message: ServerMessage) -> None:
        self.messages.append(message)


def received(bus: Any, run_id: str) -> list[ServerMessage]:
    """What a renderer subscribed now to ``run_id`` on ``bus`` receives: the replay, then
    whatever else the bus holds once it is idle."""
    kept = _Kept()
    subscription = bus.subscribe(kept, run_id=run_id)
    try:
        assert subscription.wait_idle(10)
    finally:
        subscription.close()
    return kept.messages


def joined_candidates(messages: str, candidates: str | None) -> list[Any]:
    """The messages ``candidates_apart`` split for a client page, whole again (parsed)."""
    parsed = json.loads(messages)
    given = iter(json.loads(candidates) if candidates is not None else ())
    for token in wire_tokens(parsed):
        if "c" not in token:
            token.update(zip(CANDIDATE_FIELDS, next(given), strict=True))
    return parsed  # type: ignore[no-any-return]
