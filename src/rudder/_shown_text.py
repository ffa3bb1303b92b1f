"""Untrusted text as views show it: controls made visible, bytes decoded per run.

Program text, model text, captures and their names, role, run and block names and error
messages all come from outside rudder. A view shows them; it never lets them act:

- :func:`visible` is the one escaping function for text written to a terminal, a pipe or
  ``lm.describe()``: control characters (C0 but newline and tab, DEL, C1 such as the CSI
  and OSC introducers U+009B and U+009D) and the bidirectional controls (U+202E and its
  kin, which reorder what a reader sees) are written as visible escapes such as ``\\x1b``
  and ``\\u202e``. :func:`visible_html` is the same for HTML (markup escaped too: the static
  HTML and the page's title); the browser client has the same rule in ``web/src/format.ts``
  and writes text only as DOM text nodes.
- :class:`RunDecoder` decodes a run of text given piece by piece (tokens, whose bytes may
  split a character): each piece shows the characters whose last byte it holds, so a
  character spread over several byte-level tokens is shown once, whole. Bytes that form no
  character are shown as U+FFFD, as UTF-8 decoders do.
"""

from __future__ import annotations

import codecs
import html
from collections.abc import Sequence

#: Bidirectional formatting characters: embeddings, overrides, isolates and marks.
BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))

_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" for code in range(0x20) if code not in (9, 10)}
_ESCAPES.update({code: f"\\x{code:02x}" for code in range(0x7F, 0xA0)})
_ESCAPES.update({code: f"\\u{code:04x}" for code in BIDI_CONTROLS})


def visible(text: str) -> str:
    """``text`` with every control and bidirectional formatting character written as a
    visible escape (newline and tab stay): shown, never obeyed."""
    return text.translate(_ESCAPES)


def visible_html(text: str) -> str:
    """``text`` as HTML text: shown, never markup, never a control."""
    return html.escape(visible(text))


class RunDecoder:
    """UTF-8 decoding of one run of text fed piece by piece (see the module's docstring)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The characters ``data`` completes; the bytes of an unfinished one wait."""
        return self._decoder.decode(data)

    @property
    def pending(self) -> bytes:
        """The bytes of an unfinished character, waiting for the rest."""
        return bytes(self._decoder.getstate()[0])

    @pending.setter
    def pending(self, data: bytes) -> None:
        self._decoder.setstate((data, 0))

    def end(self) -> str:
        """End the run: waiting bytes that never became a character, shown as U+FFFD."""
        return self._decoder.decode(b"", final=True)


def decode_run(pieces: Sequence[bytes], *, ends: bool = True) -> list[str]:
    """The text each piece of one run shows; bytes left unfinished at the end go to the
    last piece when the run ``ends`` (else they wait for more: a running generation)."""
    decoder = RunDecoder()
    shown = [decoder.feed(data) for data in pieces]
    if shown and ends:
        shown[-1] += decoder.end()
    return shown
