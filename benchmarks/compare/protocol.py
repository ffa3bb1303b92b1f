"""The driver's conversation with a worker: one JSON object per line, each way.

The driver writes ``{"command": name, "args": {...}}`` to the worker's stdin; the worker
answers on its stdout with ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
traceback}``. The worker keeps that stream to itself: anything else written to its stdout
(a library's print) is sent to stderr, which the driver writes to a log file.

Both workers import this module, so it uses the standard library only: the peer's
environment has no rudder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any


class WorkerError(RuntimeError):
    """A worker failed a command, or stopped answering."""


class Worker:
    """A long-lived worker process; ``call`` sends one command and waits for its answer."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("w")
        self._process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )

    def call(self, command: str, **args: Any) -> Any:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(json.dumps({"command": command, "args": args}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._stopped(command)) from None
        line = stdout.readline()
        if not line:
            raise WorkerError(self._stopped(command))
        answer = json.loads(line)
        if not answer["ok"]:
            raise WorkerError(f"{self.name} worker failed {command!r}:\n{answer['error']}")
        return answer["result"]

    def _stopped(self, command: str) -> str:
        self._process.wait(timeout=30)
        self._log_file.flush()
        tail = self.log.read_text(errors="replace")[-3000:]
        return (
            f"{self.name} worker stopped (exit {self._process.returncode}) during {command!r}; "
            f"end of {self.log}:\n{tail}"
        )

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # the worker's loop ends at end of input
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log_file.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _protocol_stream() -> IO[str]:
    """A private copy of stdout for answers; file descriptor 1 becomes stderr."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def serve(handlers: Mapping[str, Callable[..., Any]]) -> None:
    """Answer commands from stdin until it closes."""
    answers = _protocol_stream()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            handler = handlers[request["command"]]
            answer = {"ok": True, "result": handler(**request["args"])}
        except Exception:
            answer = {"ok": False, "error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
