"""``models.Transformers``: Hugging Face causal language models, on CPU or CUDA.

torch and transformers are imported when a model is built, never by ``import rudder``.
The engine keeps the KV cache of the last sequence it ran and reuses it for the longest
common token prefix of the next one, so a program that appends to its prompt only runs the
new tokens.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rudder._builtin import builtin_model_path
from rudder._chat import ChatTemplate
from rudder.engine._engine import PrefixCachedEngine
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import ModelLoadError
from rudder.models._model import Model, check_echo
from rudder.models._transformers_loading import (
    checked_device,
    checked_dtype,
    load_model,
    load_tokenizer,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class HuggingFaceTokenizer(EngineTokenizer):
    """A fast Hugging Face tokenizer, with copies that never parse special tokens.

    Three copies of the backend: one parses special tokens (template text); one has
    ``encode_special_tokens`` set (program and model text); the third is that one without
    the prefix space SentencePiece tokenizers add at the start of a text, for the text
    llguidance tokenizes in the middle of a sequence (as llguidance's own bridge does).
    """

    def __init__(self, hf_tokenizer: Any) -> None:
        import llguidance.hf
        from tokenizers import Tokenizer

        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelLoadError(
                f"rudder needs a fast tokenizer (tokenizers-backed); got "
                f"{type(hf_tokenizer).__name__}. Load it with AutoTokenizer.from_pretrained"
                "(..., use_fast=True)"
            )
        serialized = hf_tokenizer.backend_tokenizer.to_str()
        self._with_special = Tokenizer.from_str(serialized)
        self._plain = Tokenizer.from_str(serialized)
        self._continuation = Tokenizer.from_str(without_prefix_space(serialized))
        for backend in (self._with_special, self._plain, self._continuation):
            backend.no_padding()
            backend.no_truncation()
        # Plain text: special-token text is split into ordinary tokens.
        self._plain.encode_special_tokens = True
        self._continuation.encode_special_tokens = True
        # llguidance's bridge knows how each kind of vocabulary spells bytes, and which
        # added tokens are special; its own tokenize function is not used (it parses them).
        vocabulary = llguidance.hf.from_tokenizer(hf_tokenizer)
        ids = range(vocabulary.vocab_size)
        bos = hf_tokenizer.bos_token_id
        probe = hf_tokenizer("a").input_ids
        special = {
            key: value
            for key, value in hf_tokenizer.special_tokens_map.items()
            if isinstance(value, str)
        }
        for key in ("bos_token", "eos_token"):
            special.setdefault(key, "")
        template = hf_tokenizer.chat_template
        if isinstance(template, dict):  # named templates: use the default one
            template = template.get("default")
        super().__init__(
            [vocabulary.decode_bytes([i]) for i in ids],
            special_ids=[i for i in ids if vocabulary.is_special_token(i)],
            eos_token_id=hf_tokenizer.eos_token_id,
            bos_token_id=bos,
            add_bos=bos is not None and bool(probe) and probe[0] == bos,
            special_tokens=special,
            chat_template=template,
        )

    def _encode(self, text: str, special: bool) -> list[int]:
        backend = self._with_special if special else self._plain
        ids: list[int] = backend.encode(text, add_special_tokens=False).ids
        return ids

    def _encode_continuation(self, text: str) -> list[int]:
        ids: list[int] = self._continuation.encode(text, add_special_tokens=False).ids
        return ids


def without_prefix_space(serialized: str) -> str:
    """A tokenizer's JSON without the space SentencePiece adds at the start of a text: no
    ``Prepend`` normalizer, ``Metaspace`` pre-tokenizers that never prepend."""
    import json

    config = json.loads(serialized)
    config["normalizer"] = _without_prepend(config.get("normalizer"))
    _never_prepend(config.get("pre_tokenizer"))
    return json.dumps(config)


def _without_prepend(normalizer: Any) -> Any:
    if not isinstance(normalizer, dict):
        return normalizer
    if normalizer.get("type") == "Prepend":
        return None
    if normalizer.get("type") == "Sequence":
        kept = [n for n in map(_without_prepend, normalizer.get("normalizers", [])) if n]
        return {**normalizer, "normalizers": kept} if kept else None
    return normalizer


def _never_prepend(pre_tokenizer: Any) -> None:
    if not isinstance(pre_tokenizer, dict):
        return
    if pre_tokenizer.get("type") == "Metaspace":
        pre_tokenizer["prepend_scheme"] = "never"
        pre_tokenizer.pop("add_prefix_space", None)
    for child in pre_tokenizer.get("pretokenizers", []):
        _never_prepend(child)


class TransformersEngine(PrefixCachedEngine):
    """A causal LM with a KV cache (a ``DynamicCache``) reused across calls."""

    def __init__(self, model: Any, tokenizer: HuggingFaceTokenizer) -> None:
        config = getattr(model, "config", None)
        context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        super().__init__(tokenizer, context_length=context if isinstance(context, int) else None)
        self.model = model
        self.device = next(model.parameters()).device
        self._cache: Any = None
        self._cache_argument = cache_argument(model)
        import torch

        # One context object, entered by one forward at a time (the engine's lock).
        self._inference_mode = torch.inference_mode()

    @property
    def model_name(self) -> str:
        return str(getattr(self.model, "name_or_path", "") or "transformers")

    def _run(self, ids: list[int], reusable: int) -> tuple[npt.NDArray[np.float32], int]:
        import torch

        kept = reusable
        if self._cache is None or kept == 0:
            # Imported here: transformers' lazy module makes each import a lookup per step.
            from transformers import DynamicCache

            self._cache = DynamicCache()
            kept = 0
        else:
            # A negative count removes that many tokens, in old and new transformers alike.
            surplus = self._cache.get_seq_length() - kept
            if surplus > 0:
                self._cache.crop(-surplus)
        inputs = torch.tensor([ids[kept:]], dtype=torch.long, device=self.device)
        try:
            with self._inference_mode:
                output = self.model(
                    input_ids=inputs, use_cache=True, **{self._cache_argument: self._cache}
                )
        except BaseException:
            self._cache = None  # the cache may hold part of a failed step
            raise
        # The model fills the cache it was given in place (older versions return it too).
        self._cache = getattr(output, self._cache_argument, None) or self._cache
        return output.logits[0, -1].to("cpu", torch.float32).numpy(), kept

    def reset_cache(self) -> None:
        super().reset_cache()
        self._cache = None


def cache_argument(model: Any) -> str:
    """The name the model's forward takes its KV cache under.

    transformers 5.x renamed ``past_key_values`` to ``cache`` and warns on the old name;
    earlier versions know only ``past_key_values``.
    """
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


class Transformers(Model):
    """A Hugging Face causal LM: ``models.Transformers("path/or/hub-id")``.

    ``models.Transformers()`` loads rudder's built-in model (a small chat model trained on
    a generated corpus of travel-guide conversations, see :mod:`rudder._builtin`) and says so
    on stderr.

    Args:
        model: a local path, a hub id (from the local cache when offline), or a loaded
            ``transformers`` model; None for the built-in model.
        tokenizer: a path, a hub id or a loaded fast tokenizer; by default the model's own.
        chat_template: None for the tokenizer's own template (the plain template when it has
            none), a built-in name (``"chatml"``, ``"llama3"``, ``"phi3"``, ``"plain"``),
            Jinja2 source, or a :class:`ChatTemplate`.
        echo: show this Model's steps in the views (in a notebook, the widget shows the
            program live).
        device: ``"cpu"``, ``"cuda"`` ...; by default CUDA when available.
        dtype: passed to ``from_pretrained`` (default ``"auto"``).
        top_p, top_k, min_p, seed: sampling settings (see :class:`rudder.engine.Sampling`).
        **kwargs: passed to ``AutoModelForCausalLM.from_pretrained``.
    """

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        chat_template: str | ChatTemplate | None = None,
        echo: bool = True,
        *,
        device: str | None = None,
        dtype: Any = None,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        sampling = Sampling(top_p=top_p, top_k=top_k, min_p=min_p, seed=seed)
        device, dtype = checked_device(device), checked_dtype(dtype)
        check_echo(echo)  # before any weight is read
        if model is None:
            model = str(builtin_model_path())
            print(f"rudder: no model given; using the built-in model ({model})", file=sys.stderr)
        hf_model = load_model(model, device, dtype, **kwargs)
        hf_tokenizer = load_tokenizer(tokenizer, model, hf_model)
        engine = TransformersEngine(hf_model, HuggingFaceTokenizer(hf_tokenizer))
        super().__init__(engine, chat_template=chat_template, sampling=sampling, echo=echo)
