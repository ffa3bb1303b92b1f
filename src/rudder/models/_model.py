"""Model: the immutable value a program holds (``lm + x`` returns a new one).

A Model is an engine, a chat template, sampling settings and a structured state (a
persistent sequence of entries, :mod:`rudder._state`). Appending text or a role marker only
adds entries: no tokenizer, no model, no constraint engine. A grammar runs the decode loop
(:mod:`rudder.engine._loop`) on the prompt rendered from the entries and adds the tokens and
captures it produced.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from rudder._chat import ChatTemplate, render_state
from rudder._decorator import StatefulCall
from rudder._grammar._lark import compile_grammar
from rudder._grammar._nodes import Deferred, GrammarNode, Literal, as_node, text_steps
from rudder._grammar._placeholders import has_placeholder
from rudder._roles import Block, active_blocks
from rudder._settings import settings
from rudder._state import (
    BlockMarker,
    Capture,
    CaptureValue,
    Entries,
    Entry,
    RoleCloser,
    RoleOpener,
    Text,
    Token,
)
from rudder.engine._engine import Engine
from rudder.engine._loop import Generation, StepCallback, generate
from rudder.engine._prompt import tokenize_prompt
from rudder.engine._remote import RemoteEngine
from rudder.engine._remote_request import remote_request
from rudder.engine._replay import run_remote
from rudder.engine._sampler import Sampling
from rudder.errors import (
    CaptureNotFoundError,
    ExploreError,
    RoleError,
    SettingsError,
    WrongTypeError,
    check_text,
)
from rudder.models._remembered import remember_generation
from rudder.trace import _events as events
from rudder.trace._node import ExploredFrom, NodeInput, NodeKind, TraceNode
from rudder.trace._run import active_run, describe_error, hiding
from rudder.trace._usage import Usage

if TYPE_CHECKING:
    from typing_extensions import Self

    from rudder.models._stream import ModelStream

#: What a failed or interrupted generation hands over before the exception goes on.
_OnFailure = Callable[[Generation], None]
#: A generation ready to start: given the step observer and the failure callback.
_StartGeneration = Callable[[StepCallback | None, _OnFailure], Generation]

#: Set while a program runs under ``lm.stream()``: receives every intermediate Model.
stream_sink: contextvars.ContextVar[Callable[[Model], None] | None] = contextvars.ContextVar(
    "rudder_stream_sink", default=None
)


class Model:
    """An immutable language-model state: ``lm + x`` returns a new Model.

    ``x`` may be text, a grammar (``gen()``, ``select()`` ...) or a stateful ``@guidance``
    call. ``lm`` itself never changes, also when ``lm + x`` raises, and Models branched from
    the same parent share its entries.
    """

    __slots__ = (
        "_blocks",
        "_engine",
        "_entries",
        "_node",
        "_sampling",
        "_template",
        "echo",
        "generation",
    )

    _engine: Engine | RemoteEngine
    _template: ChatTemplate
    _sampling: Sampling
    _entries: Entries
    _blocks: tuple[Block, ...]
    _node: TraceNode | None
    #: Whether views show this Model's steps (``rudder.settings.echo`` turns all off).
    echo: bool
    #: Statistics of the generation that made this Model (None if it was not made by one).
    generation: Generation | None

    def __init__(
        self,
        engine: Engine | RemoteEngine,
        *,
        chat_template: str | ChatTemplate | None = None,
        sampling: Sampling | None = None,
        echo: bool = True,
    ) -> None:
        check_echo(echo)
        self._engine = engine
        self._template = ChatTemplate.resolve(
            chat_template,
            tokenizer_template=engine.tokenizer.chat_template,
            special_tokens=engine.tokenizer.special_tokens,
        )
        self._sampling = sampling if sampling is not None else Sampling()
        self._entries = Entries.empty()
        self._blocks = ()
        self._node = None
        self.echo = echo
        self.generation = None

    # -- deriving -------------------------------------------------------------------------

    def _derive(
        self,
        entries: Entries,
        *,
        node: TraceNode | None,
        blocks: tuple[Block, ...] | None = None,
        generation: Generation | None = None,
        sampling: Sampling | None = None,
    ) -> Self:
        new = object.__new__(type(self))
        new._engine = self._engine
        new._template = self._template
        new._sampling = self._sampling if sampling is None else sampling
        new._entries = entries
        new._blocks = self._blocks if blocks is None else blocks
        new._node = node
        new.echo = self.echo
        new.generation = generation
        return new

    def _at(self, node: TraceNode, sampling: Sampling) -> Self:
        """This Model's engine in the state the trace path to ``node`` ends in, sampling
        with ``sampling`` (a stored run's generation explored again, in another process)."""
        entries = Entries.empty()
        for step in node.path():
            if step.healed_bytes:
                entries = _drop_tail_bytes(entries, step.healed_bytes) or entries
            entries = entries.append(step.entries)
        return self._derive(entries, node=node, blocks=(), sampling=sampling)

    def _new_node(
        self,
        kind: NodeKind,
        value: str,
        added: tuple[Entry, ...],
        model: str | None = None,
        explored: ExploredFrom | None = None,
    ) -> TraceNode:
        node = TraceNode(
            self._node,
            NodeInput(kind, value),
            added,
            run_id=active_run().id,
            echo=self.echo and settings.echo,
            hidden=hiding.get(),
            model=model,
            explored=explored,
        )
        if events.listeners and node.echo:
            events.emit.node_added(node)
        return node

    def _step(self, kind: NodeKind, value: str, added: tuple[Entry, ...], **kwargs: Any) -> Self:
        """A new Model with ``added`` appended, and its trace node."""
        node = self._new_node(kind, value, added)
        return self._derive(self._entries.append(added), node=node, **kwargs)

    def __add__(self, value: object) -> Self:
        lm = self._enter_blocks()
        if isinstance(value, str) and has_placeholder(value):
            value = text_steps(value)
        if isinstance(value, str):
            result = lm._step(NodeKind.TEXT, value, (Text(value),)) if value else lm
        elif isinstance(value, Deferred):
            if isinstance(value, StatefulCall):
                lm = lm._derive(lm._entries, node=lm._new_node(NodeKind.CALL, str(value), ()))
            result = value(lm)  # type: ignore[operator]
            if not isinstance(result, Model):
                raise WrongTypeError(
                    f"{value!s} returned {type(result).__name__}, not a Model; a stateful "
                    "function must return the Model it was given (or one made from it)"
                )
        else:
            node = as_node(value, where="a Model (lm + ...)")
            if isinstance(node, Literal):
                result = lm._step(NodeKind.TEXT, node.text, (Text(node.text),))
            else:
                result = lm._run(node)
        sink = stream_sink.get()
        if sink is not None:
            sink(result)
        return result

    def _enter_blocks(self) -> Self:
        """Write the openers and closers that match the blocks entered in this context."""
        target = active_blocks.get()
        current = self._blocks
        if target is current or target == current:
            return self
        common = 0
        while common < min(len(target), len(current)) and target[common] is current[common]:
            common += 1
        lm = self
        for block in reversed(current[common:]):
            lm = _close_block(lm, block)
        open_role = next((b.role for b in target[:common] if b.role is not None), None)
        for block in target[common:]:
            if block.role is not None:
                if open_role is not None:
                    raise RoleError(
                        f"cannot open role {block.role!r} inside role {open_role!r}: chat "
                        "messages do not nest; end the first role's with-block first"
                    )
                self._template.check_role(block.role, _message_roles(lm._entries))
                open_role = block.role
                lm = lm._step(NodeKind.ROLE_OPEN, block.role, (RoleOpener(block.role),))
            else:
                opening = (BlockMarker(block.block_id, block.name, True), Text(block.opening))
                lm = lm._step(NodeKind.BLOCK_OPEN, block.name or "", opening)
        return lm._derive(lm._entries, node=lm._node, blocks=target)

    def _run(
        self,
        grammar: GrammarNode,
        *,
        prefix: Sequence[Token | int] = (),
        explored: ExploredFrom | None = None,
    ) -> Self:
        """Run ``grammar`` from this Model; ``prefix`` and ``explored`` make an explored
        branch (:mod:`rudder._explore`): the output starts with ``prefix``."""
        if isinstance(self._engine, RemoteEngine):
            if prefix:
                raise ExploreError(
                    "a generation on a server cannot be explored from a token: the server "
                    "samples the whole step; explore programs run on a local model"
                )
            start = self._remote_generation(grammar)
        else:
            start = self._local_generation(grammar, prefix)
        node = self._new_node(
            NodeKind.GRAMMAR,
            _describe(grammar),
            (),
            model=self._engine.model_name,
            explored=explored,
        )
        remember_generation(node, self, grammar)
        run = active_run()

        def count_failed(partial: Generation) -> None:
            # The Model stays as it was, but what the model did is counted.
            usage = Usage.of(partial)
            node.fail(usage)
            run.add_usage(usage)

        run.activate()
        run.generating()
        try:
            generation = start(self._step_observer(node), count_failed)
        except BaseException as error:
            if events.listeners and node.echo:
                events.emit.node_finished(node, describe_error(error))
            raise
        finally:
            run.deactivate()
        entries = self._entries
        if generation.healed_bytes:
            healed = _drop_tail_bytes(entries, generation.healed_bytes)
            assert healed is not None  # can_heal checked this
            entries = healed
        added: tuple[Entry, ...] = (*generation.tokens, *generation.captures)
        usage = Usage.of(generation)
        node.complete(added, generation.healed_bytes, usage)
        run.add_usage(usage)
        if events.listeners and node.echo:
            events.emit.node_finished(node, None)
        return self._derive(entries.append(added), node=node, generation=generation)

    def _prompt(self) -> tuple[list[int], Callable[[int], bool]]:
        """The prompt a generation from here starts with, and how much of its end token
        healing may take back (program or model text only)."""
        tokens = tokenize_prompt(
            render_state(self._entries, self._template), self._engine.tokenizer
        )

        def can_heal(size: int) -> bool:
            return (
                size <= tokens.content_tail_bytes
                and _drop_tail_bytes(self._entries, size) is not None
            )

        return list(tokens.ids), can_heal

    def _local_generation(
        self, grammar: GrammarNode, prefix: Sequence[Token | int] = ()
    ) -> _StartGeneration:
        """The decode loop over this Model's prompt, ready to start; a special token the
        tokenizer does not have is refused here, before anything is traced."""
        assert isinstance(self._engine, Engine)
        engine = self._engine
        compiled = compile_grammar(grammar)
        for text in compiled.special_tokens:
            engine.tokenizer.check_special_token(text)
        prompt_ids, can_heal = self._prompt()

        def start(on_step: StepCallback | None, on_failure: _OnFailure) -> Generation:
            return generate(
                engine,
                compiled,
                prompt_ids,
                sampling=self._sampling,
                rng=self._sampling.generator(len(self._entries)),
                can_heal=can_heal,
                on_step=on_step,
                on_failure=on_failure,
                prefix=prefix,
            )

        return start

    def _remote_generation(self, grammar: GrammarNode) -> _StartGeneration:
        """A request to the server, ready to send; a grammar the server cannot enforce is
        refused here, before anything is sent or traced."""
        assert isinstance(self._engine, RemoteEngine)
        engine = self._engine
        engine.check(grammar)
        for text in compile_grammar(grammar).special_tokens:
            engine.tokenizer.check_special_token(text)
        request = remote_request(engine, grammar, self._entries, self._template)
        return functools.partial(run_remote, engine, request)

    def _step_observer(self, node: TraceNode) -> StepCallback | None:
        """What the decode loop calls after each step: views and ``lm.stream()``."""
        sink = stream_sink.get()
        watched = bool(events.listeners) and node.echo
        if sink is None and not watched:
            return None
        healed_sent = False

        def on_step(out: list[Token], healed_bytes: int, backtracked: int, added: int) -> None:
            nonlocal healed_sent
            if watched:
                heal = 0 if healed_sent else healed_bytes
                healed_sent = True
                events.emit.tokens_changed(node, out[len(out) - added :], backtracked, heal)
            if sink is not None and (added or backtracked):
                base = _drop_tail_bytes(self._entries, healed_bytes) if healed_bytes else None
                sink(self._derive((base or self._entries).append(tuple(out)), node=node))

        return on_step

    # -- reading --------------------------------------------------------------------------

    def __str__(self) -> str:
        return render_state(self._entries, self._template).text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._entries)} entries: {_preview(str(self))}>"

    def _captures(self) -> dict[str, CaptureValue]:
        """The captures, with each named block that is still open holding its text so far."""
        captures = self._entries.captures()
        open_blocks = [b for b in self._blocks if b.name is not None and b.role is None]
        if not open_blocks:
            return captures
        captures = dict(captures)
        for block in open_blocks:
            assert block.name is not None
            captures[block.name] = Capture(block.name, _block_text(self._entries, block))
        return captures

    def __getitem__(self, name: str) -> str | list[str]:
        value = self._captures().get(name)
        if value is None:
            known = ", ".join(repr(n) for n in sorted(self._captures())) or "none"
            raise CaptureNotFoundError(f"no capture named {name!r} (captures so far: {known})")
        return _value(value)

    def get(self, name: str, default: Any = None) -> Any:
        """The capture ``name``, or ``default`` when there is none."""
        value = self._captures().get(name)
        return default if value is None else _value(value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._captures()

    @property
    def captures(self) -> dict[str, str | list[str]]:
        """Every capture: name -> text (a list of texts for ``list_append`` captures)."""
        return {name: _value(value) for name, value in self._captures().items()}

    def log_prob(self, name: str) -> float | list[float]:
        """The log-probability the model gave the tokens of capture ``name``.

        Forced tokens count as certain. ``None`` parts (values set by the program) are 0.
        """
        value = self._entries.captures().get(name)
        if value is None:
            raise CaptureNotFoundError(f"no capture named {name!r}")
        if isinstance(value, list):
            return [v.log_prob or 0.0 for v in value]
        return value.log_prob or 0.0

    def set(self, name: str, value: str | Sequence[str]) -> Model:
        """A new Model with capture ``name`` set to ``value`` (a list makes a list capture)."""
        _check_name(name)
        if isinstance(value, str):
            check_text(value, f"the value set for {name!r}")
            return self._step(NodeKind.CAPTURE_SET, name, (Capture(name, value),))
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise WrongTypeError(
                f"set({name!r}, ...) takes a str or a list of str, got {value!r}; "
                f"convert it first, e.g. lm.set({name!r}, str(value))"
            )
        values = list(value)
        for item in values:
            check_text(item, f"the value set for {name!r}")
        # A list tombstone starts an empty list; the values follow it.
        added = (
            Capture(name, "", is_list=True, removed=True),
            *(Capture(name, v, is_list=True) for v in values),
        )
        return self._step(NodeKind.CAPTURE_SET, name, added)

    def remove(self, name: str) -> Model:
        """A new Model without capture ``name``."""
        _check_name(name)
        return self._step(NodeKind.CAPTURE_REMOVE, name, (Capture(name, "", removed=True),))

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The structured state, oldest first."""
        return tuple(self._entries)

    @property
    def trace(self) -> TraceNode | None:
        """The trace node of the step that made this Model (None for a new Model);
        ``lm.trace.path()`` is the whole program so far."""
        return self._node

    @property
    def usage(self) -> Usage:
        """Token usage and timings of every generation that led to this Model."""
        return self._node.total_usage() if self._node is not None else Usage()

    @property
    def engine(self) -> Engine | RemoteEngine:
        return self._engine

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    @property
    def sampling(self) -> Sampling:
        return self._sampling

    def with_sampling(self, **changes: Any) -> Model:
        """A new Model with some sampling settings changed (top_p, top_k, min_p, seed)."""
        known = [field.name for field in dataclasses.fields(self._sampling)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise SettingsError(
                f"with_sampling() got unknown settings {', '.join(unknown)}; "
                f"the settings are {', '.join(known)}"
            )
        changed = dataclasses.replace(self._sampling, **changes)
        return self._derive(self._entries, node=self._node, sampling=changed)

    def stream(self) -> ModelStream:
        """A stream: ``for partial in lm.stream() + gen(...)`` yields Models as they grow."""
        from rudder.models._stream import ModelStream

        return ModelStream(self, ())

    def to_html(self, title: str | None = None) -> str:
        """The program so far as one self-contained HTML page (no network needed to open
        it), shown as the notebook view shows a finished run; ``rudder.export_html(lm,
        path)`` writes it to a file."""
        from rudder.visual.html._export import to_html

        return to_html(self, title=title)

    def describe(self, file: TextIO | None = None) -> None:
        """Print the program's text message by message (role by role), what each
        message's generations cost, the captures and the totals. ``print(lm)`` stays the
        plain text; this is the summary to read in a terminal or a log."""
        from rudder._describe import describe

        print(describe(self), file=sys.stdout if file is None else file)


M = TypeVar("M", bound=Model)


def _value(value: CaptureValue) -> str | list[str]:
    return [v.value for v in value] if isinstance(value, list) else value.value


def check_echo(echo: object) -> None:
    """``echo`` is a bool (checked by models before their engine is built)."""
    if not isinstance(echo, bool):
        raise SettingsError(f"echo must be True or False, got {echo!r}")


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise WrongTypeError(f"a capture name must be a non-empty str, got {name!r}")


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else "..." + text[-limit:])


def _message_roles(entries: Entries) -> list[str]:
    return [e.role for e in entries if isinstance(e, RoleOpener)]


def _close_block(lm: M, block: Block) -> M:
    if block.role is not None:
        return lm._step(NodeKind.ROLE_CLOSE, block.role, (RoleCloser(block.role),))
    added: list[Entry] = [Text(block.closing), BlockMarker(block.block_id, block.name, False)]
    if block.name is not None:
        added.append(Capture(block.name, _block_text(lm._entries, block)))
    return lm._step(NodeKind.BLOCK_CLOSE, block.name or "", tuple(added))


def _describe(grammar: GrammarNode, limit: int = 2000) -> str:
    """A grammar's description for the trace (its repr, cut when very long)."""
    text = repr(grammar)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _block_text(entries: Entries, block: Block) -> str:
    """The text written since ``block`` opened, without its opening text."""
    inside: list[bytes] = []
    for entry in entries.reversed():
        if isinstance(entry, BlockMarker) and entry.block_id == block.block_id and entry.is_open:
            break
        if isinstance(entry, Text):
            inside.append(entry.text.encode())
        elif isinstance(entry, Token):
            inside.append(entry.bytes)
    inside.reverse()
    return b"".join(inside).decode("utf-8", errors="replace").removeprefix(block.opening)


def _drop_tail_bytes(entries: Entries, size: int) -> Entries | None:
    """``entries`` without the last ``size`` bytes of text, or None if that cuts a token,
    a character or a role marker."""
    kept_aside: list[Entry] = []
    remaining = size
    index = len(entries)
    partial: Text | None = None
    for entry in entries.reversed():
        if remaining == 0:
            break
        index -= 1
        if isinstance(entry, Text):
            data = entry.text.encode()
            if len(data) > remaining:
                try:
                    partial = Text(data[: len(data) - remaining].decode())
                except UnicodeDecodeError:
                    return None
                remaining = 0
            else:
                remaining -= len(data)
        elif isinstance(entry, Token):
            if len(entry.bytes) > remaining:
                return None
            remaining -= len(entry.bytes)
        elif isinstance(entry, Capture):
            kept_aside.append(entry)
        else:
            return None  # a role or block boundary: the re-made bytes would land inside it
    if remaining:
        return None
    kept_aside.reverse()
    head: list[Entry] = [partial] if partial is not None else []
    return entries.truncate(index).append([*head, *kept_aside])
