"""HRM-Text -> GGUF for llama.cpp's `hrm_text` architecture (HRM_TEXT_REFERENCE.md section 7), tokenizer embedded;
the causal transformer baseline -> llama.cpp's `llama` architecture (tensors from `hrm_jax.export.llama`).

Tensors (numpy [out, in], as ggml stores PyTorch's layout; GGUF `ne` is the reverse), `3 + 8 * 2 * lps` of them:

    token_embd.weight [V, d]   output.weight [V, d] (absent when tied)   hrm.z_l_init [d] (always F32)
    blk.{b}.attn_gate / attn_q / attn_k / attn_v .weight [n_h*h_d, d]   (the four quarters of gqkv_proj)
    blk.{b}.attn_output.weight [d, n_h*h_d]   blk.{b}.ffn_gate / ffn_up .weight [I, d]   blk.{b}.ffn_down.weight [d, I]

with b = i for L-stack layer i and b = lps + i for H-stack layer i. `quant` (f32, f16, q8_0, q4_0) applies to every
2-D tensor, embeddings included, as llama.cpp's converter does; a tensor whose rows are not a whole number of
quant blocks falls back to F16, as the converter does too. The SentencePiece tokenizer is written as llama.cpp's
"llama" (SPM) vocabulary: pieces, scores and piece types, no bos added, no space prefix.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from hrm_jax import hf
from hrm_jax.export import llama
from hrm_jax.export.hf_tokenizer import sp_pieces
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig
from hrm_jax.model.transformer import Transformer, TransformerConfig
from input_pipeline.tokenizer import SentencePieceTokenizer

ARCH = "hrm_text"
LLAMA_ARCH = "llama"
QT = gguf.GGMLQuantizationType
QUANTS = {"f32": (QT.F32, gguf.LlamaFileType.ALL_F32), "f16": (QT.F16, gguf.LlamaFileType.MOSTLY_F16),
          "q8_0": (QT.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0), "q4_0": (QT.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0)}
_ATTN = ("attn_gate", "attn_q", "attn_k", "attn_v")


def gguf_tensors(model: HrmText) -> dict[str, np.ndarray]:
    """The fp32 tensors of `model` under their GGUF names, numpy [out, in] layout, in file order."""
    config = model.config
    sd = hf.state_dict(model)
    lps = config.num_layers_per_stack
    nh, i_size = config.num_attention_heads * config.head_dim, config.intermediate_size
    out = {"token_embd.weight": sd["model.embed_tokens.weight"]}
    if not config.tie_word_embeddings:
        out["output.weight"] = sd["lm_head.weight"]
    out["hrm.z_l_init"] = sd["model.z_L_init"]
    for base, stack in ((0, "L_module"), (lps, "H_module")):
        for i in range(lps):
            pre, b = f"model.{stack}.layers.{i}", base + i
            gqkv = sd[f"{pre}.attn.gqkv_proj.weight"]
            for q, name in enumerate(_ATTN):
                out[f"blk.{b}.{name}.weight"] = gqkv[q * nh:(q + 1) * nh]
            out[f"blk.{b}.attn_output.weight"] = sd[f"{pre}.attn.o_proj.weight"]
            gate_up = sd[f"{pre}.mlp.gate_up_proj.weight"]
            out[f"blk.{b}.ffn_gate.weight"] = gate_up[:i_size]
            out[f"blk.{b}.ffn_up.weight"] = gate_up[i_size:]
            out[f"blk.{b}.ffn_down.weight"] = sd[f"{pre}.mlp.down_proj.weight"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def tensor_type(array: np.ndarray, quant: str) -> QT:
    """The GGML type a tensor is stored as: F32 for 1-D tensors; else `quant`, or F16 where rows do not fill
    whole quant blocks."""
    qtype = _quant(quant)[0]
    if array.ndim < 2:
        return QT.F32
    if qtype in (QT.Q8_0, QT.Q4_0) and array.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        return QT.F16
    return qtype


def _quant(quant: str):
    try:
        return QUANTS[quant.lower()]
    except KeyError:
        raise ValueError(f"GGUF quant {quant!r} is not one of {sorted(QUANTS)}") from None


def _add_hparams(w: gguf.GGUFWriter, config: HrmTextConfig, file_type) -> None:
    w.add_file_type(int(file_type))
    w.add_uint32(f"{ARCH}.block_count", config.num_hidden_layers)  # slots lps*H*(L+1), not 2*lps
    w.add_uint32(f"{ARCH}.context_length", config.max_position_embeddings)
    w.add_uint32(f"{ARCH}.embedding_length", config.hidden_size)
    w.add_uint32(f"{ARCH}.feed_forward_length", config.intermediate_size)
    w.add_uint32(f"{ARCH}.attention.head_count", config.num_attention_heads)
    w.add_uint32(f"{ARCH}.attention.head_count_kv", config.num_attention_heads)
    w.add_uint32(f"{ARCH}.attention.key_length", config.head_dim)
    w.add_uint32(f"{ARCH}.attention.value_length", config.head_dim)
    w.add_uint32(f"{ARCH}.rope.dimension_count", config.head_dim)
    w.add_float32(f"{ARCH}.rope.freq_base", float(config.rope_theta))
    w.add_float32(f"{ARCH}.attention.layer_norm_rms_epsilon", float(config.rms_norm_eps))
    w.add_float32(f"{ARCH}.embedding_scale", float(config.embedding_scale))
    w.add_uint32(f"{ARCH}.hrm.layers_per_stack", config.num_layers_per_stack)
    w.add_uint32(f"{ARCH}.hrm.h_cycles", config.H_cycles)
    w.add_uint32(f"{ARCH}.hrm.l_cycles", config.L_cycles)
    w.add_bool(f"{ARCH}.hrm.prefix_lm", bool(config.prefix_lm))


def _add_llama_hparams(w: gguf.GGUFWriter, c: TransformerConfig, file_type) -> None:
    arch = LLAMA_ARCH
    w.add_file_type(int(file_type))
    w.add_uint32(f"{arch}.vocab_size", c.vocab_size)
    w.add_uint32(f"{arch}.block_count", c.num_layers)
    w.add_uint32(f"{arch}.context_length", c.max_position_embeddings)
    w.add_uint32(f"{arch}.embedding_length", c.hidden_size)
    w.add_uint32(f"{arch}.feed_forward_length", c.intermediate_size)
    w.add_uint32(f"{arch}.attention.head_count", c.num_heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", c.num_heads)
    w.add_uint32(f"{arch}.attention.key_length", c.head_dim)
    w.add_uint32(f"{arch}.attention.value_length", c.head_dim)
    w.add_uint32(f"{arch}.rope.dimension_count", c.head_dim)
    w.add_float32(f"{arch}.rope.freq_base", float(c.rope_theta))
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", float(c.rms_norm_eps))


def _add_tokenizer(w: gguf.GGUFWriter, tokenizer: SentencePieceTokenizer) -> None:
    pieces = sp_pieces(tokenizer)
    w.add_tokenizer_model("llama")
    w.add_token_list([p.text.encode("utf-8") for p in pieces])
    w.add_token_scores([float(p.score) for p in pieces])
    w.add_token_types([int(p.type) for p in pieces])  # SentencePiece's piece types are llama.cpp's token types
    w.add_bos_token_id(tokenizer.bos_id)
    w.add_eos_token_id(tokenizer.eos_id)
    w.add_pad_token_id(tokenizer.pad_id)
    w.add_unk_token_id(tokenizer.unk_id)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)


def write_gguf(model: HrmText | Transformer, tokenizer: SentencePieceTokenizer, path: str | Path, quant: str = "f16",
               *, prefix_lm: bool | None = None, name: str = "hrm-jax") -> Path:
    """Write `model` with `tokenizer` embedded to the GGUF file `path`, weights as `quant` (f32|f16|q8_0|q4_0):
    HRM-Text as `hrm_text`, the causal transformer baseline as `llama`. `prefix_lm` (HRM-Text only) overrides the
    config's flag in the file (write False for causal-parity checks; section 7.4)."""
    config = model.config
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"model vocab_size {config.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}: "
                         "the tokenizer is not the one the model was trained with")
    qtype, file_type = _quant(quant)
    if isinstance(model, Transformer):
        llama.check_exportable(model)
        arch, tensors = LLAMA_ARCH, llama.gguf_tensors(model)
        add_hparams = lambda w: _add_llama_hparams(w, config, file_type)  # noqa: E731
    else:
        if prefix_lm is not None:
            config = config.replace(prefix_lm=prefix_lm)
        arch, tensors = ARCH, gguf_tensors(model)
        add_hparams = lambda w: _add_hparams(w, config, file_type)  # noqa: E731
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch)
    try:
        w.add_name(name)
        add_hparams(w)
        _add_tokenizer(w, tokenizer)
        for tname, array in tensors.items():
            ttype = tensor_type(array, quant)
            if ttype == QT.F32:
                w.add_tensor(tname, array)
            elif ttype == QT.F16:
                w.add_tensor(tname, array.astype(np.float16))
            else:
                w.add_tensor(tname, gguf.quants.quantize(array, ttype), raw_dtype=ttype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()
    return path
