"""Rendered prompt segments -> token ids.

Template text is encoded with special tokens parsed (a chat template's role markers are
special tokens); program and model text is encoded as plain text; tokens the model produced
before are reused as they are, so the model sees its own tokens again and the engine's
prefix cache stays valid. Encodings are cached per text by the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rudder._chat import ContentText, ContentTokens, Prompt, TemplateText, TrimmedTail
from rudder.engine._tokenizer import EngineTokenizer


@dataclass(frozen=True, slots=True)
class PromptTokens:
    ids: list[int]
    #: How many bytes at the end of the prompt are program or model text (which token
    #: healing may take back and re-make), as opposed to template text.
    content_tail_bytes: int


def tokenize_prompt(prompt: Prompt, tokenizer: EngineTokenizer) -> PromptTokens:
    ids: list[int] = []
    tail = 0
    for segment in prompt.segments:
        if isinstance(segment, TemplateText):
            ids.extend(tokenizer.encode(segment.text, True))
            tail = 0
        elif isinstance(segment, TrimmedTail):
            tail = 0
        elif isinstance(segment, ContentText):
            ids.extend(tokenizer.encode(segment.text, False))
            tail += len(segment.text.encode())
        elif isinstance(segment, ContentTokens):
            ids.extend(token.token_id for token in segment.tokens)
            tail += sum(len(token.bytes) for token in segment.tokens)
    if (
        not prompt.uses_template
        and tokenizer.add_bos
        and tokenizer.bos_token_id is not None
        and (not ids or ids[0] != tokenizer.bos_token_id)
    ):
        ids.insert(0, tokenizer.bos_token_id)
    return PromptTokens(ids, tail)
