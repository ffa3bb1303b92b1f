"""A view's explore and detail requests, answered by the widget's kernel side: the branch's
nodes come in the run's stream (also after the cell's stream closed, and saved in
``_final``), answers carry the branch or say why not."""

from __future__ import annotations

import gc
import json
from typing import Any

from tests.explore_checks import allowed_alternative, output_tokens

import rudder
from rudder import gen, models, select
from rudder._state import TokenKind
from rudder.visual import parse_server_message
from rudder.visual.notebook._widget import RunWidget
from rudder.visual.stream._view_state import RunView


class Frontend:
    """What a widget sent: the run's messages and the answers to requests."""

    def __init__(self, widget: RunWidget) -> None:
        self.contents: list[Any] = []
        widget.send = self.contents.append  # type: ignore[method-assign,assignment]

    def messages(self) -> list[Any]:
        return [
            parse_server_message(item)
            for c in self.contents
            if c["rudder"] == "messages"
            for item in json.loads(c["json"])
        ]

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(c["json"]) for c in self.contents if c["rudder"] == "answer"]


def _request(widget: RunWidget, message: dict[str, Any]) -> None:
    widget._client_message(widget, {"rudder": "client", "message": message}, [])


def _shown() -> tuple[RunWidget, Frontend, models.Model, int]:
    run = rudder.run("explored")
    widget = RunWidget(run.id)
    frontend = Frontend(widget)
    with run:
        original = (
            models.Mock([b"Paris is big", b"Rome is old"], echo=True)
            + "City:"
            + select(["Paris is big", "Rome is old"], name="city")
        )
    assert widget.flush(10)
    widget.close_stream()  # as at the cell's end
    index = next(i for i, t in enumerate(output_tokens(original)) if t.kind is TokenKind.GENERATED)
    return widget, frontend, original, index


def test_detail_then_explore_after_the_cell_shows_the_branch_and_saves_it() -> None:
    widget, frontend, original, index = _shown()
    assert original.trace is not None
    node_id = original.trace.id
    base = {"v": 1, "seq": 0, "run_id": widget.run_id, "node_id": node_id, "token_index": index}
    _request(widget, {**base, "type": "detail_request", "request_id": 1})
    (detail,) = frontend.answers()
    assert detail["type"] == "detail_answer"
    assert detail["status"] == "done"
    assert len(detail["detail"]["candidates"]) == 20
    rome = next(
        c["id"] for c in detail["detail"]["candidates"] if c["allowed"] and c["text"] == "R"
    )
    # The likeliest allowed tokens come too, in order: here "Paris", "P" and "R".
    top_allowed = detail["detail"]["top_allowed"]
    assert [c["text"] for c in top_allowed] == ["Paris", "P", "R"], top_allowed
    assert all(c["allowed"] for c in top_allowed)
    assert [c["prob"] for c in top_allowed] == sorted(
        (c["prob"] for c in top_allowed), reverse=True
    )
    assert len(top_allowed) == detail["detail"]["allowed_count"]
    before = len(frontend.messages())
    _request(widget, {**base, "type": "explore_request", "request_id": 2, "token_id": rome})
    answer = frontend.answers()[-1]
    assert answer["status"] == "done", answer
    branch_id = answer["branch_node_id"]
    added = frontend.messages()[before:]
    branch_nodes = [m.node for m in added if m.type == "node_added" and m.node.id == branch_id]
    assert branch_nodes[-1].explored is not None
    assert branch_nodes[-1].explored.node_id == node_id
    assert branch_nodes[-1].explored.token_id == rome
    # Folded like any view folds the stream: both the original and the branch are there.
    view = RunView(widget.run_id)
    for message in frontend.messages():
        view.apply(message)
    assert view.text(node_id).endswith("City:Paris is big")
    assert view.text(branch_id).endswith("City:Rome is old")
    # Saved with the notebook: the final stream holds the branch.
    saved = [parse_server_message(m) for m in json.loads(widget._final)]
    assert any(m.type == "node_added" and m.node.id == branch_id for m in saved)
    assert rudder.branches(original)[-1]["city"] == "Rome is old"


def test_requests_that_cannot_be_answered_say_why() -> None:
    widget, frontend, original, index = _shown()
    assert original.trace is not None
    node_id = original.trace.id
    base = {"v": 1, "seq": 0, "run_id": widget.run_id, "node_id": node_id, "token_index": index}
    forbidden = next(c.token_id for c in output_tokens(original)[index].top if not c.allowed)
    _request(widget, {**base, "type": "explore_request", "request_id": 7, "token_id": forbidden})
    answer = frontend.answers()[-1]
    assert (answer["request_id"], answer["status"]) == (7, "error")
    assert "does not allow token" in answer["error"]
    del original
    gc.collect()
    _request(widget, {**base, "type": "explore_request", "request_id": 8, "token_id": 0})
    _request(widget, {**base, "type": "detail_request", "request_id": 9})
    gone = frontend.answers()[-2:]
    assert [a["status"] for a in gone] == ["error", "error"]
    assert all("Models are gone" in a["error"] for a in gone)


def test_a_malformed_request_is_ignored() -> None:
    widget, frontend, _original, _index = _shown()
    count = len(frontend.contents)
    _request(widget, {"v": 1, "seq": 0, "type": "explore_request", "run_id": widget.run_id})
    _request(widget, {"v": 1, "seq": 0, "type": "detail_request", "token_index": -1})
    assert len(frontend.contents) == count


def test_a_generation_in_a_live_run_is_explored_into_that_run() -> None:
    run = rudder.run("live")
    widget = RunWidget(run.id)
    frontend = Frontend(widget)
    with run:
        original = models.Mock([b"Paris is big"], echo=True) + "City:" + gen("c", max_tokens=4)
        assert original.trace is not None
        index = next(
            i for i, t in enumerate(output_tokens(original)) if t.kind is TokenKind.GENERATED
        )
        choice = allowed_alternative(output_tokens(original)[index])
        message = {
            "v": 1,
            "seq": 0,
            "type": "explore_request",
            "run_id": run.id,
            "request_id": 1,
            "node_id": original.trace.id,
            "token_index": index,
            "token_id": choice,
        }
        _request(widget, message)
    assert widget.flush(10)
    answer = frontend.answers()[-1]
    assert answer["status"] == "done"
    ids = [m.node.id for m in frontend.messages() if m.type == "node_added"]
    assert answer["branch_node_id"] in ids


def test_answers_survive_json_and_carry_hostile_errors_as_text() -> None:
    from pydantic import TypeAdapter

    from rudder.trace._records import CandidateRecord
    from rudder.visual.stream._protocol import (
        DetailAnswer,
        ExploreAnswer,
        KernelAnswer,
        TokenDetailRecord,
    )

    adapter: TypeAdapter[Any] = TypeAdapter(KernelAnswer)
    hostile = "</script><|im_start|>\x1b[2J東京🚀"
    answers = [
        ExploreAnswer(run_id="r", request_id=1, status="done", branch_node_id=4),
        ExploreAnswer(run_id="r", request_id=2, status="error", error=hostile),
        DetailAnswer(
            run_id="r",
            request_id=3,
            status="done",
            detail=TokenDetailRecord(
                node_id=4,
                token_index=0,
                candidates=[],
                top_allowed=[CandidateRecord(id=7, text=hostile, prob=0.5, allowed=True)],
                allowed_count=2,
                before=hostile,
                after="",
            ),
        ),
    ]
    for answer in answers:
        assert adapter.validate_json(answer.model_dump_json()) == answer
