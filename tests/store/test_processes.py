"""The store across processes: a run in a process killed with SIGKILL mid-generation, two
processes writing one store at once, and the default run at a normal exit.

Each test runs ``writer.py`` in subprocesses with the store in ``tmp_path``. Waiting for a
killed process's first batches polls the store (what the test must see), with a deadline
reached only when writing is broken.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rudder.store import Store
from rudder.store._store import INTERRUPTED, INTERRUPTED_ERROR

WRITER = Path(__file__).with_name("writer.py")
DEADLINE_S = 120.0


def start(store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(store), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err
    return out


def test_a_run_killed_mid_generation_is_readable_and_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    process = start(path, "endless")
    deadline = time.monotonic() + DEADLINE_S
    tokens = 0
    while tokens < 100:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run's tokens never reached the store"
        if path.exists():
            with Store(path, create=False) as store:
                runs = store.runs()
                if runs and runs[0].status == "running":
                    tokens = sum(len(n.tokens) for n in store.view(runs[0].id).nodes.values())
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=DEADLINE_S)
    assert process.returncode == -signal.SIGKILL

    with Store(path, create=False) as store:
        (summary,) = store.runs()
        assert (summary.name, summary.status) == ("endless", INTERRUPTED)
        view = store.view(summary.id)
        stored_tokens = sum(len(node.tokens) for node in view.nodes.values())
    assert stored_tokens >= tokens
    assert view.gaps == 0
    assert view.wants_replay_after is None
    assert view.text().startswith("Tell me everything: ")
    assert view.run is not None
    assert view.run.error == INTERRUPTED_ERROR


def test_two_processes_writing_one_store_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    processes = [start(path, "runs", "6") for _ in range(2)]
    written: dict[str, list[object]] = {}
    for process in processes:
        written.update(json.loads(finish(process)))
    assert len(written) == 12
    with Store(path, create=False) as store:
        stored = {summary.id: summary for summary in store.runs()}
        for run_id, (text, last_seq) in written.items():
            assert stored[run_id].status == "done"
            assert stored[run_id].messages == last_seq + 1  # type: ignore[operator]
            assert store.view(run_id).text() == text


def test_the_default_run_ends_done_when_the_process_exits(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    text = json.loads(finish(start(path, "default")))["text"]
    with Store(path, create=False) as store:
        (summary,) = store.runs()
        assert summary.status == "done"
        view = store.view(summary.id)
    assert view.run is not None
    assert view.run.status == "done"
    assert view.text() == text


def test_steps_with_echo_off_are_not_stored_and_the_process_exits_quietly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    process = start(path, "quiet")
    _out, err = process.communicate(timeout=DEADLINE_S)
    assert (process.returncode, err) == (0, "")
    with Store(path, create=False) as store:
        (run,) = store.runs()  # the default run: its start, its usage, its end
        assert run.status == "done"
        assert run.usage["output_tokens"] > 0
        assert [m.type for m in store.messages(run.id)] == ["run_started", "run_finished"]
        assert "not shown" not in store.view(run.id).text()


def test_rudder_view_serves_a_store_until_interrupted(tmp_path: Path) -> None:
    import urllib.request

    path = tmp_path / "runs.sqlite"
    written = json.loads(finish(start(path, "runs", "1")))
    server = subprocess.Popen(
        [sys.executable, "-m", "rudder", "view", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # printed once it listens
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/runs", timeout=DEADLINE_S) as answer:
            listed = json.load(answer)
        assert [run["id"] for run in listed] == list(written)
        with urllib.request.urlopen(url, timeout=DEADLINE_S) as answer:
            assert "rudder-viewer" in answer.read().decode()
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=DEADLINE_S)
    assert server.returncode == 0, err
