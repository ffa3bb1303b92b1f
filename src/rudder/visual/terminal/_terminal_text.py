"""How the terminal view writes a run: rich ``Text`` with styles, never markup.

Untrusted text (program text, model output, role and run names, error messages) is always
made into ``Text`` as plain text, through :func:`rudder._shown_text.visible`, so
``[bold]``, escape sequences, C1 controls and bidirectional overrides in it are shown,
never obeyed. Role labels are the view's own lines, styled apart from any text a model
could write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from rudder._shown_text import visible

if TYPE_CHECKING:
    from rudder.trace._records import TokenRecord
    from rudder.visual.stream._view_state import Piece

TYPE_STYLES = {"input": "", "forced": "blue", "generated": "green"}
#: Lowest probability of each band, highest first, and its colour.
PROBABILITY_STYLES = ((0.9, "green"), (0.5, "yellow"), (0.2, "dark_orange"), (0.0, "red"))
ROLE_STYLE = "bold magenta"
HIDDEN_STYLE = "italic bright_black"
NOTE_STYLE = "bright_black"


def token_style(token: TokenRecord, colors: str) -> str:
    if colors == "probability":
        if token.source == "input" or token.prob is None:
            return ""
        return next(style for floor, style in PROBABILITY_STYLES if token.prob >= floor)
    return TYPE_STYLES[token.source]


def role_label(role: str) -> str:
    """A role's label line (its text, without the newline)."""
    return f"── {visible(role)} ──"


def piece_text(piece: Piece, colors: str, shown: str | None = None) -> Text:
    """One piece of a path as styled text (role labels as whole lines); ``shown`` is the
    text a text or token piece shows in its run (default: its value)."""
    text = visible(piece.value if shown is None else shown)
    if piece.kind == "token" and piece.token is not None:
        return Text(text, style=token_style(piece.token, colors))
    if piece.kind == "role_open":
        return Text(role_label(piece.value), style=ROLE_STYLE)
    if piece.kind == "hidden":
        return Text(text, style=HIDDEN_STYLE)
    if piece.kind == "text":
        return Text(text)
    return Text()  # role_close: only ends the line


def note(text: str, style: str = NOTE_STYLE) -> Text:
    """A line of the view's own that quotes untrusted text (names, errors, a tail)."""
    return Text(visible(text), style=style)


def legend(colors: str) -> Text:
    """What the colours mean, for the line under the live view."""
    if colors == "probability":
        parts = [("p≥90%", "green"), ("≥50%", "yellow"), ("≥20%", "dark_orange"), ("<20%", "red")]
    else:
        parts = [("forced", TYPE_STYLES["forced"]), ("generated", TYPE_STYLES["generated"])]
    text = Text()
    for index, (label, style) in enumerate(parts):
        if index:
            text.append(" ")
        text.append(label, style=style)
    return text
