"""The puzzle TRM for the original PyTorch code (SamsungSAILMontreal/TinyRecursiveModels): a safetensors state_dict
under the original's names (`interop.params_to_torch_state_dict`, prefix `model.inner.` as in its ACTLossHead
checkpoints) and a JSON config with the original's `TinyRecursiveReasoningModel_ACTV1Config` field names (plus
`batch_size`), so that `TinyRecursiveReasoningModel_ACTV1(config)` loads it with `load_state_dict(strict=True)`.
No runtime (transformers, llama.cpp) has an architecture for TRM; this is its export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from hrm_jax import interop
from hrm_jax.model.trm import TRM, TRMConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# TinyRecursiveReasoningModel_ACTV1Config's fields (models/recursive_reasoning/trm.py), batch_size first.
ORIGINAL_FIELDS = ("batch_size", "seq_len", "puzzle_emb_ndim", "num_puzzle_identifiers", "vocab_size", "H_cycles",
                   "L_cycles", "H_layers", "L_layers", "hidden_size", "expansion", "num_heads", "pos_encodings",
                   "rms_norm_eps", "rope_theta", "halt_max_steps", "halt_exploration_prob", "forward_dtype", "mlp_t",
                   "puzzle_emb_len", "no_ACT_continue")


def original_config(config: TRMConfig, batch_size: int) -> dict:
    """The original's config dict (H_layers 0: ignored there; puzzle_emb_len as resolved here, so the original
    builds the same number of puzzle positions)."""
    if config.causal:
        raise ValueError("a causal (code) TRM has no counterpart in the original TinyRecursiveModels code; only "
                         "puzzle TRMs (model.trm.causal=False) export to its format")
    if not config.no_ACT_continue:
        raise ValueError("no_ACT_continue=False cannot be exported: the original's code for it fails (trm.py "
                         "unpacks 5 values from a 3-tuple)")
    values = {k: getattr(config, k) for k in ORIGINAL_FIELDS if k not in ("batch_size", "H_layers")}
    return {"batch_size": int(batch_size), "H_layers": 0, **values}


def torch_state_dict(model: TRM, prefix: str = "model.inner.") -> dict[str, np.ndarray]:
    """The original's state_dict (fp32 numpy, torch [out, in] layout) of `model`."""
    params = nnx.to_pure_dict(nnx.state(model))
    sd = interop.params_to_torch_state_dict(params, model.config, prefix=prefix)
    return {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in sd.items()}


def export_torch_trm(model: TRM, path: str | Path, *, batch_size: int, prefix: str = "model.inner.") -> Path:
    """Write `model.safetensors` and `config.json` (original field names) into the folder `path`."""
    config = original_config(model.config, batch_size)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file(torch_state_dict(model, prefix), str(path / WEIGHTS_FILE), metadata={"format": "pt"})
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path
