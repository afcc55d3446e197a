"""Read an `hrm_text` or `llama` GGUF back and check it is loadable: architecture, hyperparameters, tensor names
and shapes, data inside the file. `validate_gguf(path)` returns a summary or raises GGUFValidationError naming the
problem."""

from __future__ import annotations

import collections
import dataclasses
import os

import gguf
import numpy as np

ARCH = "hrm_text"
LLAMA_ARCH = "llama"
ARCHITECTURES = (ARCH, LLAMA_ARCH)
_LLAMA_REQUIRED_U32 = ("block_count", "context_length", "embedding_length", "feed_forward_length",
                       "attention.head_count", "attention.head_count_kv", "rope.dimension_count")
_REQUIRED_U32 = ("block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
                 "attention.head_count_kv", "attention.key_length", "hrm.layers_per_stack", "hrm.h_cycles",
                 "hrm.l_cycles")


class GGUFValidationError(ValueError):
    """A GGUF file that llama.cpp's hrm_text loader would refuse or misread; the message names file and item."""


@dataclasses.dataclass(frozen=True)
class GGUFSummary:
    path: str
    architecture: str
    tensor_count: int
    tensor_types: dict[str, int]      # GGML type name -> number of tensors
    metadata: dict[str, object]       # scalar keys (token arrays summarised by their length)
    file_size: int


def _field(reader: gguf.GGUFReader, key: str):
    field = reader.get_field(key)
    if field is None:
        return None
    value = field.contents()
    return value


def _metadata(reader: gguf.GGUFReader) -> dict[str, object]:
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        out[key] = f"<{len(value)} entries>" if isinstance(value, list) and len(value) > 16 else value
    return out


def expected_shapes(meta_get, vocab_size: int, tied: bool) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> numpy shape ([out, in]) that the hyperparameters call for."""
    d, ffn = meta_get("embedding_length"), meta_get("feed_forward_length")
    nh = meta_get("attention.head_count") * meta_get("attention.key_length")
    lps = meta_get("hrm.layers_per_stack")
    shapes = {"token_embd.weight": (vocab_size, d), "hrm.z_l_init": (d,)}
    if not tied:
        shapes["output.weight"] = (vocab_size, d)
    for b in range(2 * lps):
        for name in ("attn_gate", "attn_q", "attn_k", "attn_v"):
            shapes[f"blk.{b}.{name}.weight"] = (nh, d)
        shapes[f"blk.{b}.attn_output.weight"] = (d, nh)
        shapes[f"blk.{b}.ffn_gate.weight"] = (ffn, d)
        shapes[f"blk.{b}.ffn_up.weight"] = (ffn, d)
        shapes[f"blk.{b}.ffn_down.weight"] = (d, ffn)
    return shapes


def llama_expected_shapes(meta_get, vocab_size: int, tied: bool) -> dict[str, tuple[int, ...]]:
    """llama.cpp `llama` tensors (numpy [out, in]) for the hyperparameters; key_length defaults to d / heads."""
    d, ffn, heads = meta_get("embedding_length"), meta_get("feed_forward_length"), meta_get("attention.head_count")
    kv_heads = meta_get("attention.head_count_kv")
    head_dim = meta_get("attention.key_length", d // heads)
    shapes = {"token_embd.weight": (vocab_size, d), "output_norm.weight": (d,)}
    if not tied:
        shapes["output.weight"] = (vocab_size, d)
    for b in range(meta_get("block_count")):
        shapes |= {f"blk.{b}.attn_norm.weight": (d,), f"blk.{b}.attn_q.weight": (heads * head_dim, d),
                   f"blk.{b}.attn_k.weight": (kv_heads * head_dim, d),
                   f"blk.{b}.attn_v.weight": (kv_heads * head_dim, d),
                   f"blk.{b}.attn_output.weight": (d, heads * head_dim), f"blk.{b}.ffn_norm.weight": (d,),
                   f"blk.{b}.ffn_gate.weight": (ffn, d), f"blk.{b}.ffn_up.weight": (ffn, d),
                   f"blk.{b}.ffn_down.weight": (d, ffn)}
    return shapes


def validate_gguf(path: str | os.PathLike) -> GGUFSummary:
    """Check `path` as an hrm_text GGUF; raise GGUFValidationError (file + key/tensor + expectation) if it is not."""
    path = str(path)
    if not os.path.isfile(path):
        raise GGUFValidationError(f"{path}: no such file")
    size = os.path.getsize(path)
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # the reader raises ValueError/IndexError/struct errors on damaged headers
        raise GGUFValidationError(f"{path}: not a readable GGUF file (truncated or corrupt?): "
                                  f"{type(e).__name__}: {e}") from e
    arch = _field(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise GGUFValidationError(f"{path}: general.architecture is {arch!r}, expected one of {ARCHITECTURES}")

    def meta_get(key, default=None):
        value = _field(reader, f"{arch}.{key}")
        if value is None and default is None:
            raise GGUFValidationError(f"{path}: metadata key {arch}.{key} is missing (required by llama.cpp)")
        return int(default if value is None else value)

    if arch == LLAMA_ARCH:
        return _validate_llama(path, size, reader, meta_get)

    for key in _REQUIRED_U32:
        meta_get(key)
    for key in ("attention.layer_norm_rms_epsilon", "embedding_scale"):
        if not _field(reader, f"{ARCH}.{key}"):
            raise GGUFValidationError(f"{path}: metadata key {ARCH}.{key} is missing or 0")
    lps, h, l_cycles = meta_get("hrm.layers_per_stack"), meta_get("hrm.h_cycles"), meta_get("hrm.l_cycles")
    if meta_get("block_count") != lps * h * (l_cycles + 1):
        raise GGUFValidationError(f"{path}: {ARCH}.block_count is {meta_get('block_count')}, expected "
                                  f"layers_per_stack*h_cycles*(l_cycles+1) = {lps * h * (l_cycles + 1)}")
    if meta_get("attention.head_count_kv") != meta_get("attention.head_count"):
        raise GGUFValidationError(f"{path}: {ARCH}.attention.head_count_kv must equal attention.head_count")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if not tokens:
        raise GGUFValidationError(f"{path}: no tokenizer.ggml.tokens (the tokenizer is not embedded)")

    found = {t.name: t for t in reader.tensors}
    expected = expected_shapes(meta_get, len(tokens), tied="output.weight" not in found)
    _check_tensors(path, size, found, expected, f32_only=("hrm.z_l_init",))
    types = collections.Counter(t.tensor_type.name for t in reader.tensors)
    return GGUFSummary(path=path, architecture=arch, tensor_count=len(found), tensor_types=dict(types),
                       metadata=_metadata(reader), file_size=size)


def _validate_llama(path: str, size: int, reader: gguf.GGUFReader, meta_get) -> GGUFSummary:
    for key in _LLAMA_REQUIRED_U32:
        meta_get(key)
    if not _field(reader, f"{LLAMA_ARCH}.attention.layer_norm_rms_epsilon"):
        raise GGUFValidationError(f"{path}: metadata key {LLAMA_ARCH}.attention.layer_norm_rms_epsilon is missing or 0")
    heads, kv_heads = meta_get("attention.head_count"), meta_get("attention.head_count_kv")
    if heads % kv_heads:
        raise GGUFValidationError(f"{path}: {LLAMA_ARCH}.attention.head_count {heads} is not a multiple of "
                                  f"head_count_kv {kv_heads}")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if not tokens:
        raise GGUFValidationError(f"{path}: no tokenizer.ggml.tokens (the tokenizer is not embedded)")
    found = {t.name: t for t in reader.tensors}
    expected = llama_expected_shapes(meta_get, len(tokens), tied="output.weight" not in found)
    _check_tensors(path, size, found, expected, f32_only=())
    types = collections.Counter(t.tensor_type.name for t in reader.tensors)
    return GGUFSummary(path=path, architecture=LLAMA_ARCH, tensor_count=len(found), tensor_types=dict(types),
                       metadata=_metadata(reader), file_size=size)


def _check_tensors(path: str, size: int, found: dict, expected: dict, f32_only: tuple[str, ...]) -> None:
    missing = [n for n in expected if n not in found]
    if missing:
        raise GGUFValidationError(f"{path}: {len(missing)} tensor(s) missing: {', '.join(missing[:8])}"
                                  f" (expected {len(expected)} tensors)")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise GGUFValidationError(f"{path}: unexpected tensor(s) {', '.join(extra[:8])}; llama.cpp refuses "
                                  "files with extra tensors")
    for name, shape in expected.items():
        t = found[name]
        got = tuple(int(x) for x in reversed(t.shape.tolist()))
        if got != shape:
            raise GGUFValidationError(f"{path}: tensor {name} has shape {got} (numpy order), expected {shape}")
        if t.data_offset + t.n_bytes > size:
            raise GGUFValidationError(f"{path}: tensor {name} data ends at byte {t.data_offset + t.n_bytes}, "
                                      f"past the end of the file ({size} bytes): truncated")
        if name in f32_only and t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise GGUFValidationError(f"{path}: tensor {name} is {t.tensor_type.name}, expected F32")


def read_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a GGUF as fp32 numpy ([out, in] order), quantized ones dequantized."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        data = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        out[t.name] = np.asarray(data, dtype=np.float32).reshape(shape)
    return out
