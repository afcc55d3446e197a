"""K-quants (Q2_K ... Q6_K) through llama.cpp's own quantizer, from an F32 GGUF written by `gguf_writer`.

The gguf package writes F32/F16/Q8_0/Q4_0 itself; the K-quant mixes (which tensors get which type, importance
weighting) belong to llama.cpp, so they are made by `llama_model_quantize` from llama-cpp-python (optional:
`pip install llama-cpp-python`, which compiles llama.cpp).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

K_QUANTS = ("q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k")


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
    return dst
