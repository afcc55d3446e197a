"""The causal transformer baseline as llama: a transformers `LlamaForCausalLM` folder and llama.cpp's `llama` GGUF
tensors.

The causal baseline (`hrm_jax.model.transformer`, `causal=True`) is llama's computation exactly: pre-norm blocks,
final norm, SwiGLU, multi-head attention with half-split RoPE, untied lm_head, no biases. Two constants live
elsewhere and are folded in exactly:

* the parameter-free RMSNorms become llama's weighted ones with weight 1.0 (llama normalises in fp32 the same way,
  then multiplies by the weight);
* the embedding scale sqrt(D) is multiplied into the token table (a gather commutes with a per-element product,
  so the fp32 result is bit-identical).

HF names ([out, in]): model.embed_tokens.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
model.layers.{i}.mlp.{gate,up,down}_proj.weight, model.layers.{i}.{input,post_attention}_layernorm.weight,
model.norm.weight, lm_head.weight. GGUF names are llama.cpp's (token_embd, blk.{i}.attn_q, ..., output_norm,
output) with attn_q / attn_k rows permuted from half-split to llama.cpp's interleaved RoPE pairs, as llama.cpp's
`convert_hf_to_gguf.py` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

from hrm_jax.export.hf_tokenizer import save_tokenizer
from hrm_jax.model.hrm_text import TRANSFORMERS_VERSION
from hrm_jax.model.transformer import Transformer, TransformerConfig

_SAVE_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def check_exportable(model) -> TransformerConfig:
    if not isinstance(model, Transformer) or not model.config.causal:
        raise ValueError("llama export needs the causal transformer baseline (model.family=transformer trained on "
                         f"code data); got {type(model).__name__}"
                         + ("" if not isinstance(model, Transformer) else " in puzzle form (causal=False)"))
    return model.config


def _np(x) -> np.ndarray:
    return np.asarray(x[...], dtype=np.float32)


def llama_state_dict(model: Transformer) -> dict[str, np.ndarray]:
    """transformers' LlamaForCausalLM tensors (fp32, [out, in]) for the causal baseline, in file order."""
    c = check_exportable(model)
    d, nh = c.hidden_size, c.num_heads * c.head_dim
    ones = np.ones((d,), np.float32)
    out = {"model.embed_tokens.weight": _np(model.embed_tokens.embedding) * np.float32(c.embedding_scale)}
    for n, layer in enumerate(model.layers.layers):
        pre = f"model.layers.{n}"
        qkv = _np(layer.self_attn.qkv_proj.kernel)  # [D, 3, N, H]
        for p, name in enumerate(("q", "k", "v")):
            out[f"{pre}.self_attn.{name}_proj.weight"] = qkv[:, p].reshape(d, nh).T
        out[f"{pre}.self_attn.o_proj.weight"] = _np(layer.self_attn.o_proj.kernel).T
        gate_up = _np(layer.mlp.gate_up_proj.kernel)  # [D, 2, I]
        out[f"{pre}.mlp.gate_proj.weight"] = gate_up[:, 0].T
        out[f"{pre}.mlp.up_proj.weight"] = gate_up[:, 1].T
        out[f"{pre}.mlp.down_proj.weight"] = _np(layer.mlp.down_proj.kernel).T
        out[f"{pre}.input_layernorm.weight"] = ones
        out[f"{pre}.post_attention_layernorm.weight"] = ones
    out["model.norm.weight"] = ones
    out["lm_head.weight"] = _np(model.lm_head.kernel).T
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def llama_config_dict(c: TransformerConfig, dtype: str = "float32") -> dict:
    """transformers 5.23.0's LlamaConfig keys for the causal baseline."""
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id, "dtype": dtype, "head_dim": c.head_dim, "hidden_act": "silu",
        "hidden_size": c.hidden_size, "initializer_range": 1.0 / c.hidden_size ** 0.5,
        "intermediate_size": c.intermediate_size, "max_position_embeddings": c.max_position_embeddings,
        "mlp_bias": False, "num_attention_heads": c.num_heads, "num_hidden_layers": c.num_layers,
        "num_key_value_heads": c.num_heads, "pretraining_tp": 1, "rms_norm_eps": c.rms_norm_eps,
        "rope_parameters": {"rope_theta": float(c.rope_theta), "rope_type": "default"},
        "tie_word_embeddings": False, "transformers_version": TRANSFORMERS_VERSION, "use_cache": True,
        "vocab_size": c.vocab_size,
    }


def _write_json(file: Path, obj: dict) -> None:
    file.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_llama_folder(model: Transformer, path: str | Path, dtype: str = "float32") -> Path:
    """config.json, generation_config.json and model.safetensors of a LlamaForCausalLM (no tokenizer)."""
    c = check_exportable(model)
    if dtype not in _SAVE_DTYPES:
        raise ValueError(f"llama export dtype must be one of {sorted(_SAVE_DTYPES)}, got {dtype!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.astype(_SAVE_DTYPES[dtype]) for k, v in llama_state_dict(model).items()}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    _write_json(path / "config.json", llama_config_dict(c, dtype))
    generation = {k: getattr(c, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                  if getattr(c, k) is not None}
    _write_json(path / "generation_config.json",
                {"_from_model_config": True, **generation, "transformers_version": TRANSFORMERS_VERSION})
    return path


def export_llama_folder(model: Transformer, tokenizer, path: str | Path, dtype: str = "float32") -> Path:
    """A complete transformers folder (weights, config, tokenizer) that AutoModelForCausalLM loads offline."""
    c = check_exportable(model)
    if c.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"model vocab_size {c.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}: "
                         "the tokenizer is not the one the model was trained with")
    path = save_llama_folder(model, path, dtype)
    save_tokenizer(tokenizer, path)
    return path


def permute_for_llama_cpp(w_OD: np.ndarray, num_heads: int) -> np.ndarray:
    """Rows of a q/k projection from half-split RoPE order (transformers) to llama.cpp's interleaved pairs:
    within each head, rows (j, j + H/2) become (2j, 2j + 1) (convert_hf_to_gguf.py's `permute`)."""
    return (w_OD.reshape(num_heads, 2, w_OD.shape[0] // num_heads // 2, *w_OD.shape[1:])
            .swapaxes(1, 2).reshape(w_OD.shape))


def gguf_tensors(model: Transformer) -> dict[str, np.ndarray]:
    """llama.cpp `llama` tensors (fp32, numpy [out, in]) in file order: 3 + 9 per layer."""
    c = check_exportable(model)
    sd = llama_state_dict(model)
    out = {"token_embd.weight": sd["model.embed_tokens.weight"]}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for n in range(c.num_layers):
        for hf_name, g_name in names.items():
            w = sd[f"model.layers.{n}.{hf_name}.weight"]
            if g_name in ("attn_q", "attn_k"):
                w = permute_for_llama_cpp(w, c.num_heads)
            out[f"blk.{n}.{g_name}.weight"] = w
    out["output_norm.weight"] = sd["model.norm.weight"]
    out["output.weight"] = sd["lm_head.weight"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
