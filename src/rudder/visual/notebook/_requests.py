"""A view's requests about a run, answered by the kernel: explore from a token, tell more
about a token (:mod:`rudder._explore`).

A request is answered when it is handled: in a notebook, Jupyter handles a comm message
only when the kernel is idle, so a request made while a cell runs waits for the cell's end
(the client shows it as pending). An explored branch's nodes go to the stream of the run the
request came from, so the view that asked shows them, marked as explored.
"""

from __future__ import annotations

from rudder._explore import explore, in_run, token_detail
from rudder.errors import RudderError
from rudder.trace._records import candidate_record
from rudder.visual.stream._protocol import (
    DetailAnswer,
    DetailRequest,
    ExploreAnswer,
    ExploreRequest,
    TokenDetailRecord,
)


def answer_request(request: ExploreRequest | DetailRequest) -> ExploreAnswer | DetailAnswer:
    """Run what ``request`` asks for; a request that cannot be answered (its generation's
    Models are gone, a token the grammar forbids ...) gets an error answer saying why."""
    if isinstance(request, DetailRequest):
        return _detail(request)
    try:
        with in_run(request.run_id):
            branch = explore(request.node_id, request.token_index, request.token_id)
    except RudderError as error:
        return ExploreAnswer(
            run_id=request.run_id, request_id=request.request_id, status="error", error=str(error)
        )
    assert branch.trace is not None
    return ExploreAnswer(
        run_id=request.run_id,
        request_id=request.request_id,
        status="done",
        branch_node_id=branch.trace.id,
    )


def _detail(request: DetailRequest) -> DetailAnswer:
    try:
        detail = token_detail(request.node_id, request.token_index)
    except RudderError as error:
        return DetailAnswer(
            run_id=request.run_id, request_id=request.request_id, status="error", error=str(error)
        )
    record = TokenDetailRecord(
        node_id=detail.node_id,
        token_index=detail.token_index,
        candidates=[candidate_record(c) for c in detail.candidates],
        top_allowed=[candidate_record(c) for c in detail.top_allowed],
        allowed_count=detail.allowed_count,
        before=b"".join(b for _, b in detail.before).decode("utf-8", errors="replace"),
        after=b"".join(t.bytes for t in detail.after).decode("utf-8", errors="replace"),
    )
    return DetailAnswer(
        run_id=request.run_id, request_id=request.request_id, status="done", detail=record
    )
