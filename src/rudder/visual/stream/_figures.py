"""A run's figures as text: one summary line that every view shows when a run ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudder.trace._usage import Usage
    from rudder.visual.stream._view_state import RunView


def summary(view: RunView) -> str:
    """One line: the run's status and, when done, what it cost."""
    run = view.run
    if run is None:
        return "waiting"
    status = run.status if run.error is None else f"{run.status}: {run.error}"
    usage = view.usage
    if run.status == "running" or usage is None:
        return status
    return " · ".join([status, *figures(usage, run.started_at, run.finished_at)])


def figures(usage: Usage, started: float | None, finished: float | None) -> list[str]:
    out = [
        f"tokens {usage.prompt_tokens} in, {usage.output_tokens} out",
        f"token reduction {usage.token_reduction:.0%}",
    ]
    if usage.time_to_first_token_s is not None:
        out.append(f"time to first token {_seconds(usage.time_to_first_token_s)}")
    if usage.per_token_s is not None:
        out.append(f"latency {_seconds(usage.per_token_s)}/token")
    if started is not None and finished is not None:
        out.append(f"wall time {_seconds(finished - started)}")
    return out


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"
