"""A run as static HTML: no script, inline styles only, every piece of run text escaped.

For outputs read where widgets and scripts do not run (nbviewer, GitHub, a notebook opened
without its kernel's widget state), and for the legacy display. Token type is shown as a
background and the probability as a title. Untrusted text goes through
:func:`~rudder._shown_text.visible_html` only: markup escaped, controls and bidirectional
overrides made visible.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from rudder._shown_text import visible, visible_html
from rudder.visual.stream._figures import summary

if TYPE_CHECKING:
    from rudder.visual.stream._view_state import RunView

BACKGROUNDS = {"input": "transparent", "forced": "#dbeafe", "generated": "#dcfce7"}
_BOX = (
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;"
    "line-height:1.6;white-space:pre-wrap;overflow-wrap:anywhere;padding:6px 8px;"
    "border:1px solid #d0d7de;border-radius:4px;color:#1f2328;background:#fff"
)
_ROLE = (
    "display:block;margin:6px 0 2px;border-top:1px dashed #d0d7de;color:#7c3aed;"
    "font:600 11px system-ui,sans-serif;text-transform:uppercase"
)
_HIDDEN = "color:#6b7280;font-style:italic"
_FOOT = "font:11px system-ui,sans-serif;color:#6b7280;margin-top:4px"


def static_html(view: RunView) -> str:
    """The text of the run's last path, coloured by token type, and its figures."""
    parts: list[str] = [f'<div class="rudder-static"><div style="{_BOX}">']
    for piece in view.pieces():
        if piece.kind == "text":
            parts.append(visible_html(piece.value))
        elif piece.kind == "token" and piece.token is not None:
            token = piece.token
            title = token.source + (
                f", probability {token.prob:.1%}" if token.prob is not None else ""
            )
            background = BACKGROUNDS[token.source]
            parts.append(
                f'<span style="background:{background}" title="{escape(title)}">'
                f"{visible_html(piece.value)}</span>"
            )
        elif piece.kind == "role_open":
            parts.append(f'<span style="{_ROLE}">{visible_html(piece.value)}</span>')
        elif piece.kind == "role_close":
            parts.append('<span style="display:block"></span>')
        else:
            parts.append(f'<span style="{_HIDDEN}">{visible_html(piece.value)}</span>')
    parts.append("</div>")
    parts.append(f'<div style="{_FOOT}">{visible_html(summary(view))}</div></div>')
    return "".join(parts)


def static_outputs(view: RunView) -> dict[str, str]:
    """The output data of a run for viewers without scripts: HTML and plain text."""
    return {
        "text/html": static_html(view),
        "text/plain": visible(f"{view.text()}\n[{summary(view)}]"),
    }
