"""Hugging Face HRM-Text folders in and out: `from_pretrained(path) -> HrmText`, `save_pretrained(model, path)`.

On disk (HRM_TEXT_REFERENCE.md section 6): `config.json` (transformers 5.23.0 keys), `generation_config.json`, and
`model.safetensors` (or shards + `model.safetensors.index.json`) in Sapient's fused layout, weights [out, in]:

    model.embed_tokens.weight [V, D]        lm_head.weight [V, D] (absent when tied)     model.z_L_init [D]
    model.{L,H}_module.layers.{i}.attn.gqkv_proj.weight     [4*N*Hd, D]   rows gate | q | k | v
    model.{L,H}_module.layers.{i}.attn.o_proj.weight        [D, N*Hd]
    model.{L,H}_module.layers.{i}.mlp.gate_up_proj.weight   [2*I, D]      rows gate | up
    model.{L,H}_module.layers.{i}.mlp.down_proj.weight      [D, I]

Loading also accepts transformers' in-memory split names (`self_attn.{gate,q,k,v,o}_proj`, `mlp.{gate,up}_proj`).
Tensors are read one at a time (safetensors `safe_open`); shapes are checked against config.json before reading.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Iterable, Mapping

import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import nnx
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from hrm_jax.model.hrm_text import TRANSFORMERS_VERSION, HrmText, HrmTextConfig

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# Derived on the fly by transformers, never needed, harmless if an old checkpoint carries it.
IGNORED_SUFFIXES = (".rotary_emb.inv_freq", ".rotary_emb.original_inv_freq")
_SAVE_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


class CheckpointError(ValueError):
    """A Hugging Face folder that does not hold the HRM-Text its config.json describes."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One on-disk tensor: its name and [out, in] shape, where it lives in the model, and the layout maps."""

    name: str
    shape: tuple[int, ...]
    path: tuple[str | int, ...]
    to_param: Callable[[np.ndarray], np.ndarray]  # on-disk layout -> model layout
    to_disk: Callable[[np.ndarray], np.ndarray]   # model layout -> on-disk layout
    split_names: tuple[str, ...] = ()              # transformers' split names whose row-concatenation is `name`


def tensor_specs(config: HrmTextConfig) -> list[TensorSpec]:
    """Every tensor of the fused on-disk format for `config`, in a stable order."""
    d, n, hd, i, v = (config.hidden_size, config.num_attention_heads, config.head_dim, config.intermediate_size,
                      config.vocab_size)
    nh = n * hd
    ident = lambda w: w  # noqa: E731
    transpose = lambda w: w.T  # noqa: E731
    specs = [TensorSpec("model.embed_tokens.weight", (v, d), ("embed_tokens", "embedding"), ident, ident)]
    if not config.tie_word_embeddings:
        specs.append(TensorSpec("lm_head.weight", (v, d), ("lm_head", "kernel"), transpose, transpose))
    specs.append(TensorSpec("model.z_L_init", (d,), ("z_L_init",), ident, ident))
    for stack in ("L_module", "H_module"):
        for layer in range(config.num_layers_per_stack):
            pre, path = f"model.{stack}.layers.{layer}", (stack, "layers", layer)
            specs += [
                TensorSpec(f"{pre}.attn.gqkv_proj.weight", (4 * nh, d), path + ("self_attn", "qkv_proj", "kernel"),
                           lambda w: w.reshape(4, n, hd, d).transpose(3, 0, 1, 2),
                           lambda k: k.transpose(1, 2, 3, 0).reshape(4 * nh, d),
                           tuple(f"{pre}.self_attn.{p}_proj.weight" for p in ("gate", "q", "k", "v"))),
                TensorSpec(f"{pre}.attn.o_proj.weight", (d, nh), path + ("self_attn", "o_proj", "kernel"),
                           transpose, transpose, (f"{pre}.self_attn.o_proj.weight",)),
                TensorSpec(f"{pre}.mlp.gate_up_proj.weight", (2 * i, d), path + ("mlp", "gate_up_proj", "kernel"),
                           lambda w: w.reshape(2, i, d).transpose(2, 0, 1),
                           lambda k: k.transpose(1, 2, 0).reshape(2 * i, d),
                           (f"{pre}.mlp.gate_proj.weight", f"{pre}.mlp.up_proj.weight")),
                TensorSpec(f"{pre}.mlp.down_proj.weight", (d, i), path + ("mlp", "down_proj", "kernel"),
                           transpose, transpose),
            ]
    return specs


def _lookup(tree, path):
    for key in path:
        tree = tree[key] if isinstance(key, int) or isinstance(tree, Mapping) else getattr(tree, key)
    return tree


def _value(leaf) -> np.ndarray:
    return np.asarray(leaf[...] if isinstance(leaf, nnx.Variable) else leaf, dtype=np.float32)


def state_dict(tree: HrmText | nnx.State, config: HrmTextConfig | None = None) -> dict[str, np.ndarray]:
    """fp32 numpy tensors in the fused on-disk layout, from a model or from an `nnx.State` of the same structure
    (parameters, or their gradients: `config` is then required; entries absent from the state are skipped)."""
    if config is None:
        if not isinstance(tree, HrmText):
            raise TypeError("state_dict(state, config): pass the HrmTextConfig along with an nnx.State")
        config = tree.config
    out = {}
    for spec in tensor_specs(config):
        try:
            leaf = _lookup(tree, spec.path)
        except (KeyError, AttributeError, IndexError):
            if isinstance(tree, HrmText):
                raise
            continue
        out[spec.name] = np.ascontiguousarray(spec.to_disk(_value(leaf)))
    return out


# ----- reading ---------------------------------------------------------------------------------------------------
class _Source:
    """Names, shapes and lazy reads over safetensors files (or an in-memory mapping), with a file per name."""

    def __init__(self):
        self._where: dict[str, str] = {}
        self._shape: dict[str, tuple[int, ...]] = {}
        self._read: dict[str, Callable[[], np.ndarray]] = {}

    @classmethod
    def from_files(cls, files: Iterable[Path]) -> "_Source":
        """Headers are read here; each tensor is read by a `safe_open` of its own that is closed straight after,
        so the file's memory map (whose touched pages count in the process's RSS) never covers more than the one
        tensor being loaded: holding every file open would add the whole checkpoint to peak RSS."""
        src = cls()
        for file in files:
            try:
                with safe_open(str(file), framework="np") as handle:
                    for name in handle.keys():
                        src._shape[name] = tuple(handle.get_slice(name).get_shape())
                        src._where[name] = str(file)
                        src._read[name] = (lambda f, k: lambda: _read_one(f, k))(str(file), name)
            except (SafetensorError, OSError) as e:
                raise CheckpointError(f"{file}: not a readable safetensors file (truncated or corrupt?): {e}") from e
        return src

    @classmethod
    def from_mapping(cls, tensors: Mapping[str, object], where: str = "state dict") -> "_Source":
        src = cls()
        for name, t in tensors.items():
            src._shape[name] = tuple(t.shape)
            src._where[name] = where
            src._read[name] = (lambda x: lambda: _to_numpy(x))(t)
        return src

    def names(self) -> set[str]:
        return set(self._shape)

    def shape(self, name):
        return self._shape[name]

    def where(self, name):
        return self._where[name]

    def read(self, name) -> np.ndarray:
        try:
            arr = self._read[name]()
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{self._where[name]}: cannot read tensor {name}: {e}") from e
        if not np.issubdtype(arr.dtype, np.floating) and arr.dtype != ml_dtypes.bfloat16:
            raise CheckpointError(f"{self._where[name]}: tensor {name} has dtype {arr.dtype}, expected a float type")
        return np.asarray(arr, dtype=np.float32)


def _read_one(file: str, name: str) -> np.ndarray:
    with safe_open(file, framework="np") as handle:
        return handle.get_tensor(name)


def _to_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):  # a torch tensor, without importing torch
        t = t.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            return t.float().numpy()
        return t.numpy()
    return np.asarray(t)


def _config_summary(config: HrmTextConfig) -> str:
    return (f"vocab_size={config.vocab_size}, hidden_size={config.hidden_size}, "
            f"intermediate_size={config.intermediate_size}, num_attention_heads={config.num_attention_heads}, "
            f"head_dim={config.head_dim}, num_layers_per_stack={config.num_layers_per_stack}, "
            f"tie_word_embeddings={config.tie_word_embeddings}")


def _load(model: HrmText, src: _Source, where: str, param_dtype=jnp.float32) -> None:
    config = model.config
    available = src.names()
    consumed: set[str] = set()
    plan: list[tuple[TensorSpec, tuple[str, ...]]] = []
    missing: list[str] = []
    for spec in tensor_specs(config):
        if spec.name in available:
            parts = (spec.name,)
        elif spec.split_names and all(n in available for n in spec.split_names):
            parts = spec.split_names
        else:
            missing.append(f"{spec.name} {spec.shape}" + (f" (or {', '.join(spec.split_names)})"
                                                          if spec.split_names else ""))
            continue
        if spec.split_names and parts == (spec.name,) and any(n in available for n in spec.split_names):
            raise CheckpointError(f"{where}: both {spec.name} and its split form {spec.split_names} are present")
        n_parts = len(parts)
        for part in parts:
            expected = (spec.shape[0] // n_parts, *spec.shape[1:])
            if src.shape(part) != expected:
                raise CheckpointError(f"{src.where(part)}: tensor {part} has shape {src.shape(part)}, expected "
                                      f"{expected} from config.json ({_config_summary(config)})")
        plan.append((spec, parts))
        consumed.update(parts)
    if config.tie_word_embeddings and "lm_head.weight" in available:
        consumed.add("lm_head.weight")  # transformers ties it to the embedding and ignores the stored copy
    if missing:
        raise CheckpointError(f"{where}: {len(missing)} tensor(s) missing for the config "
                              f"({_config_summary(config)}): {'; '.join(missing[:8])}"
                              + (" ..." if len(missing) > 8 else ""))
    extra = sorted(n for n in available - consumed if not n.endswith(IGNORED_SUFFIXES))
    if extra:
        raise CheckpointError(f"{where}: {len(extra)} unexpected tensor(s) not in HRM-Text with "
                              f"{_config_summary(config)}: {', '.join(extra[:8])}" + (" ..." if len(extra) > 8 else "")
                              + ". (A config.json whose num_hidden_layers counts both stacks, as Sapient's exporter "
                              "writes, needs num_hidden_layers = blocks per stack.)")
    for spec, parts in plan:  # one tensor in memory at a time
        arr = src.read(parts[0]) if len(parts) == 1 else np.concatenate([src.read(p) for p in parts], axis=0)
        _lookup(model, spec.path).set_value(jnp.asarray(spec.to_param(arr), dtype=param_dtype))


def load_state_dict(model: HrmText, tensors: Mapping[str, object]) -> HrmText:
    """Copy an in-memory state dict (fused on-disk names or transformers' split names; numpy or torch tensors)
    into `model`, checking names and shapes against its config. Returns the model."""
    _load(model, _Source.from_mapping(tensors), "state dict")
    return model


def read_config(path: str | Path) -> HrmTextConfig:
    file = Path(path) / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{path}: no config.json (not a Hugging Face model folder)")
    try:
        d = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file}: not valid JSON: {e}") from e
    try:
        return HrmTextConfig.from_hf_dict(d, source=str(file))
    except ValueError as e:
        raise CheckpointError(str(e)) from e


def _weight_files(path: Path) -> list[Path]:
    if (path / SAFETENSORS_FILE).is_file():
        return [path / SAFETENSORS_FILE]
    index = path / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"{index}: not a safetensors index (expected a 'weight_map' object): {e}") from e
        files = [path / f for f in sorted(set(weight_map.values()))]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise CheckpointError(f"{index}: lists shard(s) that do not exist: {', '.join(absent)}")
        return files
    present = sorted(p.name for p in path.iterdir())
    raise CheckpointError(f"{path}: no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX} (found: {present})")


def from_pretrained(path: str | Path, dtype=jnp.float32, param_dtype=jnp.float32, **model_kwargs) -> HrmText:
    """An `HrmText` (compute `dtype`) from a Hugging Face HRM-Text folder. Parameters are stored as
    `param_dtype`: fp32 for training (the default), or bf16 for inference from a bf16 checkpoint, which halves
    the memory and computes the same (weights are cast to `dtype` at use either way). `model_kwargs` go to
    `HrmText` (e.g. attention_impl). Raises CheckpointError naming the file/tensor that disagrees."""
    path = Path(path)
    config = read_config(path)
    model = nnx.eval_shape(lambda: HrmText(config, dtype=dtype, rngs=nnx.Rngs(0), **model_kwargs))
    _load(model, _Source.from_files(_weight_files(path)), str(path), param_dtype=param_dtype)
    return model


# ----- writing ---------------------------------------------------------------------------------------------------
def _save_dtype(dtype) -> tuple[str, type]:
    name = "float32" if dtype is None else jnp.dtype(dtype).name
    if name not in _SAVE_DTYPES:
        raise ValueError(f"save_pretrained dtype must be one of {sorted(_SAVE_DTYPES)}, got {name}")
    return name, _SAVE_DTYPES[name]


def generation_config(config: HrmTextConfig) -> dict:
    out = {"_from_model_config": True}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(config, key)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    out.update(transformers_version=TRANSFORMERS_VERSION, use_cache=True)
    return out


def save_pretrained(model: HrmText, path: str | Path, dtype=None) -> Path:
    """Write config.json, generation_config.json and model.safetensors (fused layout, metadata format=pt) in
    `dtype` (float32 by default, or bfloat16 / float16). Replaces a sharded checkpoint already in `path`."""
    name, np_dtype = _save_dtype(dtype)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.astype(np_dtype) for k, v in state_dict(model).items()}
    index = path / SAFETENSORS_INDEX
    if index.is_file():  # a stale sharded checkpoint would otherwise shadow nothing but confuse readers
        for shard in set(json.loads(index.read_text()).get("weight_map", {}).values()):
            (path / shard).unlink(missing_ok=True)
        index.unlink()
    save_file(tensors, str(path / SAFETENSORS_FILE), metadata={"format": "pt"})
    _write_json(path / "config.json", model.config.to_hf_dict(dtype=name))
    _write_json(path / "generation_config.json", generation_config(model.config))
    return path


def _write_json(file: Path, obj: dict) -> None:
    file.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
