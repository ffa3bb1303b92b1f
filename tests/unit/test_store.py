"""The run store: real programs on ``models.Mock`` written through the process's bus into a
SQLite file in ``tmp_path``, and read back.

A run read back from the store must fold into the very ``RunView`` the bus's stream folds
into. Writers are waited for with ``StoreWriter.flush`` (it waits for the subscription and
the writer's thread), never with sleeps. Process-level behaviour (SIGKILL, two writers at
once, the default run at exit) is in ``tests/store``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from tests.stream_checks import folded

import rudder
from rudder import assistant, gen, models, select, system, user
from rudder.errors import RudderError, SettingsError, StoreError
from rudder.store import Store
from rudder.store._schema import MIGRATIONS, SCHEMA_VERSION
from rudder.store._store import INTERRUPTED, INTERRUPTED_ERROR
from rudder.store._writer import StoreWriter, current_writer
from rudder.trace._records import RunRecord
from rudder.visual import Bus, NodeAdded, RunStarted, get_bus
from rudder.visual.stream._view_state import RunView

HOSTILE = "<|im_start|>system\n</s><script>alert(1)</script>\x1b[31mred\x1b[0m 日本語 🦀🎉 '%_\""


def flushed() -> None:
    writer = current_writer()
    assert writer is not None
    assert writer.flush()


def bus_view(run_id: str) -> RunView:
    return folded(run_id, get_bus().messages(run_id))


def program(name: str, question: str = HOSTILE) -> tuple[rudder.trace.Run, rudder.models.Model]:
    lm = models.Mock([b"Paris", "東京🗼".encode()], echo=True)
    with rudder.run(name) as run:
        with system():
            lm += "You answer in one word. " + question
        with user():
            lm += "Capital of France?"
        with assistant():
            lm += gen("answer", max_tokens=12) + " " + select(["yes", "no"], name="sure")
    return run, lm


def test_a_run_read_back_folds_into_the_view_the_bus_streamed(store_path: Path) -> None:
    run, lm = program("read back")
    flushed()
    with Store(store_path) as store:
        stored = store.view(run.id)
        assert stored == bus_view(run.id)
        assert stored.text().endswith(lm["sure"])
        assert HOSTILE in stored.text()  # untrusted text is kept as text, byte for byte
        summary = store.run(run.id)
    assert (summary.name, summary.status, summary.model) == ("read back", "done", "mock")
    assert summary.captures == {"answer": lm["answer"], "sure": lm["sure"]}
    assert summary.usage["output_tokens"] == lm.usage.output_tokens
    assert summary.messages == len(get_bus().messages(run.id))


def test_runs_are_listed_newest_first_and_searched_by_name_capture_and_text(
    store_path: Path,
) -> None:
    # Words no earlier test's run holds (those runs are replayed from the bus into the store).
    tag = uuid.uuid4().hex[:10]
    first, _ = program(f"alpha{tag} run", question=f"Which 市{tag} is it?")
    second, lm = program(f"beta{tag} run", question="plain")
    flushed()
    with Store(store_path) as store:
        listed = [summary.id for summary in store.runs()]
        assert listed.index(second.id) < listed.index(first.id)
        assert [s.id for s in store.runs(f"ALPHA{tag.upper()}")] == [first.id]
        assert {first.id, second.id} <= {s.id for s in store.runs("MOCK")}  # the model
        assert [s.id for s in store.runs(f"市{tag} is")] == [first.id]
        assert second.id in [s.id for s in store.runs(lm["answer"])]
        # LIKE's wildcards and quotes in a query are literal text (earlier tests' runs,
        # replayed from the bus into this store, hold them).
        for literal in ("%", "_", "'\""):
            found = {s.id for s in store.runs(literal)}
            assert first.id not in found
            assert second.id not in found
        with pytest.raises(StoreError, match="query is a str"):
            store.runs(42)  # type: ignore[arg-type]


def test_a_run_still_running_is_searched_in_its_messages(tmp_path: Path) -> None:
    bus = Bus()
    with Store(tmp_path / "s.sqlite") as store:
        writer = StoreWriter(store, bus)
        lm = models.Mock(echo=True)
        publish_started(bus, "r1", "live")
        node = (lm + 'a 🦀 "quoted" line\n').trace
        assert node is not None
        from rudder.trace._records import node_record

        bus.publish("r1", NodeAdded, node=node_record(node, for_view=True))
        assert writer.flush()
        assert [s.id for s in store.runs('🦀 "quoted" line\n')] == ["r1"]
        assert store.run("r1").status == "running"
        writer.close()


def publish_started(bus: Bus, run_id: str, name: str) -> None:
    record = RunRecord(id=run_id, name=name, status="running", started_at=1.0)
    bus.publish(run_id, RunStarted, run=record)


def test_a_run_its_writer_left_running_reads_as_interrupted(tmp_path: Path) -> None:
    bus = Bus()
    path = tmp_path / "s.sqlite"
    writer = StoreWriter(Store(path), bus)
    publish_started(bus, "cut", "cut short")
    writer.close()  # the process ended the store without ending the run
    with Store(path, create=False) as store:
        assert store.run("cut").status == INTERRUPTED
        messages = store.messages("cut")
        assert [m.type for m in messages] == ["run_started", "run_finished"]
        # A view polling for more gets the end once, then nothing.
        assert store.messages("cut", after_seq=0) == messages[1:]
        assert store.messages("cut", after_seq=1) == []
        view = store.view("cut")
    assert view.run is not None
    assert (view.run.status, view.run.error) == ("error", INTERRUPTED_ERROR)


def test_the_first_schema_version_is_migrated(tmp_path: Path) -> None:
    run, lm = program("from v1")
    messages = get_bus().messages(run.id)
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    old.execute("INSERT INTO writers (pid, host, opened_at, closed_at) VALUES (1, 'h', 0, 1)")
    old.execute(
        "INSERT INTO runs (id, name, status, writer_id) VALUES (?, 'from v1', 'done', 1)", (run.id,)
    )
    old.executemany(
        "INSERT INTO messages VALUES (?, ?, ?, ?)",
        [(run.id, m.seq, m.type, m.model_dump_json()) for m in messages],
    )
    old.commit()
    old.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.run(run.id).model == ""  # version 1 did not know it
        assert lm.trace is not None
        assert store.generation(run.id, lm.trace.id) is None  # nor what exploring needs
        assert store.run(run.id).captures == {"answer": lm["answer"], "sure": lm["sure"]}
        assert [s.id for s in store.runs(lm["answer"])] == [run.id]
        assert [s.id for s in store.runs("Capital of France")] == [run.id]  # in its messages
        assert store.view(run.id) == bus_view(run.id)


def test_a_store_newer_than_this_rudder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this rudder reads"):
        Store(path)


def test_retention_keeps_the_newest_runs_within_the_bounds(store_path: Path) -> None:
    rudder.settings.store_max_runs = 2
    runs = [program(f"kept {n}")[0] for n in range(4)]
    flushed()
    with Store(store_path) as store:
        # A run still being written (the process's default run, if any) is never deleted.
        ended = {s.id for s in store.runs() if s.status != "running"}
        assert ended == {runs[2].id, runs[3].id}
        size = store.run(runs[3].id).bytes
        assert store.keep(max_runs=10, max_bytes=size) == [runs[2].id]
        assert {s.id for s in store.runs() if s.status != "running"} == {runs[3].id}
        with pytest.raises(StoreError, match="holds no run"):
            store.messages(runs[0].id)


def test_runs_are_found_by_id_prefix_and_name(store_path: Path) -> None:
    run, _ = program("named once")
    flushed()
    with Store(store_path) as store:
        assert store.resolve(run.id[:8]).id == run.id
        assert store.resolve("named once").id == run.id
        for wrong in ("", "no such run", None):
            with pytest.raises(StoreError):
                store.resolve(wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [42, "", "   ", b"runs.sqlite", 1.5])
def test_a_store_setting_of_the_wrong_type_is_refused(value: object) -> None:
    before = rudder.settings.store
    with pytest.raises(SettingsError, match="store must be a path"):
        rudder.settings.store = value  # type: ignore[assignment]
    assert rudder.settings.store == before
    assert current_writer() is None


def test_a_store_that_cannot_be_opened_is_refused_when_set(tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("not SQLite " * 1000)
    for bad in (tmp_path, not_a_store):
        with pytest.raises(SettingsError, match="store") as caught:
            rudder.settings.store = bad
        assert isinstance(caught.value, RudderError)
        assert rudder.settings.store is None
        assert current_writer() is None
    with pytest.raises(StoreError, match="there is no store"):
        Store(tmp_path / "missing.sqlite", create=False)
    for wrong in (None, 42, "", b"runs.sqlite"):
        with pytest.raises(StoreError, match="a store is a path"):
            Store(wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, True, "10"])
def test_retention_bounds_must_be_positive_ints(value: object) -> None:
    with pytest.raises(SettingsError, match=">= 1"):
        rudder.settings.store_max_runs = value  # type: ignore[assignment]
    with pytest.raises(SettingsError, match=">= 1"):
        rudder.settings.store_max_bytes = value  # type: ignore[assignment]
    assert (rudder.settings.store_max_runs, rudder.settings.store_max_bytes) == (10_000, 2**30)


def test_the_default_store_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rudder.store import default_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "rudder" / "runs.sqlite"


def test_stored_messages_are_the_protocols_json(store_path: Path) -> None:
    run, _ = program("json")
    flushed()
    with Store(store_path) as store:
        bodies = store.messages_json(run.id)
    assert [json.loads(body)["seq"] for body in bodies] == list(range(len(bodies)))
    assert bodies == [m.model_dump_json() for m in get_bus().messages(run.id)]


def test_rudder_export_writes_a_stored_run_as_the_client_page(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rudder.__main__ import main
    from rudder.visual.html._page import client_page, messages_json

    run, _ = program("to export")
    flushed()
    out = tmp_path / "run.html"
    assert main(["export", run.id[:10], str(out), "--store", str(store_path)]) == 0
    assert str(out) in capsys.readouterr().out
    expected = client_page(messages_json(get_bus().messages(run.id)), title="to export · rudder")
    assert out.read_text(encoding="utf-8") == expected


def test_rudder_export_and_view_say_what_is_wrong(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rudder.__main__ import main

    program("exists")
    flushed()
    missing = tmp_path / "missing.sqlite"
    page, nowhere = str(tmp_path / "x.html"), str(tmp_path / "no" / "x.html")
    cases = [
        (["export", "no such run", page, "--store", str(store_path)], "no run"),
        (["export", "exists", nowhere, "--store", str(store_path)], "folder"),
        (["export", "exists", page, "--store", str(missing)], "no store"),
        (["view", str(missing)], "no store"),
        (["view", str(store_path), "--port", "70000"], "port"),
    ]
    for argv, said in cases:
        assert main(argv) == 2
        assert said in capsys.readouterr().err
    assert not missing.exists()
