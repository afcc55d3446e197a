"""A complete transformers folder for an HRM-Text model: weights and config (`hf.save_pretrained`) plus our
tokenizer (`hf_tokenizer`), so `AutoTokenizer` and `AutoModelForCausalLM.from_pretrained(folder)` load it offline.
The causal transformer baseline is written as a `LlamaForCausalLM` folder (`hrm_jax.export.llama`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm_jax import hf
from hrm_jax.export import llama
from hrm_jax.export.hf_tokenizer import save_tokenizer
from hrm_jax.model.hrm_text import HrmText
from hrm_jax.model.transformer import Transformer
from input_pipeline.tokenizer import SentencePieceTokenizer


def check_tokenizer_fits(model: HrmText, tokenizer: SentencePieceTokenizer) -> None:
    """Raise ValueError unless the model's vocabulary and special ids are the tokenizer's."""
    config = model.config
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"model vocab_size {config.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}: "
                         "the tokenizer is not the one the model was trained with")
    for key, tok_id in (("pad_token_id", tokenizer.pad_id), ("bos_token_id", tokenizer.bos_id),
                        ("eos_token_id", tokenizer.eos_id)):
        value = getattr(config, key)
        if value is not None and value != tok_id:
            raise ValueError(f"model config {key}={value} but the tokenizer's id is {tok_id}")


def export_hf_folder(model: HrmText | Transformer, tokenizer: SentencePieceTokenizer, path: str | Path,
                     dtype=None) -> Path:
    """Write config.json, generation_config.json, model.safetensors (float32, or `dtype`), tokenizer.json,
    tokenizer_config.json, special_tokens_map.json and tokenizer.model into `path`. Returns `path`."""
    check_tokenizer_fits(model, tokenizer)
    if isinstance(model, Transformer):
        return llama.export_llama_folder(model, tokenizer, path,
                                         dtype="float32" if dtype is None else np.dtype(dtype).name)
    path = hf.save_pretrained(model, path, dtype=dtype)
    save_tokenizer(tokenizer, path)
    return path
