"""Turning llguidance's capture reports into captures.

llguidance reports a capture when the grammar completes it. A lexeme that may end at the
model's end-of-sequence (``gen()``, and every ``gen(stop=...)``, which the end-of-sequence
token also ends) is first reported empty where it starts, and again in full where it ends.
Reports are therefore kept with the offset at which they arrived, and an empty report is
dropped when the next report of the same name starts at that same offset.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (capture name, value, output offset when the report arrived)
Report = tuple[str, bytes, int]


def settle(reports: Sequence[Report], output: bytes) -> list[tuple[str, bytes, int]]:
    """The captures in order as (name, value, start offset in ``output``)."""
    kept: list[tuple[str, bytes, int]] = []
    for name, value, seen_at in reports:
        if value:
            start = output.rfind(value, 0, max(seen_at, len(value)))
            if start < 0:
                start = output.rfind(value)
        else:
            start = seen_at
        previous = next((k for k in reversed(kept) if k[0] == name), None)
        if previous is not None and not previous[1] and previous[2] == start:
            kept.remove(previous)
        kept.append((name, value, start))
    return kept
