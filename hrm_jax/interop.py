"""The original HRM's PyTorch state_dict <-> our parameters, both ways, over numpy arrays.

Keys are the original's (`models/hrm/hrm_act_v1.py`), with any of the prefixes `_orig_mod.` (torch.compile),
`model.` (ACTLossHead) and `inner.` (the ACT wrapper) in front. Every CastedLinear weight is (out, in); ours are
(in, *out_shape), so kernels are transposed and the fused projections reshaped:
  qkv_proj (3*N*H, D) -> (D, 3, N, H);  gate_up_proj (2*I, D) -> (D, 2, I);  o_proj (D, N*H) -> (N*H, D).
`H_init`, `L_init` (buffers) and `puzzle_emb.weights` (the sparse table) travel too; the rotary tables and the
puzzle embedding's transient local buffers are not in a state_dict.

Parameters are the nested pure dict of `nnx.state(model)` (`State.to_pure_dict()`); `load_torch_state_dict`
puts a state_dict into a model.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from flax import nnx

from hrm_jax.model.hrm import HRM, HRMConfig
from hrm_jax.model.layers import swiglu_intermediate_size

KNOWN_PREFIXES = ("_orig_mod.", "model.", "inner.")


def _layouts(config: HRMConfig) -> dict[str, tuple[tuple, tuple[int, ...]]]:
    """torch key -> (our path, our shape). The torch shape follows from the transform."""
    d, n, h = config.hidden_size, config.num_heads, config.head_dim
    inter = swiglu_intermediate_size(d, config.expansion)
    out = {
        "embed_tokens.embedding_weight": (("embed_tokens", "embedding"), (config.vocab_size, d)),
        "lm_head.weight": (("lm_head", "kernel"), (d, config.vocab_size)),
        "q_head.weight": (("q_head", "kernel"), (d, 2)),
        "q_head.bias": (("q_head", "bias"), (2,)),
        "H_init": (("H_init",), (d,)),
        "L_init": (("L_init",), (d,)),
    }
    if config.pos_encodings == "learned":
        out["embed_pos.embedding_weight"] = (("embed_pos", "embedding"), (config.total_len, d))
    if config.puzzle_emb_ndim > 0:
        out["puzzle_emb.weights"] = (("puzzle_emb",), (config.num_puzzle_identifiers, config.puzzle_emb_ndim))
    for level, count in (("H_level", config.H_layers), ("L_level", config.L_layers)):
        for i in range(count):
            t, p = f"{level}.layers.{i}.", (level, "layers", i)
            out[t + "self_attn.qkv_proj.weight"] = (p + ("self_attn", "qkv_proj", "kernel"), (d, 3, n, h))
            out[t + "self_attn.o_proj.weight"] = (p + ("self_attn", "o_proj", "kernel"), (n * h, d))
            out[t + "mlp.gate_up_proj.weight"] = (p + ("mlp", "gate_up_proj", "kernel"), (d, 2, inter))
            out[t + "mlp.down_proj.weight"] = (p + ("mlp", "down_proj", "kernel"), (inter, d))
    return out


def _is_transposed(key: str) -> bool:
    return key.endswith(".weight") and not key.endswith("embedding_weight")


def to_torch_layout(key: str, ours: np.ndarray) -> np.ndarray:
    return ours.reshape(ours.shape[0], -1).T if _is_transposed(key) else ours


def from_torch_layout(key: str, theirs: np.ndarray, our_shape: tuple[int, ...]) -> np.ndarray:
    return theirs.T.reshape(our_shape) if _is_transposed(key) else theirs.reshape(our_shape)


def strip_prefix(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in KNOWN_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def torch_state_dict_to_params(state_dict: Mapping[str, np.ndarray], config: HRMConfig) -> dict:
    """A nested pure dict of every variable of `HRM(config)` from an original state_dict (numpy values)."""
    layouts = _layouts(config)
    stripped = {strip_prefix(k): k for k in state_dict}
    missing = sorted(set(layouts) - set(stripped))
    extra = sorted(set(stripped) - set(layouts))
    if missing or extra:
        raise KeyError(f"state_dict does not match the config: missing {missing}, unexpected {extra}")
    params: dict = {}
    for key, (path, shape) in layouts.items():
        value = np.asarray(state_dict[stripped[key]])
        expected = to_torch_layout(key, np.empty(shape, np.int8)).shape
        if value.shape != expected:
            raise ValueError(f"{stripped[key]}: shape {value.shape} disagrees with the config, expected {expected}")
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = from_torch_layout(key, value, shape)
    return params


def params_to_torch_state_dict(params: Mapping, config: HRMConfig, prefix: str = "model.inner.") -> dict:
    """The original's state_dict (numpy arrays in our dtypes, ml_dtypes ones as float32) from a pure dict of
    `nnx.state(model)`."""
    out = {}
    for key, (path, shape) in _layouts(config).items():
        node = params
        for part in path:
            if part not in node:
                raise KeyError(f"params lack {'/'.join(map(str, path))} (torch key {key})")
            node = node[part]
        value = np.asarray(node)
        if value.shape != shape:
            raise ValueError(f"{'/'.join(map(str, path))}: shape {value.shape}, expected {shape}")
        out[prefix + key] = _torch_loadable(to_torch_layout(key, value))
    return out


def _torch_loadable(value: np.ndarray) -> np.ndarray:
    """torch.from_numpy takes numpy's own dtypes only: ml_dtypes values (bf16 H_init / L_init of a bf16 config)
    become float32, which holds every one of them exactly; load_state_dict casts back into the buffer's dtype."""
    return value.astype(np.float32) if np.dtype(value.dtype).type.__module__ == "ml_dtypes" else value


def load_torch_state_dict(model: HRM, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy an original state_dict into `model` in place, casting to each variable's dtype."""
    state = nnx.state(model)
    pure = torch_state_dict_to_params(state_dict, model.config)
    current = state.to_pure_dict()

    def cast(new, old):
        return np.asarray(new).astype(old.dtype)

    nnx.replace_by_pure_dict(state, jax.tree.map(cast, pure, current))
    nnx.update(model, state)
