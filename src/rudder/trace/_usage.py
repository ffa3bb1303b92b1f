"""Token usage: what a generation, a Model's history or a run cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rudder._state import TokenKind

if TYPE_CHECKING:
    from rudder.engine._loop import Generation

#: Figures computed from the fields: the records write them, and ignore them when read.
DERIVED_FIGURES = ("output_tokens", "token_reduction", "per_token_s")


@dataclass(frozen=True, slots=True)
class Usage:
    """Counts and timings of one or more generations; ``+`` sums two of them.

    ``forced_tokens`` were fixed by the grammar and appended without sampling (no model call
    for them); ``generated_tokens`` were sampled. ``backtracked_tokens`` were produced, then
    taken back by the grammar (a stop string spread over several tokens). ``healed_tokens``
    are prompt tokens taken back by token healing. ``cached_prompt_tokens`` are prompt tokens
    the engine did not recompute (its prefix cache held them). Times are in seconds;
    ``time_to_first_token_s`` is that of the first generation that sampled a token.
    """

    generations: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    healed_tokens: int = 0
    forward_passes: int = 0
    forced_tokens: int = 0
    generated_tokens: int = 0
    backtracked_tokens: int = 0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    forward_s: float = 0.0
    mask_s: float = 0.0

    # The records (rudder.trace._records) read and write a Usage as it is: no second
    # spelling of its figures. pydantic reads these two hooks only when it is imported.
    __pydantic_config__: ClassVar = {"json_schema_serialization_defaults_required": True}

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from rudder.trace._records import with_derived_figures

        return with_derived_figures(cls, DERIVED_FIGURES, handler(source), handler)

    @property
    def output_tokens(self) -> int:
        """Tokens the generations added: forced and generated."""
        return self.forced_tokens + self.generated_tokens

    @property
    def token_reduction(self) -> float:
        """The share of output tokens that needed no sampling (forced), from 0 to 1."""
        output = self.output_tokens
        return self.forced_tokens / output if output else 0.0

    @property
    def per_token_s(self) -> float | None:
        """Mean wall time per output token (None when there was no output)."""
        output = self.output_tokens
        return self.total_s / output if output else None

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        first = self.time_to_first_token_s
        return Usage(
            generations=self.generations + other.generations,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            healed_tokens=self.healed_tokens + other.healed_tokens,
            forward_passes=self.forward_passes + other.forward_passes,
            forced_tokens=self.forced_tokens + other.forced_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            backtracked_tokens=self.backtracked_tokens + other.backtracked_tokens,
            time_to_first_token_s=first if first is not None else other.time_to_first_token_s,
            total_s=self.total_s + other.total_s,
            forward_s=self.forward_s + other.forward_s,
            mask_s=self.mask_s + other.mask_s,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        """Every field and derived figure, for logs and messages."""
        data: dict[str, float | int | None] = dataclasses.asdict(self)
        data["output_tokens"] = self.output_tokens
        data["token_reduction"] = self.token_reduction
        data["per_token_s"] = self.per_token_s
        return data

    @classmethod
    def of(cls, generation: Generation) -> Usage:
        """The usage of one generation (its figures have the same names as these)."""
        generated = sum(1 for token in generation.tokens if token.kind is TokenKind.GENERATED)
        same = {f.name: getattr(generation, f.name) for f in _MEASURED}
        return cls(
            generations=1,
            forced_tokens=len(generation.tokens) - generated,
            generated_tokens=generated,
            **same,
        )


#: The figures a Generation measures itself, under the same names; the others are counted
#: from its tokens.
_MEASURED = tuple(
    f
    for f in dataclasses.fields(Usage)
    if f.name not in ("generations", "forced_tokens", "generated_tokens")
)
