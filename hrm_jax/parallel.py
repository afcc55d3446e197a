"""Mesh, the one logical-axis rules table, and sharding helpers.

Parameters carry logical axis names (`out_sharding` metadata set in `model/layers.py`); this table maps them to
the mesh axes ('data', 'fsdp', 'tensor'). The batch axis spans ('data', 'fsdp'). A dimension that a mesh axis does
not divide stays replicated on that axis (e.g. an 11-token vocabulary on tensor=2), so every config runs on every
mesh; `describe_param_shardings` shows what was chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from hrm_jax.model.layers import dividing_mesh_axes

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# logical name -> mesh axis (or axes, or None). Adding a family adds rows here, nowhere else.
LOGICAL_AXIS_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("heads_x_head_dim", "tensor"),
    ("mlp", "tensor"),
    ("head_dim", None),
    ("seq", None),
)


def mesh_shape(shape: Sequence[int], num_devices: int) -> tuple[int, ...]:
    """Fill the one -1 entry so the product equals `num_devices`; errors name the mismatch."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(MESH_AXES):
        raise ValueError(f"mesh shape {shape} must have {len(MESH_AXES)} entries for axes {MESH_AXES}")
    if shape.count(-1) > 1:
        raise ValueError(f"mesh shape {shape}: at most one -1 entry")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if num_devices % known:
            raise ValueError(f"mesh shape {shape}: {num_devices} devices are not divisible by {known}")
        shape = tuple(num_devices // known if s == -1 else s for s in shape)
    if math.prod(shape) != num_devices:
        raise ValueError(f"mesh shape {shape} has {math.prod(shape)} devices, but {num_devices} are available")
    return shape


def make_mesh(shape: Sequence[int] = (-1, 1, 1), devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(devices) if devices is not None else jax.devices()
    shape = mesh_shape(shape, len(devices))
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices)


def logical_to_mesh_axes(logical: Sequence[str | None], rules=LOGICAL_AXIS_RULES) -> tuple:
    table = dict(rules)
    out = []
    for name in logical:
        if name is not None and name not in table:
            raise KeyError(f"logical axis {name!r} has no rule in LOGICAL_AXIS_RULES")
        out.append(None if name is None else table[name])
    return tuple(out)


def spec_for(shape: Sequence[int], logical: Sequence[str | None] | None, mesh: Mesh, rules=LOGICAL_AXIS_RULES) -> P:
    if not logical:
        return P()
    if len(logical) != len(shape):
        raise ValueError(f"logical axes {tuple(logical)} do not match shape {tuple(shape)}")
    mesh_axes = logical_to_mesh_axes(logical, rules)
    return P(*(dividing_mesh_axes(a, d, mesh.shape) for a, d in zip(mesh_axes, shape)))


def state_shardings(state: nnx.State, mesh: Mesh, rules=LOGICAL_AXIS_RULES):
    """NamedShardings for an (abstract) nnx.State from each variable's `out_sharding` logical names, in a tree of
    the state's structure (each Variable holds its NamedSharding)."""

    def one(var):
        names = var.get_metadata().get("out_sharding")
        return var.replace(NamedSharding(mesh, spec_for(var.shape, names, mesh, rules)))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def batch_spec(ndim: int) -> P:
    return P(BATCH_AXES, *([None] * (ndim - 1)))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    return NamedSharding(mesh, batch_spec(ndim))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch_tree(tree, mesh: Mesh):
    """Shardings for a pytree whose leaves all lead with the batch axis (the ACT carry, a batch)."""
    return jax.tree.map(lambda x: batch_sharding(mesh, np.ndim(x)), tree)


def global_batch_from_local(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble the global batch from this process's rows (multi-host: each host passes its own slice)."""
    return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, v.ndim), v) for k, v in local_batch.items()}


def describe_param_shardings(state: nnx.State, mesh: Mesh) -> dict[str, str]:
    """{'H_level/layers/0/self_attn/qkv_proj/kernel': "PartitionSpec('fsdp', None, 'tensor', None)", ...}"""
    shardings = state_shardings(state, mesh)
    return {"/".join(map(str, path)): str(var.get_value().spec) for path, var in nnx.to_flat_state(shardings)}
