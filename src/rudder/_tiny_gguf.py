"""The tiny local Llama as a GGUF file, for llama.cpp's tests and benchmarks (no downloads).

``write_tiny_gguf(hf_directory, path)`` writes a model saved by
:func:`rudder._tiny_models.build_tiny_model` (the ``llama`` architecture) with the ``gguf``
package: the weights as float32, the byte-level BPE tokenizer (``gpt2`` model, GPT-2
pre-tokenizer, its merges, the special tokens as control tokens) and the chat template.

llama.cpp's own converter refuses a locally trained BPE tokenizer (it recognises
pre-tokenizers by hashing the output of known hub tokenizers); this one knows what the tiny
tokenizer is, so it names GPT-2's pre-tokenizer directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: HF Llama names -> GGUF names; ``{i}`` is the layer.
_LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_TOP_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def _gguf_name(name: str) -> str:
    if name in _TOP_TENSORS:
        return _TOP_TENSORS[name]
    parts = name.split(".")
    if parts[:2] == ["model", "layers"] and parts[-1] == "weight":
        layer, inner = parts[2], ".".join(parts[3:-1])
        if inner in _LAYER_TENSORS:
            return f"blk.{layer}.{_LAYER_TENSORS[inner]}.weight"
    raise ValueError(f"no GGUF name for the tensor {name!r}")


def _unrotate(weights: Any, heads: int) -> Any:
    """Hugging Face's q/k rows in llama.cpp's rotary order.

    transformers rotates the two halves of each head's dimensions (``rotate_half``);
    llama.cpp's ``llama`` architecture rotates adjacent pairs. Interleaving the halves of
    each head's rows makes the two compute the same attention.
    """
    rows = weights.shape[0]
    return (
        weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_tiny_gguf(hf_directory: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Write the tiny Llama saved in ``hf_directory`` as a GGUF file at ``path`` (reused if
    already there) and return its path."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    target = Path(path)
    if target.exists():
        return target
    source = Path(hf_directory)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise ValueError(f"only the llama architecture is written, not {config['model_type']!r}")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    hidden = config["hidden_size"]
    rope = config.get("rope_parameters") or {}
    rope_theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))

    writer = gguf.GGUFWriter(None, "llama")
    writer.add_name("rudder tiny llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(config.get("head_dim") or hidden // heads)
    writer.add_rope_freq_base(rope_theta)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])

    backend = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tokenizer.get_vocab()
    tokens = [""] * len(vocab)
    for text, token_id in vocab.items():
        tokens[token_id] = text
    special = {added["id"] for added in backend["added_tokens"] if added["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [
            gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
            for i in range(len(tokens))
        ]
    )
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(tokenizer.pad_token_id)
    # The tiny tokenizer adds no start-of-text token (it has no post-processor that does).
    writer.add_add_bos_token(bool(tokenizer("a").input_ids[:1] == [tokenizer.bos_token_id]))
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)

    for name, weights in sorted(load_file(str(source / "model.safetensors")).items()):
        if name.endswith("q_proj.weight"):
            weights = _unrotate(weights, heads)
        elif name.endswith("k_proj.weight"):
            weights = _unrotate(weights, kv_heads)
        writer.add_tensor(_gguf_name(name), np.ascontiguousarray(weights, dtype=np.float32))

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    writer.write_header_to_file(path=partial)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)  # whole or absent: a run cut short leaves no broken file
    return target
