"""The puzzle HRM for the original PyTorch code (sapientinc/HRM): a safetensors state_dict under the original's
names (`interop.params_to_torch_state_dict`, prefix `model.inner.` as in its ACTLossHead checkpoints) and a JSON
config with the original's `HierarchicalReasoningModel_ACTV1Config` field names (hrm_v1.yaml keys + batch_size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from hrm_jax import interop
from hrm_jax.model.hrm import HRM, HRMConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# HierarchicalReasoningModel_ACTV1Config's fields (models/hrm/hrm_act_v1.py), batch_size first.
ORIGINAL_FIELDS = ("batch_size", "seq_len", "puzzle_emb_ndim", "num_puzzle_identifiers", "vocab_size", "H_cycles",
                   "L_cycles", "H_layers", "L_layers", "hidden_size", "expansion", "num_heads", "pos_encodings",
                   "rms_norm_eps", "rope_theta", "halt_max_steps", "halt_exploration_prob", "forward_dtype")


def original_config(config: HRMConfig, batch_size: int) -> dict:
    """The original's config dict for `config` (our extra fields, e.g. `causal`, have no counterpart there)."""
    if config.causal:
        raise ValueError("a causal (code) HRM has no counterpart in the original sapientinc/HRM code; only "
                         "puzzle HRMs (model.hrm.causal=False) export to its format")
    values = {k: getattr(config, k) for k in ORIGINAL_FIELDS if k != "batch_size"}
    return {"batch_size": int(batch_size), **values}


def torch_state_dict(model: HRM, prefix: str = "model.inner.") -> dict[str, np.ndarray]:
    """The original's state_dict (fp32 numpy, torch [out, in] layout) of `model`."""
    params = nnx.to_pure_dict(nnx.state(model))
    sd = interop.params_to_torch_state_dict(params, model.config, prefix=prefix)
    return {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in sd.items()}


def export_torch_hrm(model: HRM, path: str | Path, *, batch_size: int, prefix: str = "model.inner.") -> Path:
    """Write `model.safetensors` and `config.json` (original field names) into the folder `path`."""
    config = original_config(model.config, batch_size)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file(torch_state_dict(model, prefix), str(path / WEIGHTS_FILE), metadata={"format": "pt"})
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path
