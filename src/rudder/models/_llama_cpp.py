"""``models.LlamaCpp``: GGUF models through llama.cpp (llama-cpp-python), on CPU or GPU.

llama_cpp is imported when a model is built, never by ``import rudder``. The engine drives
llama.cpp's context directly: it keeps the KV cache of the last sequence, removes the tail
that differs from the next one, runs only the new tokens, and asks for the logits of the last
position alone (``Llama.scores`` is left empty without ``logits_all``, and filling every
position would cost a vocabulary-sized copy per token).
"""

from __future__ import annotations

import os
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rudder._chat import ChatTemplate
from rudder.engine._engine import PrefixCachedEngine
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import GenerationError, ModelLoadError
from rudder.models._model import Model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

INSTALL_HINT = (
    "install it with `pip install 'rudder[llama_cpp]'`; PyPI has only its source, so this "
    "compiles llama.cpp (about 10 minutes on 2 cores). From a clone, `scripts/install-llama-cpp` "
    "builds the CPU backend alone and keeps the wheel for the next install"
)
#: Where guidance's LlamaCpp looks for a model when none is given.
MODEL_VARIABLE = "LLAMA_CPP_MODEL"
MODEL_FILE = "~/.llama_cpp_model"
_GGUF_MAGIC = b"GGUF"


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise ModelLoadError(
            f"models.LlamaCpp needs llama-cpp-python ({error}); {INSTALL_HINT}"
        ) from None
    return llama_cpp


class LlamaCppTokenizer(EngineTokenizer):
    """llama.cpp's own tokenizer, bridged to llguidance.

    llguidance tokenizes the grammar's fixed text through the plain encoding (the base
    class's contract); ``encode`` parses special tokens only for template text
    (``special=True``).
    """

    def __init__(self, llama: Any) -> None:
        import llama_cpp
        import llguidance.llamacpp

        self._llama = llama
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        eos = llama_cpp.llama_vocab_eos(vocab)
        bos = llama_cpp.llama_vocab_bos(vocab)
        if eos < 0:
            raise ModelLoadError(
                "this GGUF model has no end-of-sequence token (tokenizer.ggml.eos_token_id): "
                "rudder needs one to end generations"
            )
        special = {"eos_token": self._piece(eos), "bos_token": self._piece(bos) if bos >= 0 else ""}
        template = llama.metadata.get("tokenizer.chat_template")
        with warnings.catch_warnings():
            # llguidance's helper calls llama_token_get_attr, which newer bindings deprecate.
            warnings.filterwarnings(
                "ignore", "llama_token_get_attr is deprecated", category=DeprecationWarning
            )
            # Its vocabulary knows how llama.cpp spells each token's bytes and which are
            # control tokens; the base class tokenizes for llguidance (plain encoding only).
            vocabulary = llguidance.llamacpp.lltokenizer_from_vocab(vocab)
        ids = range(vocabulary.vocab_size)
        super().__init__(
            [vocabulary.decode_bytes([i]) for i in ids],
            special_ids=[i for i in ids if vocabulary.is_special_token(i)],
            eos_token_id=eos,
            bos_token_id=bos if bos >= 0 else None,
            add_bos=bos >= 0 and bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            special_tokens=special,
            chat_template=template or None,
        )

    def _piece(self, token_id: int) -> str:
        data: bytes = self._llama.detokenize([token_id], special=True)
        return data.decode("utf-8", errors="replace")

    def _encode(self, text: str, special: bool) -> list[int]:
        # add_bos=False: rudder adds the start-of-text token itself where it belongs.
        ids: list[int] = self._llama.tokenize(text.encode(), add_bos=False, special=special)
        return ids


class LlamaCppEngine(PrefixCachedEngine):
    """A llama.cpp context whose KV cache is reused across calls."""

    def __init__(self, llama: Any) -> None:
        import llama_cpp

        super().__init__(LlamaCppTokenizer(llama), context_length=llama.n_ctx())
        self.llama = llama
        self._n_vocab = llama.n_vocab()
        self._n_batch = llama.n_batch
        # One sequence, at most n_batch tokens per decode; freed with the engine.
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        weakref.finalize(self, llama_cpp.llama_batch_free, self._batch)
        self._clear_memory()  # a Llama passed in may hold someone else's tokens

    @property
    def model_name(self) -> str:
        """The GGUF file the model was loaded from, for telemetry and the store."""
        return str(getattr(self.llama, "model_path", "") or "llama.cpp")

    def _run(self, ids: list[int], reusable: int) -> tuple[npt.NDArray[np.float32], int]:
        import llama_cpp
        import numpy as np

        ctx = self.llama.ctx
        kept = reusable
        # Some memories (recurrent models) cannot drop a tail: then everything runs again.
        if not llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), -1, kept, -1):
            self._clear_memory()
            kept = 0
        batch = self._batch
        for start in range(kept, len(ids), self._n_batch):
            chunk = ids[start : start + self._n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = start + i == len(ids) - 1  # the last position only
            status = llama_cpp.llama_decode(ctx, batch)
            if status != 0:
                self._clear_memory()
                raise GenerationError(
                    f"llama.cpp could not run the model (llama_decode returned {status}) on "
                    f"{len(ids)} tokens with a context of {self.context_length}; a larger "
                    "n_ctx= may help"
                )
        pointer = llama_cpp.llama_get_logits_ith(ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float32)
        return logits, kept

    def _clear_memory(self) -> None:
        import llama_cpp

        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llama.ctx), True)

    def reset_cache(self) -> None:
        with self._lock:
            super().reset_cache()
            self._clear_memory()


def is_gguf(name: str) -> bool:
    """Whether ``name`` is meant as a GGUF file: named ``.gguf``, or a file that starts
    like one."""
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        return True
    try:
        with path.open("rb") as file:
            return file.read(len(_GGUF_MAGIC)) == _GGUF_MAGIC
    except OSError:
        return False


def model_path(model: Any) -> str:
    """The GGUF file to load: ``model``, else where guidance's LlamaCpp looks."""
    if model is None:
        model = os.environ.get(MODEL_VARIABLE, "").strip()
        if not model:
            try:
                model = Path(MODEL_FILE).expanduser().read_text(encoding="utf-8").strip()
            except OSError:
                model = ""
        if not model:
            raise ModelLoadError(
                "models.LlamaCpp needs a GGUF file: pass its path, or set "
                f"{MODEL_VARIABLE} (or write the path in {MODEL_FILE})"
            )
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise ModelLoadError(
            "model must be the path of a GGUF file or a llama_cpp.Llama; "
            f"got {type(model).__name__}"
        )
    path = Path(model).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelLoadError(f"no GGUF model at {model!r}: that path {what}")
    try:
        with path.open("rb") as file:
            magic = file.read(len(_GGUF_MAGIC))
    except OSError as error:
        raise ModelLoadError(f"cannot read the GGUF model {model!r}: {error}") from None
    if magic != _GGUF_MAGIC:
        raise ModelLoadError(
            f"{model!r} is not a GGUF file (it does not start with {_GGUF_MAGIC!r}); "
            "llama.cpp loads .gguf files: convert a Hugging Face model with llama.cpp's "
            "convert_hf_to_gguf.py, or use models.Transformers for it"
        )
    return str(path)


def load_llama(model: Any, kwargs: dict[str, Any]) -> Any:
    """A ``llama_cpp.Llama`` from a path, or the one given."""
    llama_cpp = _import_llama_cpp()
    if isinstance(model, llama_cpp.Llama):
        return model
    path = model_path(model)
    kwargs.setdefault("verbose", False)
    try:
        return llama_cpp.Llama(model_path=path, **kwargs)
    except (ValueError, RuntimeError, OSError) as error:
        # llama.cpp logs why on stderr; llama-cpp-python's error says what failed.
        raise ModelLoadError(f"llama.cpp cannot load {str(model)!r}: {error}") from None


class LlamaCpp(Model):
    """A GGUF model run by llama.cpp: ``models.LlamaCpp("model.gguf")``.

    Needs llama-cpp-python (``pip install 'rudder[llama_cpp]'``, which compiles llama.cpp).

    Args:
        model: the path of a GGUF file, or a loaded ``llama_cpp.Llama``; None reads the
            path from ``LLAMA_CPP_MODEL`` or ``~/.llama_cpp_model``, as guidance does.
        echo: show this Model's steps in the views.
        chat_template: None for the GGUF's own template (``tokenizer.chat_template``; the
            plain template when it has none), a built-in name (``"chatml"``, ``"llama3"``,
            ``"phi3"``, ``"plain"``), Jinja2 source, or a :class:`ChatTemplate`.
        top_p, top_k, min_p, seed: rudder's sampling settings (see
            :class:`rudder.engine.Sampling`); llama.cpp's own sampler is not used.
        **llama_cpp_kwargs: passed to ``llama_cpp.Llama``: ``n_ctx`` (context length,
            llama-cpp-python's default 512; 0 for the model's own), ``n_gpu_layers`` (-1 puts
            every layer on the GPU of a GPU build), ``n_threads``, ``n_batch`` ...
            ``verbose`` is False unless given.
    """

    def __init__(
        self,
        model: Any = None,
        echo: bool = True,
        chat_template: str | ChatTemplate | None = None,
        *,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: int | None = None,
        **llama_cpp_kwargs: Any,
    ) -> None:
        sampling = Sampling(top_p=top_p, top_k=top_k, min_p=min_p, seed=seed)
        engine = LlamaCppEngine(load_llama(model, dict(llama_cpp_kwargs)))
        super().__init__(engine, chat_template=chat_template, sampling=sampling, echo=echo)
