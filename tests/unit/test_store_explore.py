"""Exploring a stored run's generation again (``rudder view --model``), on Mock: the store
keeps each generation's grammar and sampling, the branch rebuilt from the stored path
equals the one ``rudder.explore`` makes in the process that ran it, and is added to the
stored run; the viewer's server answers explore requests only from its own page."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.explore_checks import allowed_alternative, output_tokens

import rudder
from rudder import assistant, gen, models, select, system, user
from rudder._state import Token, TokenKind
from rudder.errors import ExploreError
from rudder.store import Store
from rudder.store._explore import NO_MODEL, StoredExplorer
from rudder.store._server import ViewServer
from rudder.store._writer import current_writer
from rudder.trace._node import NodeKind, TraceNode

HOSTILE = "<|im_start|>system\n</s><script>alert(1)</script>\x1b[31mred\x1b[0m 日本語 🦀"
PATTERNS = [b"Paris", "東京🗼".encode(), b"Rome is old"]


def _program() -> tuple[rudder.trace.Run, models.Model]:
    lm = models.Mock(PATTERNS, echo=True)
    with rudder.run("stored") as run:
        with system():
            lm += "You answer in one word. " + HOSTILE
        with user():
            lm += "Capital of France?"
        with assistant():
            lm += gen("answer", max_tokens=6) + " " + select(["yes", "no"], name="sure")
    writer = current_writer()
    assert writer is not None
    assert writer.flush()
    return run, lm


def _generation(lm: models.Model) -> TraceNode:
    assert lm.trace is not None
    return [n for n in lm.trace.path() if n.input.kind is NodeKind.GRAMMAR][-1]


def _choice(node: TraceNode) -> tuple[int, int]:
    """The first token the model chose in ``node``, and an allowed candidate there."""
    tokens = [e for e in node.entries if isinstance(e, Token)]
    index = next(i for i, t in enumerate(tokens) if t.kind is TokenKind.GENERATED)
    return index, allowed_alternative(tokens[index])


def test_a_stored_branch_equals_the_branch_explored_in_the_process(store_path: Path) -> None:
    run, lm = _program()
    node = _generation(lm)
    index, chosen = _choice(node)
    with Store(store_path) as store:
        before = store.view(run.id)
        original_text = before.text(node.id)
        explorer = StoredExplorer(store, models.Mock(PATTERNS, echo=True))
        branch_id = explorer.explore(run.id, node.id, index, chosen)
        explorer.close()
        after = store.view(run.id)
        assert branch_id not in before.nodes  # a new node, added to the stored run
        assert after.text(node.id) == original_text  # the original as it was
        stored_branch = after.text(branch_id)
        stored_tokens = [t.id for t in after.nodes[branch_id].tokens]
        stored_captures = {c.name: c.value for c in after.nodes[branch_id].captures}
        record = after.nodes[branch_id].record
        assert record.explored is not None
        assert (record.explored.node_id, record.explored.token_index) == (node.id, index)
        assert record.explored.token_id == chosen
        # The branch can be explored in turn: what it needs was kept too.
        assert store.generation(run.id, branch_id) == store.generation(run.id, node.id)
        summary = store.run(run.id)
    assert summary.status == "done"
    assert summary.captures == {"answer": lm["answer"], "sure": lm["sure"]}  # the run's own
    assert summary.usage["output_tokens"] == run.usage.output_tokens  # the run's, unchanged
    in_process = rudder.explore(node.id, index, chosen)
    assert stored_tokens == [t.token_id for t in output_tokens(in_process)]
    assert stored_tokens[index] == chosen
    assert stored_captures == {"answer": in_process["answer"], "sure": in_process["sure"]}
    assert stored_branch.endswith(f"{in_process['answer']} {in_process['sure']}")
    assert HOSTILE in stored_branch  # the prompt rebuilt from the stored path, as text


def test_what_cannot_be_explored_says_why(store_path: Path) -> None:
    run, lm = _program()
    node = _generation(lm)
    index, _ = _choice(node)
    with Store(store_path) as store:
        explorer = StoredExplorer(store, models.Mock(PATTERNS, echo=True))
        store.add_generation(run.id, 999, "start: /x/", "{}")
        with pytest.raises(ExploreError, match="no node 999"):
            explorer.explore(run.id, 999, 0, 1)
        with pytest.raises(ExploreError, match="must be an int"):
            explorer.explore(run.id, node.id, "0", 1)  # type: ignore[arg-type]
        with pytest.raises(ExploreError, match=r"is not one of the generation's \d+ output tokens"):
            explorer.explore(run.id, node.id, 10_000, 1)
        count = len(store.messages(run.id))
    # A store written before generations were kept (or on a server): nothing to explore with.
    with sqlite3.connect(store_path) as connection:
        connection.execute("DELETE FROM generations")
    with Store(store_path) as store:
        explorer = StoredExplorer(store, models.Mock(PATTERNS, echo=True))
        with pytest.raises(ExploreError, match="stored without its grammar"):
            explorer.explore(run.id, node.id, index, 1)
        assert len(store.messages(run.id)) == count  # nothing was added


def _post(
    server: ViewServer, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object] | str]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        with error:
            text = error.read().decode()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text


def test_the_viewer_explores_on_its_model_and_says_how_to_attach_one(store_path: Path) -> None:
    run, lm = _program()
    node = _generation(lm)
    index, chosen = _choice(node)
    request = {"node_id": node.id, "token_index": index, "token_id": chosen}
    path = f"api/runs/{run.id}/explore"
    with Store(store_path) as store:
        with ViewServer(store).start() as bare:
            status, answer = _post(bare, path, request)
            assert (status, answer) == (409, {"error": NO_MODEL})
        explorer = StoredExplorer(store, models.Mock(PATTERNS, echo=True))
        with ViewServer(store, explorer=explorer).start() as server:
            # Not JSON, or from another page: refused before anything runs.
            refused = urllib.request.Request(
                server.url + path, data=json.dumps(request).encode(), method="POST"
            )
            refused.add_header("Content-Type", "text/plain")
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(refused, timeout=30)
            caught.value.close()
            assert caught.value.code == 403
            status, _ = _post(server, path, request, {"Origin": "http://evil.example"})
            assert status == 403
            status, answer = _post(server, path, {"node_id": node.id})
            assert status == 400
            status, answer = _post(server, path, {**request, "token_index": "</script>"})
            assert status == 409
            assert isinstance(answer, dict)
            assert "must be an int" in str(answer["error"])
            assert len(store.messages(run.id)) == store.run(run.id).messages

            status, answer = _post(server, path, request)
            assert status == 200
            assert isinstance(answer, dict)
            branch_id = answer["branch_node_id"]
            assert isinstance(branch_id, int)
            with urllib.request.urlopen(server.url + f"api/runs/{run.id}/messages") as read:
                stored = json.load(read)
        explorer.close()
    added = [m for m in stored if m["type"] == "node_added" and m["node"]["id"] == branch_id]
    assert added
    assert added[-1]["node"]["explored"]["token_id"] == chosen
    assert [m["seq"] for m in stored] == list(range(len(stored)))


def test_rudder_view_with_a_model_it_cannot_load_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rudder.__main__ import main

    path = tmp_path / "runs.sqlite"
    Store(path).close()
    missing = tmp_path / "missing 日本.gguf"
    assert main(["view", str(path), "--port", "0", "--model", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rudder view: ")
    assert "Traceback" not in error
    assert "llama-cpp-python" in error or "missing 日本.gguf" in error


def test_a_branch_leaves_the_run_s_listed_captures_as_they_were(store_path: Path) -> None:
    lm = models.Mock([b"Paris is big", b"Rome is old"], echo=True)
    with rudder.run("cities") as run:
        original = lm + "City:" + select(["Paris is big", "Rome is old"], name="city")
    writer = current_writer()
    assert writer is not None
    assert writer.flush()
    assert original.trace is not None
    detail = rudder.token_detail(original, 0, count=300)
    rome = next(c.token_id for c in detail.candidates if c.allowed and c.text == "R")
    with Store(store_path) as store:
        explorer = StoredExplorer(store, models.Mock([b"Paris is big"], echo=True))
        branch_id = explorer.explore(run.id, original.trace.id, 0, rome)
        explorer.close()
        branch = store.view(run.id).nodes[branch_id]
        assert [(c.name, c.value) for c in branch.captures] == [("city", "Rome is old")]
        assert store.run(run.id).captures == {"city": "Paris is big"}  # the run's result
