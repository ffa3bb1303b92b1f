"""``lm.describe()``: a Model's text by message, with what each message cost.

The text comes from the Model's entries (the state the model saw); the figures from the
generations on its trace path, each counted in the message it wrote into. Messages are
delimited by role openers and closers, which the entries and the path meet in the same
order, so counting them lines the two walks up.

Every piece of untrusted text (the text, role names, capture names and values) is written
through :func:`rudder._shown_text.visible`, and a message's text is decoded as one run, so
a character split over byte-level tokens is shown whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rudder._shown_text import visible
from rudder._state import RoleCloser, RoleOpener, Text, Token
from rudder.trace._usage import Usage

if TYPE_CHECKING:
    from rudder.models._model import Model

INDENT = "  "


@dataclass
class Message:
    role: str | None  # None: text outside any role
    parts: list[bytes] = field(default_factory=list)  # the exact bytes of text and tokens
    usage: Usage = field(default_factory=Usage)

    @property
    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", errors="replace")


def messages(lm: Model) -> list[Message]:
    """The Model's text split at role boundaries, each message with its generations' usage."""
    out = [Message(None)]
    for entry in lm.entries:
        if isinstance(entry, RoleOpener):
            out.append(Message(entry.role))
        elif isinstance(entry, RoleCloser):
            out.append(Message(None))
        elif isinstance(entry, Text):
            out[-1].parts.append(entry.text.encode())
        elif isinstance(entry, Token):
            out[-1].parts.append(entry.bytes)
    index = 0
    node = lm.trace
    for step in node.path() if node is not None else ():
        for entry in step.entries:
            if isinstance(entry, RoleOpener | RoleCloser):
                index += 1
        if step.usage is not None and index < len(out):
            out[index].usage = out[index].usage + step.usage
    return [m for m in out if m.role is not None or m.text or m.usage.generations]


def usage_line(usage: Usage) -> str:
    """One line of figures for ``usage``."""
    parts = [
        f"{usage.prompt_tokens} prompt tokens",
        f"{usage.output_tokens} output tokens ({usage.forced_tokens} forced, "
        f"{usage.generated_tokens} generated)",
        f"token reduction {usage.token_reduction:.0%}",
        f"{usage.forward_passes} forward passes",
    ]
    if usage.time_to_first_token_s is not None:
        parts.append(f"time to first token {usage.time_to_first_token_s * 1e3:.1f} ms")
    if usage.per_token_s is not None:
        parts.append(f"{usage.per_token_s * 1e3:.2f} ms/token")
    return ", ".join(parts)


def describe(lm: Model) -> str:
    """The text of ``lm`` by message, the figures of each message's generations, the
    captures and the totals."""
    lines: list[str] = []
    for message in messages(lm):
        lines.append(f"{visible(message.role) if message.role else '(no role)'}:")
        lines.extend(INDENT + visible(line) for line in message.text.split("\n"))
        if message.usage.generations:
            lines.append(f"{INDENT}[{usage_line(message.usage)}]")
    captures = lm.captures
    if captures:
        lines.append("captures:")
        lines.extend(
            f"{INDENT}{visible(name)} = {visible(repr(value))}" for name, value in captures.items()
        )
    total = lm.usage
    if total.generations:
        generations = f"{total.generations} generation{'s' if total.generations > 1 else ''}"
        lines.append(f"usage ({generations}): {usage_line(total)}")
    return "\n".join(lines)
