"""The decode loop every local engine shares, driven by llguidance.

One generation: llguidance's interpreter looks at the prompt (token healing: it may take
back the prompt's last tokens and let the grammar re-make them), then step by step gives a
token mask, or no mask when the grammar fixes what comes next. Fixed tokens are appended
without a model call (fast-forward). Otherwise the engine runs, the sampler picks an
allowed token, and the interpreter answers with how many tokens to take back (a stop string
spread over several tokens, say) and which tokens follow. Captures arrive as the grammar
completes them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rudder._grammar._captures import settle
from rudder._grammar._lark import CompiledGrammar, capture_name
from rudder._state import Candidate, Capture, Token, TokenKind
from rudder.engine._engine import Engine, common_prefix
from rudder.engine._measured_token import Measured, MeasuredToken
from rudder.engine._sampler import Allowed, Sampling, measure, pick
from rudder.engine._tokenizer import EngineTokenizer
from rudder.engine._worker import Worker
from rudder.errors import ExploreError, GenerationError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_FAILED = frozenset({"InternalError", "ParserTooComplex", "LexerTooComplex"})
_DEAD_END = frozenset({"NoExtension", "NoExtensionBias"})
#: Masks are computed on the generation's worker thread, beside the model's forward, when
#: the vocabulary has this many tokens and the last mask took this long: handing a mask to
#: a thread and back costs tens of microseconds on an idle machine, and more where the
#: cores are shared (the thread must get the interpreter lock back from the forward).
OVERLAP_FROM_VOCABULARY = 8192
OVERLAP_FROM_MASK_S = 0.0002
#: How many of the prompt's last tokens token healing looks at, at most. Healing takes back
#: the last tokens whose text a longer token could continue: one or two in practice, never
#: more than a token's length in bytes. Each generation tokenizes the window again
#: (``_healing_window``), so it is kept short.
HEALING_WINDOW = 16


def _renamed(name: str) -> Any:
    """A former name of field ``name``, read and written through."""
    return property(
        lambda self: getattr(self, name),
        lambda self, value: setattr(self, name, value),
        doc=f"The former name of ``{name}``.",
    )


@dataclass
class Generation:
    """What one generation produced, and what it cost."""

    tokens: list[Token]  # output after backtracking: forced and generated, no end-of-sequence
    captures: list[Capture]
    prompt_tokens: int  # tokens of the prompt as given
    healed_tokens: int  # prompt tokens taken back by token healing (their bytes are re-made)
    healed_bytes: int
    stop_reason: str
    # The figures have the names of Usage's (rudder.trace._usage), which is made from them.
    cached_prompt_tokens: int = 0  # prompt tokens the engine's prefix cache already held
    forward_passes: int = 0
    forward_s: float = 0.0
    mask_s: float = 0.0  # computing the grammar's token masks
    total_s: float = 0.0
    time_to_first_token_s: float | None = None
    backtracked_tokens: int = 0  # output tokens taken back

    # The names `lm.generation` had before it spelled its figures as Usage does.
    forward_calls = _renamed("forward_passes")
    forward_seconds = _renamed("forward_s")
    mask_seconds = _renamed("mask_s")
    total_seconds = _renamed("total_s")
    first_token_seconds = _renamed("time_to_first_token_s")
    backtracked = _renamed("backtracked_tokens")


class Probe:
    """The end of a prefix that only looks: what the grammar allows there, the model's
    logits and the token ids it ran on (the generation stops at it)."""

    __slots__ = ("allowed", "ids", "logits")

    def __init__(self) -> None:
        self.allowed: npt.NDArray[np.bool_] | None = None
        self.logits: npt.NDArray[Any] | None = None
        self.ids: list[int] = []

    def look(
        self, allowed: npt.NDArray[np.bool_], logits: npt.NDArray[Any], ids: list[int]
    ) -> None:
        self.allowed = allowed
        self.logits = logits
        self.ids = list(ids)


def _token_id(wanted: Token | int | Probe) -> int:
    if isinstance(wanted, Probe):
        return -1
    return wanted if isinstance(wanted, int) else wanted.token_id


#: ``on_step(output, healed_bytes, backtracked, added)``: the output so far (after
#: backtracking), the prompt bytes token healing took back, and how many output tokens this
#: step took back and then added (the added ones are the last of ``output``).
StepCallback = Callable[[list[Token], int, int, int], None]


def generate(
    engine: Engine,
    grammar: CompiledGrammar,
    prompt: Sequence[int],
    *,
    sampling: Sampling,
    rng: Any,
    can_heal: Callable[[int], bool],
    on_step: StepCallback | None = None,
    on_failure: Callable[[Generation], None] | None = None,
    prefix: Sequence[Token | int | Probe] = (),
) -> Generation:
    """Run ``grammar`` after ``prompt`` on ``engine``.

    ``can_heal(n)`` says whether the last ``n`` bytes of the prompt belong to text the
    grammar may re-make (program or model text, not a chat template's markers).
    ``on_step`` is called after every change to the output (see :data:`StepCallback`).
    When the generation fails or is interrupted (Ctrl-C), ``on_failure`` gets what it
    produced and cost up to then, before the exception goes on.
    ``prefix`` is what the output must start with (an explored branch): where the grammar
    lets the model choose, its tokens are taken instead of sampling, after llguidance checks
    each one. A :class:`Token` is taken as recorded, without running the model; a token id
    is recorded with the model's probability and candidates there. A :class:`Probe` at its
    end stops the generation there, after showing it what the model and grammar allow.
    """
    run = _Run(engine, grammar, sampling, rng, on_step, prefix)
    started = time.perf_counter()
    try:
        return run.run(list(prompt), can_heal)
    except BaseException:
        if on_failure is not None:
            run.result.total_s = time.perf_counter() - started
            on_failure(run.result)
        raise


class Output:
    """One generation's output as llguidance's interpreter shapes it: the tokens kept after
    backtracking, the captures reported, and the step callback. The local loop (below) and
    the replay of a server's tokens (:mod:`rudder.engine._replay`) both build on it."""

    def __init__(
        self, tokenizer: EngineTokenizer, grammar: CompiledGrammar, on_step: StepCallback | None
    ) -> None:
        self.tokenizer = tokenizer
        self.grammar = grammar
        self.on_step = on_step
        self.ids: list[int] = []
        self.out: list[Token] = []
        self.kept_prompt = 0
        self.captures: list[tuple[str, bytes, int]] = []
        self.healed_bytes = 0
        #: What the generation produced so far (what a failure reports).
        self.result = Generation(
            tokens=self.out,
            captures=[],
            prompt_tokens=0,
            healed_tokens=0,
            healed_bytes=0,
            stop_reason="",
        )

    def _interpreter(self) -> Any:
        return self.tokenizer.interpreters.fresh(self.grammar.llguidance)

    def _step(self, interpreter: Any, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ValueError as error:
            first_line = str(error).splitlines()[0] if str(error) else "unknown error"
            raise GenerationError(
                f"the constraint engine failed: {first_line}; text so far: {self._text()!r}"
            ) from None

    def _push(self, token_id: int, record: Token | None) -> None:
        if record is None:
            record = Token(
                token_id,
                self.tokenizer.token_bytes(token_id),
                TokenKind.FORCED,
                special=self.tokenizer.is_special(token_id),
            )
        self.ids.append(token_id)
        self.out.append(record)

    def _apply(
        self,
        backtrack: int,
        forced: Sequence[int],
        record: Token | None,
        eos: int | None,
        result: Generation,
    ) -> None:
        """Take back ``backtrack`` tokens and add ``forced``; ``eos``, when given, is the
        end-of-sequence token that ended the generation, which is not output."""
        if backtrack:
            if backtrack > len(self.out):
                raise GenerationError(
                    f"the constraint engine took back {backtrack} tokens, more than the "
                    f"{len(self.out)} this generation produced"
                )
            del self.out[-backtrack:]
            del self.ids[-backtrack:]
            result.backtracked_tokens += backtrack
        added = 0
        for index, token_id in enumerate(forced):
            if token_id == eos:
                continue
            sampled = (
                record is not None and index == 0 and backtrack == 0 and token_id == record.token_id
            )
            self._push(token_id, record if sampled else None)
            added += 1
        if self.on_step is not None:
            self.on_step(self.out, self.healed_bytes, backtrack, added)

    def _finish(self, interpreter: Any, result: Generation) -> None:
        """Check how the interpreter stopped and read the captures into ``result``."""
        result.stop_reason = str(interpreter.stop_reason())
        if result.stop_reason in _FAILED:
            raise GenerationError(f"llguidance stopped the generation: {result.stop_reason}")
        if result.stop_reason in _DEAD_END and not interpreter.is_accepting():
            raise GenerationError(
                "the grammar cannot be completed: after "
                f"{self._text()!r} it allows no further text and is not finished"
            )
        result.captures = self._captures()
        _check_json_captures(result.captures, self.grammar.json_captures)

    def _text(self) -> str:
        return b"".join(t.bytes for t in self.out).decode("utf-8", errors="replace")

    def _collect_captures(self, progress: list[dict[str, Any]]) -> None:
        for item in progress:
            if item.get("object") == "capture":
                # Healed bytes are re-made before the grammar proper: no capture starts there.
                offset = max(sum(len(t.bytes) for t in self.out), self.healed_bytes)
                name = capture_name(item["name"])
                self.captures.append((name, bytes.fromhex(item["hex"]), offset))

    def _captures(self) -> list[Capture]:
        output = b"".join(t.bytes for t in self.out)
        starts = _token_starts(self.out)
        lists = self.grammar.list_captures
        settled = settle(self.captures, output)
        # A single capture reported twice in one generation keeps its last value.
        last = {name: index for index, (name, _, _) in enumerate(settled) if name not in lists}
        return [
            Capture(
                name,
                value.decode("utf-8", errors="replace"),
                log_prob=_log_prob(self.out, starts, start, start + len(value)),
                is_list=name in lists,
            )
            for index, (name, value, start) in enumerate(settled)
            if name in lists or last[name] == index
        ]


class _Run(Output):
    """One local generation: the decode loop as a few named steps."""

    def __init__(
        self,
        engine: Engine,
        grammar: CompiledGrammar,
        sampling: Sampling,
        rng: Any,
        on_step: StepCallback | None,
        prefix: Sequence[Token | int | Probe] = (),
    ) -> None:
        super().__init__(engine.tokenizer, grammar, on_step)
        self.engine = engine
        self.sampling = sampling
        self.rng = rng
        self.prefix = list(prefix)
        self.eos = self.tokenizer.eos_token_id
        self.writes_eos = False
        self.worker = Worker()
        self.overlaps = self.tokenizer.vocab_size >= OVERLAP_FROM_VOCABULARY
        self.last_mask_seconds = 0.0
        self.scratch: npt.NDArray[Any] | None = None  # measure()'s weights, one per generation
        #: Whether the next step most likely needs the model (the last one sampled a token
        #: and the grammar fixed nothing after it): its forward then runs beside the mask.
        self.model_next = False

    def run(self, prompt: list[int], can_heal: Callable[[int], bool]) -> Generation:
        started = time.perf_counter()
        result = self.result
        result.prompt_tokens = len(prompt)
        interpreter, healed, healed_bytes = self._start(prompt, can_heal)
        self.healed_bytes = healed_bytes
        result.prompt_tokens = self.kept_prompt + healed
        result.healed_tokens = healed
        result.healed_bytes = healed_bytes
        if self.on_step is not None and (self.out or healed_bytes):
            self.on_step(self.out, healed_bytes, 0, len(self.out))
        self.writes_eos = self._writes(self.eos)
        with self.worker:
            while self._advance(interpreter, started):
                pass
        self._finish(interpreter, result)
        result.total_s = time.perf_counter() - started
        return result

    def _advance(self, interpreter: Any, started: float) -> bool:
        """One step: the grammar's mask, then its fixed tokens or a token the model chose.
        False when the grammar has stopped, or a probe has looked."""
        step_started = time.perf_counter()
        mask, response, logits = self._mask_beside_forward(interpreter)
        stop, temperature = _read_response(response, self._collect_captures)
        if stop:
            return False
        self.model_next = False
        if mask is None:
            backtrack, forced = self._step(interpreter, lambda: interpreter.commit_token(None))
            self._apply(backtrack, forced, None, None if self.writes_eos else self.eos, self.result)
            return True
        allowed = _allowed(mask, self.tokenizer.vocab_size)
        if len(self.out) < len(self.prefix):
            return not self._take_prefix(interpreter, allowed, temperature, step_started)
        # End-of-sequence is allowed where the grammar may end, and where the grammar
        # itself writes that token (a Mock's <s>): only the first ends the generation.
        may_end = bool(allowed[self.eos]) and (not self.writes_eos or interpreter.is_accepting())
        ending = self.eos if may_end or not self.writes_eos else None
        only = _single(allowed)
        if only is not None:
            # One token possible: it is fixed, and the model need not run for it.
            commit = functools.partial(interpreter.commit_token, only)
            backtrack, forced = self._step(interpreter, commit)
            self._apply(backtrack, forced, None, ending, self.result)
            return True
        if logits is None:
            logits = self._forward()
        choice = Allowed(allowed)
        self._sample(interpreter, logits, choice, temperature, may_end, ending, step_started)
        if self.result.time_to_first_token_s is None:
            self.result.time_to_first_token_s = time.perf_counter() - started
        return True

    def _mask_beside_forward(
        self, interpreter: Any
    ) -> tuple[bytes | None, str, npt.NDArray[Any] | None]:
        """The grammar's mask and step response; and, when the model most likely runs this
        step, its logits, from a forward run while the worker computes the mask.

        A forward made for a step the grammar then fixes is counted, and not lost: the
        engine's prefix cache keeps what it processed.
        """
        beside = self.overlaps and self.last_mask_seconds >= OVERLAP_FROM_MASK_S
        if not (beside and self.model_next) or self._context_full():
            mask, response = self._timed_mask(interpreter)
            return mask, response, None
        pending = self.worker.submit(self._timed_mask, interpreter)
        try:
            logits = self._forward()
        finally:
            mask, response = pending.result()  # the mask's own error, if any, first
        return mask, response, logits

    def _timed_mask(self, interpreter: Any) -> tuple[bytes | None, str]:
        mask_started = time.perf_counter()
        try:
            computed: tuple[bytes | None, str] = self._step(interpreter, interpreter.compute_mask)
            return computed
        finally:
            self.last_mask_seconds = time.perf_counter() - mask_started
            self.result.mask_s += self.last_mask_seconds

    def _context_full(self) -> bool:
        limit = self.engine.context_length
        return limit is not None and len(self.ids) >= limit

    def _forward(self) -> npt.NDArray[Any]:
        """The model's logits for the token after the output so far."""
        if self._context_full():
            raise GenerationError(
                f"the model's context is full ({self.engine.context_length} tokens) and the "
                "grammar is not complete; bound the generation with max_tokens="
            )
        result = self.result
        forward_started = time.perf_counter()
        raw_logits, processed = self.engine.forward_counted(self.ids)
        result.forward_s += time.perf_counter() - forward_started
        if result.forward_passes == 0:
            result.cached_prompt_tokens = min(len(self.ids) - processed, self.kept_prompt)
        result.forward_passes += 1
        return _fit(raw_logits, self.tokenizer.vocab_size)

    def _sample(
        self,
        interpreter: Any,
        logits: npt.NDArray[Any],
        allowed: Allowed,
        temperature: float,
        may_end: bool,
        ending: int | None,
        step_started: float,
    ) -> None:
        """Choose a token, commit it and record it."""
        # Where the grammar may end, the model chooses freely, as in guidance: a token the
        # grammar does not allow ends the generation there (an open-ended regex stops where
        # the model would leave it, not where the token limit is).
        chosen = pick(logits, allowed, temperature, self.sampling, self.rng, unconstrained=may_end)
        self.engine.note_sampling(temperature)
        token = chosen
        if not allowed.mask[token]:
            if not may_end:
                raise GenerationError(
                    "the grammar allows no token at this point (it cannot be completed); "
                    f"text so far: {self._text()!r}"
                )
            token = self.eos
        commit = functools.partial(interpreter.commit_token, token)
        backtrack, forced = self._step(interpreter, commit)
        record = self._measured(chosen, logits, allowed, time.perf_counter() - step_started)
        self._apply(backtrack, forced, record, ending, self.result)
        self.model_next = (
            backtrack == 0 and list(forced) == [token] and not interpreter.has_pending_stop()
        )

    def _measured(
        self, token: int, logits: npt.NDArray[Any], allowed: Allowed, latency: float
    ) -> Token:
        """The record of a sampled token: its figures measured now, its candidates made
        when first read."""
        if self.scratch is None or self.scratch.shape != logits.shape:
            self.scratch = logits.copy()
        count = self.sampling.candidates
        prob, top, top_allowed = measure(logits, allowed, token, count, self.scratch)
        flags = [bool(allowed.mask[i]) for i, _ in top]
        return MeasuredToken(
            token,
            self.tokenizer.token_bytes(token),
            latency=latency,
            special=self.tokenizer.is_special(token),
            prob=prob,
            measured=functools.partial(_candidates, self.tokenizer, top, flags, top_allowed),
        )

    def _take_prefix(
        self,
        interpreter: Any,
        allowed: npt.NDArray[np.bool_],
        temperature: float,
        step_started: float,
    ) -> bool:
        """Commit the prefix's next token where the model would have chosen one (True: the
        prefix ended in a probe, which has looked)."""
        result = self.result
        wanted = self.prefix[len(self.out)]
        if isinstance(wanted, Probe):
            raw_logits, _ = self.engine.forward_counted(self.ids)
            result.forward_passes += 1
            wanted.look(allowed, _fit(raw_logits, len(allowed)), self.ids)
            return True
        token = wanted if isinstance(wanted, int) else wanted.token_id
        if not (0 <= token < len(allowed) and allowed[token]):
            shown = self.tokenizer.token_bytes(token) if 0 <= token < len(allowed) else b"?"
            raise ExploreError(
                f"the grammar does not allow token {token} ({shown!r}) after "
                f"{self._text()!r}; choose one of the allowed candidates"
            )
        record = wanted if isinstance(wanted, Token) else None
        if record is None:
            raw_logits, _ = self.engine.forward_counted(self.ids)
            result.forward_passes += 1
            logits = _fit(raw_logits, len(allowed))
            latency = time.perf_counter() - step_started
            record = self._measured(token, logits, Allowed(allowed), latency)
        commit = functools.partial(interpreter.commit_token, token)
        backtrack, forced = self._step(interpreter, commit)
        self._apply(backtrack, forced, record, self.tokenizer.eos_token_id, result)
        kept = self.out[: len(self.prefix)]
        expected = [_token_id(p) for p in self.prefix[: len(kept)]]
        if [t.token_id for t in kept] != expected:
            raise ExploreError(
                "the grammar made other tokens than the forced prefix: "
                f"{self._text()!r}; the prefix does not fit this generation"
            )
        return False

    def _writes(self, token_id: int) -> bool:
        """Whether the grammar writes this special token itself (``special_token(...)``)."""
        text = self.tokenizer.token_bytes(token_id).decode("utf-8", errors="replace")
        return text in self.grammar.special_tokens  # each checked to be one exact token

    def _start(self, prompt: list[int], can_heal: Callable[[int], bool]) -> tuple[Any, int, int]:
        interpreter = self._interpreter()
        if not prompt:
            # A model needs a token to start from: the start-of-text token, else end-of-text.
            start = self.tokenizer.bos_token_id
            prompt = [start if start is not None else self.tokenizer.eos_token_id]
            can_heal = _never
        # The interpreter sees the prompt's end only: it re-tokenizes what it is given (to
        # heal), so the whole prompt would cost each generation time in its length.
        seen = _healing_window(prompt, self.tokenizer)
        tail = prompt[seen:]
        processed = prompt[:seen] + self._step(
            interpreter, lambda: interpreter.process_prompt(tail)
        )
        common = common_prefix(prompt, processed)
        healed = len(prompt) - common
        healed_bytes = sum(len(self.tokenizer.token_bytes(t)) for t in prompt[common:])
        # Healing that would leave no prompt at all is not done (nothing to start from).
        if healed == 0 or (common > 0 and can_heal(healed_bytes)):
            self.ids = list(prompt[:common])
            self.kept_prompt = common
            for token in processed[common:]:
                self._push(token, None)
            return interpreter, healed, healed_bytes
        # Healing would reach template text: start over without looking at the prompt.
        interpreter = self._interpreter()
        interpreter.start_without_prompt()
        self.ids = list(prompt)
        self.kept_prompt = len(prompt)
        return interpreter, 0, 0


def _candidates(
    tokenizer: EngineTokenizer,
    top: list[tuple[int, float]],
    flags: list[bool],
    top_allowed: list[tuple[int, float]] | None,
) -> Measured:
    """A step's measured candidates as a token's fields (``top_allowed`` None: the same as
    ``top``)."""
    made = tuple(
        Candidate(i, tokenizer.token_bytes(i), p, flag)
        for (i, p), flag in zip(top, flags, strict=True)
    )
    if top_allowed is None:
        return made, made
    return made, tuple(Candidate(i, tokenizer.token_bytes(i), p, True) for i, p in top_allowed)


_TAIL = re.compile(r'"stop":(true|false),"temperature":([^,}]+)\}$')


def _read_response(
    response: str, on_progress: Callable[[list[dict[str, Any]]], None]
) -> tuple[bool, float]:
    """(stop, temperature) from llguidance's step response; progress only when it matters.

    Parsing the whole JSON every token costs more than the mask: only responses that
    report a capture are parsed in full.
    """
    tail = _TAIL.search(response) if '"capture"' not in response else None
    if tail is not None:
        return tail.group(1) == "true", float(tail.group(2))
    parsed = json.loads(response)
    on_progress(parsed["progress"])
    return bool(parsed["stop"]), float(parsed["temperature"])


def _check_json_captures(captures: Sequence[Capture], json_names: frozenset[str]) -> None:
    """A json() value cut short by its token limit is an error, not a silent bad value."""
    for capture in captures:
        if capture.name not in json_names:
            continue
        try:
            json.loads(capture.value)
        except ValueError:
            shown = capture.value if len(capture.value) <= 80 else capture.value[:77] + "..."
            raise GenerationError(
                f"json({capture.name!r}) was cut before its value was complete, by its "
                f"max_tokens (or the model's context): {shown!r}; raise max_tokens, or "
                "leave it out and bound the value with the schema (maxLength, maxItems, enum)"
            ) from None


def _token_starts(tokens: Sequence[Token]) -> list[int]:
    starts = []
    offset = 0
    for token in tokens:
        starts.append(offset)
        offset += len(token.bytes)
    return starts


def _log_prob(tokens: Sequence[Token], starts: Sequence[int], start: int, end: int) -> float | None:
    """Sum of log-probabilities of the generated tokens overlapping ``[start, end)``.

    Forced tokens count as certain (the grammar left no choice). None when a generated
    token's probability is unknown (a server that does not report it).
    """
    total = 0.0
    for token, token_start in zip(tokens, starts, strict=True):
        token_end = token_start + len(token.bytes)
        if token_end <= start or token_start >= end or token.kind is not TokenKind.GENERATED:
            continue
        if token.prob is None:
            return None
        total += math.log(token.prob) if token.prob > 0 else -math.inf
    return total


def _allowed(mask: bytes, vocab: int) -> npt.NDArray[np.bool_]:
    import numpy as np

    allowed: npt.NDArray[np.bool_] = np.frombuffer(mask, dtype=np.uint8, count=vocab) != 0
    return allowed


def _fit(logits: npt.NDArray[Any], vocab: int) -> npt.NDArray[Any]:
    """Logits of exactly the tokenizer's size (models often pad their vocabulary)."""
    import numpy as np

    if logits.shape[0] == vocab:
        return logits
    if logits.shape[0] > vocab:
        return logits[:vocab]
    padded = np.full(vocab, -np.inf, dtype=logits.dtype)
    padded[: logits.shape[0]] = logits
    return padded


def _single(allowed: npt.NDArray[np.bool_]) -> int | None:
    """The only allowed token, if exactly one is allowed."""
    import numpy as np

    return int(np.argmax(allowed)) if np.count_nonzero(allowed) == 1 else None


def _healing_window(prompt: Sequence[int], tokenizer: EngineTokenizer) -> int:
    """Where the part of ``prompt`` the interpreter looks at starts.

    The interpreter tokenizes the text it is given its own way and heals from the first
    token where that differs from the prompt. A prompt's tokens are often not the ones the
    tokenizer would write for its text: the model's own tokens are kept as it chose them,
    and text and template are tokenized apart. Healing from there would re-make the model's
    earlier output (its tokens, their probabilities, the engine's cache of them). So the
    interpreter sees the longest end of the prompt, of at most ``HEALING_WINDOW`` tokens,
    that the tokenizer writes exactly as the prompt has it, starting at a character (a
    window that started inside one would give it bytes that are not text).
    """
    widest = _character_start(prompt, max(0, len(prompt) - HEALING_WINDOW), tokenizer)
    if _written_alike(prompt[widest:], tokenizer):
        return widest  # the usual case: text the tokenizer wrote
    # Longer ends are written alike less often: the longest that is, by bisection.
    written, unlike = _character_start(prompt, len(prompt) - 1, tokenizer), widest
    while True:
        middle = _character_start(prompt, (written + unlike) // 2, tokenizer)
        if middle <= unlike or middle >= written:
            return written
        if _written_alike(prompt[middle:], tokenizer):
            written = middle
        else:
            unlike = middle


def _character_start(prompt: Sequence[int], start: int, tokenizer: EngineTokenizer) -> int:
    """``start``, moved back to a token that starts a character."""
    while start > 0 and _continues_a_character(tokenizer.token_bytes(prompt[start])):
        start -= 1
    return start


def _written_alike(tokens: Sequence[int], tokenizer: EngineTokenizer) -> bool:
    """Whether the tokenizer writes these tokens' text as exactly these tokens."""
    text = b"".join(tokenizer.token_bytes(t) for t in tokens)
    return bool(tokenizer.ll.tokenize_bytes(text) == list(tokens))


def _continues_a_character(data: bytes) -> bool:
    return bool(data) and data[0] & 0xC0 == 0x80


def _never(size: int) -> bool:
    return False
