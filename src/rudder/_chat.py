"""Chat templates: from structured state to the prompt a model sees.

A template is Jinja2 source, run the way ``transformers`` runs ``apply_chat_template``
(sandboxed, ``trim_blocks``, ``lstrip_blocks``, ``raise_exception``, ``tojson``). rudder
never puts message text into the template. It renders the conversation with a sentinel in
place of each message's content, and splits the result at the sentinels: what lies between
them is *template text* (role markers, which may become special tokens), and each sentinel's
place is filled with that message's entries, which stay text (or the very tokens the model
produced). So ``<|im_start|>system`` written by a program or a model is tokenized as plain
text, never as a role marker.

An open message (a role whose block has not closed) is rendered up to the end of its
content, so the model continues it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union

from rudder._state import Entry, RoleCloser, RoleOpener, Text, Token
from rudder.errors import ChatTemplateError, RoleError

_SENTINEL = re.compile("\ue010([0-9]+)\ue011")
_STANDARD_ROLES = ("system", "user", "assistant", "tool")


def _sentinel(index: int) -> str:
    return f"\ue010{index}\ue011"


# -- built-in templates ------------------------------------------------------------------

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)

PHI3 = (
    "{% for message in messages %}"
    "{% if message['role'] in ['system', 'user', 'assistant'] %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% else %}{{ raise_exception('Phi-3 has no role ' + message['role']) }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

#: For base models with no chat template: each message as "Role: text" on its own lines.
PLAIN = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize + ': ' + message['content'] + '\\n\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)

BUILT_IN = {"chatml": CHATML, "llama3": LLAMA3, "phi3": PHI3, "plain": PLAIN}
_BUILT_IN_ROLES = {
    "chatml": ("system", "user", "assistant", "tool"),
    "llama3": ("system", "user", "assistant", "tool", "ipython"),
    "phi3": ("system", "user", "assistant"),
    "plain": ("system", "user", "assistant"),
}


@functools.lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    import jinja2
    import jinja2.ext
    import jinja2.sandbox

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, **_: Any) -> str:
        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    try:
        return environment.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as error:
        raise ChatTemplateError(
            f"the chat template is not valid Jinja2 (line {error.lineno}): {error.message}"
        ) from None


class ChatTemplate:
    """A Jinja2 chat template and the special-token strings it may use.

    Build one with :meth:`resolve` from ``None`` (the tokenizer's own template, else the
    plain template), a built-in name (``"chatml"``, ``"llama3"``, ``"phi3"``, ``"plain"``),
    Jinja2 source, or another ChatTemplate.
    """

    def __init__(
        self,
        source: str,
        *,
        name: str = "custom",
        roles: Sequence[str] | None = None,
        special_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        self.name = name
        self.special_tokens = dict(special_tokens or {})
        self._template = _compile(source)
        self.roles = tuple(roles) if roles is not None else self._probe_roles()
        self.trims_content = self._probe_trim()

    @classmethod
    def resolve(
        cls,
        template: str | ChatTemplate | None,
        *,
        tokenizer_template: str | None,
        special_tokens: Mapping[str, str],
    ) -> ChatTemplate:
        if isinstance(template, ChatTemplate):
            return cls(
                template.source,
                name=template.name,
                roles=template.roles,
                special_tokens=special_tokens,
            )
        if template is None:
            if tokenizer_template:
                return cls(tokenizer_template, name="tokenizer", special_tokens=special_tokens)
            template = "plain"
        if not isinstance(template, str):
            raise ChatTemplateError(
                "chat_template must be None, a built-in name "
                f"({', '.join(sorted(BUILT_IN))}), Jinja2 source or a ChatTemplate; "
                f"got {type(template).__name__}"
            )
        if template in BUILT_IN:
            return cls(
                BUILT_IN[template],
                name=template,
                roles=_BUILT_IN_ROLES[template],
                special_tokens=special_tokens,
            )
        if "{" not in template:
            raise ChatTemplateError(
                f"unknown chat template {template!r}: give a built-in name "
                f"({', '.join(sorted(BUILT_IN))}) or Jinja2 source"
            )
        return cls(template, special_tokens=special_tokens)

    def render(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False
    ) -> str:
        """The template's text for ``messages``, as ``apply_chat_template`` writes it."""
        import jinja2

        try:
            return str(
                self._template.render(
                    messages=list(messages),
                    add_generation_prompt=add_generation_prompt,
                    **self.special_tokens,
                )
            )
        except jinja2.exceptions.TemplateError as error:
            raise ChatTemplateError(
                f"the {self.name} chat template cannot render this conversation "
                f"(roles: {', '.join(str(m.get('role')) for m in messages)}): {error}"
            ) from None

    def check_role(self, role: str, previous_roles: Sequence[str]) -> None:
        """Fail clearly if ``role`` cannot be the next message after ``previous_roles``."""
        if role not in self.roles:
            raise RoleError(
                f"unknown role {role!r}: the {self.name} chat template knows "
                f"{', '.join(repr(r) for r in self.roles)}"
            )
        roles = [*previous_roles, role]
        self.render([{"role": r, "content": "x"} for r in roles])

    def _probe_roles(self) -> tuple[str, ...]:
        known = []
        for role in _STANDARD_ROLES:
            # Some templates need a user message first (roles must alternate): try both.
            for before in ([], [{"role": "user", "content": "x"}]):
                try:
                    text = self.render([*before, {"role": role, "content": "\ue012"}])
                except ChatTemplateError:
                    continue
                if "\ue012" in text:
                    known.append(role)
                    break
        return tuple(known)

    def _probe_trim(self) -> bool:
        role = self.roles[0] if self.roles else "user"
        try:
            text = self.render([{"role": role, "content": " \ue012 "}])
        except ChatTemplateError:
            return False
        return " \ue012 " not in text and "\ue012" in text

    def __repr__(self) -> str:
        return f"ChatTemplate({self.name!r})"


# -- rendering state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateText:
    """Text the chat template wrote: role markers may be special tokens here."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentText:
    """Text from the program: always tokenized as plain text."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentTokens:
    """Tokens the model was given or produced before: reused as they are."""

    tokens: tuple[Token, ...]

    @property
    def text(self) -> str:
        return b"".join(t.bytes for t in self.tokens).decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class TrimmedTail:
    """Marks content whose trailing whitespace the template trimmed away (it adds no text)."""

    text: str = ""


Segment = Union[TemplateText, ContentText, ContentTokens, TrimmedTail]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class Prompt:
    """The rendered state: segments in order, and whether the last one is content."""

    segments: tuple[Segment, ...]
    uses_template: bool

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)

    @property
    def ends_in_content(self) -> bool:
        return bool(self.segments) and isinstance(self.segments[-1], (ContentText, ContentTokens))


@dataclass
class _Message:
    role: str
    pieces: list[Entry]
    closed: bool = False


def _content_segments(pieces: Iterable[Entry], *, trim: bool) -> list[Segment]:
    """Merge runs of text and runs of tokens into segments."""
    segments: list[Segment] = []
    texts: list[str] = []
    tokens: list[Token] = []
    for piece in pieces:
        if isinstance(piece, Text):
            if tokens:
                segments.append(ContentTokens(tuple(tokens)))
                tokens = []
            texts.append(piece.text)
        elif isinstance(piece, Token):
            if texts:
                segments.append(ContentText("".join(texts)))
                texts = []
            tokens.append(piece)
    if texts:
        segments.append(ContentText("".join(texts)))
    if tokens:
        segments.append(ContentTokens(tuple(tokens)))
    segments = [s for s in segments if not (isinstance(s, ContentText) and not s.text)]
    if trim and segments:
        first = segments[0]
        if isinstance(first, ContentText):
            segments[0] = ContentText(first.text.lstrip())
        last = segments[-1]
        if isinstance(last, ContentText) and last.text != last.text.rstrip():
            # The state's tail is not what the model sees: token healing must not touch it.
            segments[-1] = ContentText(last.text.rstrip())
            segments.append(TrimmedTail())
        segments = [s for s in segments if not (isinstance(s, ContentText) and not s.text)]
    return segments


def render_state(entries: Iterable[Entry], template: ChatTemplate) -> Prompt:
    """Render entries into prompt segments through ``template``."""
    # Raw pieces outside any message, keyed by how many messages come before them.
    raw: dict[int, list[Entry]] = {}
    messages: list[_Message] = []
    current: _Message | None = None
    for entry in entries:
        if isinstance(entry, RoleOpener):
            current = _Message(entry.role, [])
            messages.append(current)
        elif isinstance(entry, RoleCloser):
            if current is not None:
                current.closed = True
            current = None
        elif isinstance(entry, (Text, Token)):
            if current is not None:
                current.pieces.append(entry)
            else:
                raw.setdefault(len(messages), []).append(entry)
    if not messages:
        return Prompt(tuple(_content_segments(raw.get(0, ()), trim=False)), uses_template=False)

    open_last = not messages[-1].closed
    rendered = _render_with_sentinels(template, messages, open_last)
    insertions = _raw_insertion_points(template, messages, raw, rendered)

    segments: list[Segment] = []
    position = 0
    cuts = sorted(
        [(m.start(), m.end(), int(m.group(1))) for m in _SENTINEL.finditer(rendered)]
        + [(offset, offset, -1 - index) for index, offset in insertions.items()]
    )
    seen = [m for _, _, m in cuts if m >= 0]
    if seen != list(range(len(messages))):
        raise ChatTemplateError(
            f"the {template.name} chat template must write each message's content exactly "
            "once, in order; it did not"
        )
    for start, end, index in cuts:
        if start > position:
            segments.append(TemplateText(rendered[position:start]))
        if index >= 0:
            segments.extend(_content_segments(messages[index].pieces, trim=template.trims_content))
        else:
            segments.extend(_content_segments(raw[-1 - index], trim=False))
        position = end
    if position < len(rendered):
        segments.append(TemplateText(rendered[position:]))
    return Prompt(tuple(segments), uses_template=True)


def _render_with_sentinels(
    template: ChatTemplate, messages: Sequence[_Message], open_last: bool
) -> str:
    stand_ins = [{"role": m.role, "content": _sentinel(i)} for i, m in enumerate(messages)]
    rendered = template.render(stand_ins)
    if open_last:
        # The open message ends at its content: the closer is not written yet.
        last = _sentinel(len(messages) - 1)
        cut = rendered.find(last)
        if cut < 0:
            raise ChatTemplateError(
                f"the {template.name} chat template did not write the content of the open "
                f"{messages[-1].role!r} message"
            )
        rendered = rendered[: cut + len(last)]
    return rendered


def _raw_insertion_points(
    template: ChatTemplate,
    messages: Sequence[_Message],
    raw: Mapping[int, Sequence[Entry]],
    rendered: str,
) -> dict[int, int]:
    """Where text written outside any message goes in the rendered conversation."""
    points: dict[int, int] = {}
    for before in raw:
        if before == 0:
            points[before] = 0
            continue
        prefix = _render_with_sentinels(template, messages[:before], open_last=False)
        if not rendered.startswith(prefix):
            raise ChatTemplateError(
                f"text written between messages cannot be placed: the {template.name} chat "
                "template does not render the earlier messages as a prefix of the whole "
                "conversation; put the text inside a role block"
            )
        points[before] = len(prefix)
    return points


def messages_of(entries: Iterable[Entry]) -> tuple[list[tuple[str, str]], bool]:
    """The conversation as (role, content) pairs, for a server that applies the chat
    template itself, and whether the last message is open (the model continues it).

    Text outside any message has no place in a list of messages: that is a RoleError.
    """
    messages: list[tuple[str, list[str]]] = []
    open_last = False
    for entry in entries:
        if isinstance(entry, RoleOpener):
            messages.append((entry.role, []))
            open_last = True
        elif isinstance(entry, RoleCloser):
            open_last = False
        elif isinstance(entry, (Text, Token)):
            if not open_last:
                if not entry.text:
                    continue
                raise RoleError(
                    f"text outside any role ({entry.text[:40]!r}) cannot be sent to a server "
                    "that applies the chat template itself; put it inside a role block "
                    "(with user(): ...), or give the Model a tokenizer so rudder renders "
                    "the prompt"
                )
            messages[-1][1].append(entry.text)
    return [(role, "".join(parts)) for role, parts in messages], open_last
