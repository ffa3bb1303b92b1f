"""Loading a Hugging Face causal LM and its tokenizer for ``models.Transformers``.

Arguments are checked before any weight is read (a bad device or dtype fails at once), a
hub id that is neither in the local cache nor reachable fails at once instead of retrying
the network, and transformers' progress bars are kept out of output that is not a
terminal. Works across the range of transformers that pyproject.toml allows (4.52.4 to 5.25).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from rudder.errors import ModelLoadError

#: Seconds to wait for the model hub before saying it cannot be reached.
HUB_PROBE_TIMEOUT_S = 3.0


def checked_device(device: Any) -> str | None:
    """``device`` as a string torch accepts and this machine has, or None for the default."""
    if device is None:
        return None
    import torch

    if not isinstance(device, (str, torch.device)):
        raise ModelLoadError(
            f"device must be a string such as 'cpu' or 'cuda:0'; got {type(device).__name__}"
        )
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelLoadError(
            f"unknown device {str(device)!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(
                f"device {str(device)!r} asks for CUDA, but torch sees no CUDA GPU here "
                "(torch's CPU build, or no driver): use device='cpu'"
            )
        if parsed.index is not None and parsed.index >= count:
            raise ModelLoadError(
                f"device {str(device)!r} does not exist: torch sees {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {str(device)!r} is not available here: use device='cpu'")
    return str(parsed)


def checked_dtype(dtype: Any) -> Any:
    """``dtype`` as a ``torch.dtype`` or ``"auto"`` (None means ``"auto"``)."""
    if dtype is None or dtype == "auto":
        return "auto"
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        named = getattr(torch, dtype.removeprefix("torch."), None)
        if isinstance(named, torch.dtype) and named.is_floating_point:
            return named
    raise ModelLoadError(
        f"unknown dtype {dtype!r}: use 'auto', a floating-point torch dtype such as "
        "torch.float16, or its name ('float32', 'float16', 'bfloat16')"
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
    if not os.path.exists(path):
        kwargs = {**_hub_access(model), **kwargs}
    try:
        with _quiet_progress():
            loaded = AutoModelForCausalLM.from_pretrained(
                path, **{_dtype_argument(): dtype}, **kwargs
            )
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"cannot load a causal language model from {model!r}: {error}"
        ) from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return loaded.to(device).eval()  # type: ignore[arg-type]


def load_tokenizer(tokenizer: Any, model: Any, hf_model: Any) -> Any:
    """The fast tokenizer for ``model``: ``tokenizer`` itself when it is loaded already."""
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
    path = os.path.expanduser(source)
    kwargs = {} if os.path.exists(path) else _hub_access(source)
    try:
        return AutoTokenizer.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"cannot load a tokenizer from {source!r}: {error}") from None


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or os.path.isabs(name)
        or name.count("/") > 1
        or os.path.exists(os.path.expanduser(name))
    )


def _dtype_argument() -> str:
    """``from_pretrained`` takes ``dtype`` from transformers 4.56 on, ``torch_dtype`` before
    (and warns about it after)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _hub_access(repo_id: str) -> dict[str, Any]:
    """How to reach a hub id: from the local cache alone when it is there (no network
    round trip), else from the hub, which must answer at once."""
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return {"local_files_only": True}
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(
            f"{repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
            "download it first (huggingface-cli download) or pass a local path"
        )
    endpoint = urlparse(constants.ENDPOINT)
    host, port = endpoint.hostname or "", endpoint.port or 443
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise ModelLoadError(
            f"{repo_id!r} is not in the local Hugging Face cache and the hub ({host}) cannot "
            f"be reached ({error}): download it where there is network, or pass a local path"
        ) from None
    return {}


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """transformers' progress bars only on a terminal: in a pipe or a log they are noise."""
    from transformers.utils import logging as hf_logging

    if sys.stderr.isatty() or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
