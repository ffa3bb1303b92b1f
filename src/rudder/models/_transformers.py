"""``models.Transformers``: Hugging Face causal language models, on CPU or CUDA.

torch and transformers are imported when a model is built, never by ``import rudder``.
The engine keeps the KV cache of the last sequence it ran and reuses it for the longest
common token prefix of the next one, so a program that appends to its prompt only runs the
new tokens.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from rudder._builtin import builtin_model_path
from rudder._chat import ChatTemplate
from rudder.engine._engine import PrefixCachedEngine
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import ModelLoadError
from rudder.models._model import Model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class HuggingFaceTokenizer(EngineTokenizer):
    """A fast Hugging Face tokenizer, with a second copy that never parses special tokens."""

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
        for backend in (self._with_special, self._plain):
            backend.no_padding()
            backend.no_truncation()
        # Program and model text: special-token text is split into ordinary tokens.
        self._plain.encode_special_tokens = True
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
            llguidance.hf.from_tokenizer(hf_tokenizer),
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

    def _run(self, ids: list[int], reusable: int) -> tuple[npt.NDArray[np.float32], int]:
        import torch
        from transformers import DynamicCache

        kept = reusable
        if self._cache is None or kept == 0:
            self._cache = DynamicCache()
            kept = 0
        else:
            # A negative count removes that many tokens, in old and new transformers alike.
            surplus = self._cache.get_seq_length() - kept
            if surplus > 0:
                self._cache.crop(-surplus)
        inputs = torch.tensor([ids[kept:]], device=self.device)
        try:
            with torch.inference_mode():
                output = self.model(
                    input_ids=inputs, use_cache=True, **{self._cache_argument: self._cache}
                )
        except BaseException:
            self._cache = None  # the cache may hold part of a failed step
            raise
        # The model fills the cache it was given in place (older versions return it too).
        self._cache = getattr(output, self._cache_argument, None) or self._cache
        return output.logits[0, -1].float().cpu().numpy(), kept

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


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or os.path.isabs(name)
        or name.count("/") > 1
        or os.path.exists(os.path.expanduser(name))
    )


def load_model(model: Any, device: str | None, dtype: Any, **kwargs: Any) -> Any:
    """A causal LM from a path, a hub id or an already loaded model."""
    import torch
    from transformers import AutoModelForCausalLM

    if not isinstance(model, str):
        if not isinstance(model, torch.nn.Module):
            raise ModelLoadError(
                "model must be a path, a hub id or a loaded transformers model; "
                f"got {type(model).__name__}"
            )
        return model.eval()
    path = os.path.expanduser(model)
    if _looks_like_path(model) and not os.path.exists(path):
        raise ModelLoadError(f"no model at {model!r}: that path does not exist")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype if dtype is not None else "auto", **kwargs
        )
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"cannot load a causal language model from {model!r}: {error}"
        ) from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return loaded.to(device).eval()  # type: ignore[arg-type]


def load_tokenizer(tokenizer: Any, model: Any, hf_model: Any) -> Any:
    from transformers import AutoTokenizer

    source = tokenizer
    if source is None:
        source = model if isinstance(model, str) else getattr(hf_model, "name_or_path", None)
        if not source:
            raise ModelLoadError(
                "pass tokenizer= with a loaded model object: rudder cannot tell where its "
                "tokenizer is"
            )
    if not isinstance(source, str):
        return source
    try:
        return AutoTokenizer.from_pretrained(os.path.expanduser(source))
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"cannot load a tokenizer from {source!r}: {error}") from None


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
        if model is None:
            model = str(builtin_model_path())
            print(f"rudder: no model given; using the built-in model ({model})", file=sys.stderr)
        hf_model = load_model(model, device, dtype, **kwargs)
        hf_tokenizer = load_tokenizer(tokenizer, model, hf_model)
        engine = TransformersEngine(hf_model, HuggingFaceTokenizer(hf_tokenizer))
        super().__init__(engine, chat_template=chat_template, sampling=sampling, echo=echo)
