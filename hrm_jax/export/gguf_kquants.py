"""K-quants (Q2_K ... Q6_K) through llama.cpp's own quantizer, from an F32 GGUF written by `gguf_writer`.

The gguf package writes F32/F16/Q8_0/Q4_0 itself; the K-quant mixes (which tensors get which type, importance
weighting) belong to llama.cpp, so they are made by `llama_model_quantize` from llama-cpp-python (optional:
`pip install llama-cpp-python`, which compiles llama.cpp). A matrix whose rows are not a multiple of 256 wide
cannot take a K type; llama.cpp then writes a legacy type for it, and `quantize` says so (`report_fallbacks`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from absl import logging

K_QUANTS = ("q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k")
K_TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K")
SUPER_BLOCK = 256  # a K-quant row must be a multiple of this many values; llama.cpp falls back otherwise


def fallback_tensors(path: str | Path) -> dict[str, str]:
    """Matrices of the GGUF at `path` that a K-quant request left in a non-K type (llama.cpp falls back to
    Q4_0 / Q5_0 / Q5_1 / Q8_0 / F16 when a row's width is not a multiple of 256): name -> type. Vectors (norms,
    z_L_init) are F32 in every mix and are not counted."""
    import gguf  # noqa: PLC0415

    reader = gguf.GGUFReader(str(path))
    return {t.name: t.tensor_type.name for t in reader.tensors
            if len(t.shape) >= 2 and t.tensor_type.name not in K_TYPES}


def report_fallbacks(path: str | Path, quant: str) -> dict[str, str]:
    """Warn, in one line, when tensors of a `quant` GGUF are not K-quantized, and return them (name -> type)."""
    fallen = fallback_tensors(path)
    if fallen:
        kinds = sorted(set(fallen.values()))
        logging.warning("GGUF %s: %d matrices are not %s but %s (row widths not a multiple of %d), e.g. %s",
                        path, len(fallen), quant, "/".join(kinds), SUPER_BLOCK, ", ".join(sorted(fallen)[:3]))
    return fallen


def quantize(src: str | Path, dst: str | Path, quant: str, threads: int = 2) -> Path:
    """Quantize the GGUF `src` to `dst` as `quant` (one of K_QUANTS) with llama.cpp's quantizer."""
    quant = quant.lower()
    if quant not in K_QUANTS:
        raise ValueError(f"K-quant {quant!r} is not one of {K_QUANTS}")
    try:
        import llama_cpp  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(f"GGUF {quant} uses llama.cpp's quantizer: pip install llama-cpp-python "
                          "(compiles llama.cpp, 10-25 minutes on 2 cores)") from e
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")
    params.nthread = threads
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama.cpp could not quantize {src} to {quant} (return code {rc})")
    report_fallbacks(dst, quant)
    return dst
