"""The one set of layers every model family shares.

Family differences are options of these layers, not copies:
  * HRM (sapientinc/HRM): post-norm blocks, fused q|k|v projection, RoPE in fp32.
  * HRM-Text (transformers `hrm_text`): pre-norm blocks, sigmoid-gated attention output (fused g|q|k|v),
    an explicit head_dim, RoPE tables cast to the compute dtype.

Conventions: parameters are fp32 and cast to the compute `dtype` at use; norms and softmax run in fp32.
Every parameter carries logical axis names (`out_sharding` metadata) that `hrm_jax.parallel` maps to mesh axes.
Shapes: B batch, S sequence, D hidden, N heads, H head dim, I MLP width, V vocabulary.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import jax
import jax.numpy as jnp
from flax import nnx
from flax.core import spmd as flax_spmd

from hrm_jax.model import loops

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]

# std of a unit normal truncated to [-2, 2]; dividing by it makes the truncated draw have the requested std.
TRUNCATED_NORMAL_STD_AT_2 = 0.87962566103423978


class Buffer(nnx.Variable):
    """Persistent, non-trainable state (the original's `nn.Buffer`): saved and loaded, never optimised."""


class PuzzleEmbedding(nnx.Variable):
    """The sparse puzzle-identifier table. Trained by sparse SignSGD, never by Adam, never EMA'd."""


def trunc_normal_init(std: float) -> Initializer:
    """The original's `trunc_normal_init_`: truncated to [-2s', 2s'] with s' = std / 0.8796, so the empirical
    std equals `std` (plain `jax.nn.initializers.truncated_normal(std)` would give 0.88 std)."""

    def init(key, shape, dtype=jnp.float32):
        if std == 0:
            return jnp.zeros(shape, dtype)
        unit = jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
        return (unit * (std / TRUNCATED_NORMAL_STD_AT_2)).astype(dtype)

    return init


def normal_init(std: float) -> Initializer:
    """Plain (untruncated) normal, as transformers initialises HRM-Text."""

    def init(key, shape, dtype=jnp.float32):
        return (jax.random.normal(key, shape, jnp.float32) * std).astype(dtype)

    return init


def param(rngs: nnx.Rngs, init: Initializer, shape: tuple[int, ...], axes: tuple[str | None, ...]) -> nnx.Param:
    """An fp32 parameter with logical axis names (resolved to mesh axes by `hrm_jax.parallel`)."""
    return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=axes, eager_sharding=False)


def shard_activation(x: jax.Array, logical_axes: tuple[str | None, ...]) -> jax.Array:
    """Constrain an activation's sharding by logical axis names, resolved through the logical-axis rules in
    context (`nnx.logical_axis_rules`, set by the trainer) on the mesh in context (`jax.set_mesh`). A mesh axis that
    does not divide its dimension is left out; with no rules or no mesh this is the identity."""
    rules = flax_spmd.get_logical_axis_rules()
    mesh = jax.sharding.get_abstract_mesh()
    if not rules or mesh.empty:
        return x
    table = dict(rules)
    spec = [dividing_mesh_axes(table.get(name) if name is not None else None, dim, mesh.shape)
            for name, dim in zip(logical_axes, x.shape)]
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec(*spec))


def dividing_mesh_axes(entry: str | tuple[str, ...] | None, dim: int, axis_sizes) -> str | tuple[str, ...] | None:
    """The mesh axes of a PartitionSpec entry that divide `dim` (in order, cumulatively); None if none do."""
    if entry is None:
        return None
    kept, size = [], 1
    for ax in (entry,) if isinstance(entry, str) else tuple(entry):
        if dim % (size * axis_sizes[ax]) == 0:
            kept.append(ax)
            size *= axis_sizes[ax]
    return None if not kept else kept[0] if len(kept) == 1 else tuple(kept)


# Logical names of the main activations.
ACT_BSD = ("batch", "seq", None)
ACT_BSNH = ("batch", "seq", "heads", None)
ACT_BSI = ("batch", "seq", "mlp")
ACT_BSV = ("batch", "seq", "vocab")


def rms_norm(x: jax.Array, eps: float) -> jax.Array:
    """Parameter-free RMSNorm computed in fp32 and cast back to the input dtype."""
    xf = x.astype(jnp.float32)
    return (xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)).astype(x.dtype)


class Linear(nnx.Module):
    """`x @ W` with an fp32 kernel of shape (in, *out_shape) cast to the compute dtype at use.

    Default init is the original's truncated LeCun normal (std 1/sqrt(in)); `bias` is zero-initialised.
    """

    def __init__(self, in_features: int, out_shape: int | tuple[int, ...], *, axes: tuple[str | None, ...],
                 use_bias: bool = False, dtype=jnp.float32, kernel_init: Initializer | None = None,
                 rngs: nnx.Rngs):
        out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
        self.in_features, self.out_shape, self.dtype = in_features, out_shape, dtype
        init = kernel_init or trunc_normal_init(1.0 / math.sqrt(in_features))
        self.kernel = param(rngs, init, (in_features, *out_shape), axes)
        self.bias = (nnx.Param(jnp.zeros(out_shape, jnp.float32), out_sharding=axes[1:], eager_sharding=False)
                     if use_bias else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        y = jnp.tensordot(x, self.kernel[...].astype(self.dtype), axes=1)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return y


class Embedding(nnx.Module):
    """Token table (num, dim), fp32, gathered and cast to the compute dtype."""

    def __init__(self, num_embeddings: int, features: int, *, init: Initializer, dtype=jnp.float32,
                 axes: tuple[str | None, str | None] = ("vocab", "embed"), rngs: nnx.Rngs):
        self.dtype = dtype
        self.embedding = param(rngs, init, (num_embeddings, features), axes)

    def __call__(self, ids: jax.Array) -> jax.Array:
        return jnp.take(self.embedding[...].astype(self.dtype), ids.astype(jnp.int32), axis=0)

    def attend(self, x: jax.Array) -> jax.Array:
        """Tied output projection: x @ E^T."""
        return x.astype(self.dtype) @ self.embedding[...].astype(self.dtype).T


def rope_cos_sin(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """Half-split (NeoX, `rotate_half`) RoPE tables in fp32 for integer `positions` of any shape -> [..., H]."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def rotate_half(x: jax.Array) -> jax.Array:
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x_BSNH: jax.Array, cos: jax.Array, sin: jax.Array, *, in_fp32: bool) -> jax.Array:
    """Rotate q or k. `cos`/`sin` are [S, H] or [B, S, H]. HRM rotates in fp32 (`in_fp32`); HRM-Text casts the
    tables to the activation dtype first, as transformers does."""
    dtype = x_BSNH.dtype
    compute = jnp.float32 if in_fp32 else dtype
    cos, sin = cos.astype(compute)[..., None, :], sin.astype(compute)[..., None, :]
    if cos.ndim == 3:  # [S, 1, H] -> broadcast over batch
        cos, sin = cos[None], sin[None]
    x = x_BSNH.astype(compute)
    return (x * cos + rotate_half(x) * sin).astype(dtype)


def attention_mask(*, causal: bool, q_index: jax.Array | None = None, kv_index: jax.Array | None = None,
                   q_segment_ids: jax.Array | None = None, kv_segment_ids: jax.Array | None = None,
                   q_prefix: jax.Array | None = None, kv_prefix: jax.Array | None = None) -> jax.Array | None:
    """Boolean keep-mask [B|1, 1, Sq, Skv], or None for full bidirectional attention.

    * `causal`: key index <= query index. Indices are positions in the sequence / KV cache ([B|1, S] ints),
      not RoPE positions.
    * segment ids (packed rows, 0 = padding): a query attends only keys of its own segment; padding keys never.
    * prefix-LM (HRM-Text `token_type_ids`): tokens with prefix==1 in a row attend each other in both directions.
    """
    keep = None
    if causal:
        keep = kv_index[:, None, :] <= q_index[:, :, None]
        if q_prefix is not None:
            keep = keep | ((q_prefix[:, :, None] == 1) & (kv_prefix[:, None, :] == 1))
    if q_segment_ids is not None:
        same = (q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]) & (kv_segment_ids[:, None, :] != 0)
        keep = same if keep is None else keep & same
    return None if keep is None else keep[:, None, :, :]


class Attention(nnx.Module):
    """Multi-head self-attention through `jax.nn.dot_product_attention` in [B, S, N, H] layout.

    One fused projection kernel (D, P, N, H) with P = 3 (q|k|v, HRM) or 4 (g|q|k|v, HRM-Text's sigmoid-gated
    output). The fused layout is the original's on-disk layout, and the heads axis stays shardable.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, *, gated: bool = False,
                 rope_in_fp32: bool = True, dtype=jnp.float32, kernel_init: Initializer | None = None,
                 implementation: Literal["xla", "cudnn"] | None = None, rngs: nnx.Rngs):
        self.num_heads, self.head_dim, self.gated = num_heads, head_dim, gated
        self.rope_in_fp32, self.dtype, self.implementation = rope_in_fp32, dtype, implementation
        n_proj = 4 if gated else 3
        # Fan-in of the fused projection is D: init std 1/sqrt(D), like the original's CastedLinear.
        self.qkv_proj = Linear(hidden_size, (n_proj, num_heads, head_dim), axes=("embed", None, "heads", "head_dim"),
                               dtype=dtype, kernel_init=kernel_init, rngs=rngs)
        self.o_proj = Linear(num_heads * head_dim, hidden_size, axes=("heads_x_head_dim", "embed"), dtype=dtype,
                             kernel_init=kernel_init, rngs=rngs)

    def project(self, x_BSD: jax.Array, cos: jax.Array | None, sin: jax.Array | None):
        """q, k, v (post-RoPE) and the gate (or None), each [B, S, N, H]."""
        proj = self.qkv_proj(x_BSD)  # [B, S, P, N, H]
        parts = [proj[:, :, i] for i in range(proj.shape[2])]
        gate = parts.pop(0) if self.gated else None
        q, k, v = (shard_activation(t, ACT_BSNH) for t in parts)
        if cos is not None:
            q = apply_rope(q, cos, sin, in_fp32=self.rope_in_fp32)
            k = apply_rope(k, cos, sin, in_fp32=self.rope_in_fp32)
        return q, k, v, gate

    def attend(self, q, k, v, gate, mask: jax.Array | None) -> jax.Array:
        """Softmax attention of q over (k, v), the gate, the head merge and o_proj -> [B, S, D]."""
        out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=self.head_dim ** -0.5,
                                           implementation=self.implementation)
        if gate is not None:
            out = jax.nn.sigmoid(gate) * out
        b, s = out.shape[:2]
        return self.o_proj(out.reshape(b, s, self.num_heads * self.head_dim))

    def __call__(self, x_BSD: jax.Array, cos=None, sin=None, mask: jax.Array | None = None,
                 kv_cache=None) -> jax.Array:
        """`kv_cache`, if given, maps this call's new (k, v) [B, S, N, H] to the keys/values to attend [B, T, N, H]
        (e.g. hrm_jax.generate's per-call-site cache writer); `mask` is then [B|1, 1, S, T]."""
        q, k, v, gate = self.project(x_BSD, cos, sin)
        if kv_cache is not None:
            k, v = kv_cache(k, v)
        return self.attend(q, k, v, gate, mask)


def swiglu_intermediate_size(hidden_size: int, expansion: float) -> int:
    """The original's width: round(expansion * D * 2/3) rounded up to a multiple of 256 (1536 for D=512, x4)."""
    inter = round(expansion * hidden_size * 2 / 3)
    return -(inter // -256) * 256


class SwiGLU(nnx.Module):
    """down(silu(gate(x)) * up(x)) with one fused gate|up kernel (D, 2, I). `feature_axis` is the logical name of
    the input/output features ("seq" for TRM's token MLP, whose features are the sequence positions)."""

    def __init__(self, hidden_size: int, intermediate_size: int, *, dtype=jnp.float32,
                 kernel_init: Initializer | None = None, down_init: Initializer | None = None,
                 feature_axis: str = "embed", rngs: nnx.Rngs):
        self.dtype = dtype
        self.gate_up_proj = Linear(hidden_size, (2, intermediate_size), axes=(feature_axis, None, "mlp"), dtype=dtype,
                                   kernel_init=kernel_init, rngs=rngs)
        self.down_proj = Linear(intermediate_size, hidden_size, axes=("mlp", feature_axis), dtype=dtype,
                                kernel_init=down_init or kernel_init, rngs=rngs)

    def __call__(self, x_BSD: jax.Array) -> jax.Array:
        gate_up = self.gate_up_proj(x_BSD)
        gate, up = shard_activation(gate_up[..., 0, :], ACT_BSI), shard_activation(gate_up[..., 1, :], ACT_BSI)
        # silu in fp32, rounded once (matches torch's bf16 silu kernel).
        act = jax.nn.silu(gate.astype(jnp.float32)).astype(self.dtype)
        return self.down_proj(act * up)


class Block(nnx.Module):
    """Attention + SwiGLU with residuals. `pre_norm=False` is HRM's post-norm
    (h = norm(h + attn(h)); h = norm(h + mlp(h))); `pre_norm=True` is HRM-Text's (h = h + attn(norm(h)); ...).

    `token_mlp=(seq_len, intermediate)` replaces attention by TRM's MLP-mixer sub-layer (`mlp_t`): a SwiGLU along
    the sequence axis, h = norm_S(h + mlp_t(h^T))^T, where the RMSNorm runs over the sequence dimension
    (post-norm only; it mixes every position, so it is never causal)."""

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, intermediate_size: int, *, eps: float,
                 pre_norm: bool = False, gated_attention: bool = False, rope_in_fp32: bool = True,
                 dtype=jnp.float32, kernel_init: Initializer | None = None, down_init: Initializer | None = None,
                 attention_impl: Literal["xla", "cudnn"] | None = None,
                 token_mlp: tuple[int, int] | None = None, rngs: nnx.Rngs):
        self.eps, self.pre_norm = eps, pre_norm
        if token_mlp is not None:
            if pre_norm:
                raise ValueError("token_mlp (TRM's mlp_t) is a post-norm sub-layer; pre_norm=True is not supported")
            self.self_attn = None
            self.mlp_t = SwiGLU(token_mlp[0], token_mlp[1], dtype=dtype, kernel_init=kernel_init,
                                down_init=down_init, feature_axis="seq", rngs=rngs)
        else:
            self.mlp_t = None
            self.self_attn = Attention(hidden_size, num_heads, head_dim, gated=gated_attention,
                                       rope_in_fp32=rope_in_fp32, dtype=dtype, kernel_init=kernel_init,
                                       implementation=attention_impl, rngs=rngs)
        self.mlp = SwiGLU(hidden_size, intermediate_size, dtype=dtype, kernel_init=kernel_init, down_init=down_init,
                          rngs=rngs)

    def __call__(self, h_BSD: jax.Array, cos=None, sin=None, mask=None, kv_cache=None) -> jax.Array:
        if self.mlp_t is not None:
            if kv_cache is not None or mask is not None:
                raise ValueError("the token-MLP block mixes all positions: no attention mask or KV cache")
            h_BDS = jnp.swapaxes(h_BSD, 1, 2)
            h = jnp.swapaxes(rms_norm(h_BDS + self.mlp_t(h_BDS), self.eps), 1, 2)
            return rms_norm(h + self.mlp(h), self.eps)
        if self.pre_norm:
            h = h_BSD + self.self_attn(rms_norm(h_BSD, self.eps), cos, sin, mask, kv_cache=kv_cache)
            return h + self.mlp(rms_norm(h, self.eps))
        h = rms_norm(h_BSD + self.self_attn(h_BSD, cos, sin, mask, kv_cache=kv_cache), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


# model.hrm_text.remat_policy -> what a rematerialized block keeps from its forward pass (jax.checkpoint_policies).
REMAT_POLICIES = {
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,  # recompute the whole block (least memory)
    "dots_saveable": jax.checkpoint_policies.dots_saveable,  # keep every matmul output, recompute the rest
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,  # the projections'
}


def _apply_block(layer: Block, h_BSD, cos, sin, mask):
    return layer(h_BSD, cos, sin, mask)


_REMATERIALIZED = {name: nnx.remat(_apply_block, policy=policy) for name, policy in REMAT_POLICIES.items()}


def check_remat_policy(name: str) -> str:
    if name not in REMAT_POLICIES:
        raise ValueError(f"remat_policy {name!r} is not one of {sorted(REMAT_POLICIES)}")
    return name


class BlockStack(nnx.Module):
    """A stack of blocks applied in sequence (HRM's reasoning module, HRM-Text's H/L module).
    `final_norm` adds HRM-Text's parameter-free RMSNorm after every stack call. `remat=True` recomputes each
    block's activations in the backward pass (one `jax.checkpoint` per block) instead of keeping them all: the
    [B, N, S, S] attention intermediates of every gradient-carrying block otherwise stay live until the backward
    pass (16 blocks x several 256 MiB buffers for code-30m at 32 x 512). Same values; about one more forward.
    `remat_policy` (REMAT_POLICIES) says what each block keeps: nothing (the default), or its matmul outputs.
    `scan_layers=True`: the blocks run as one `lax.scan` over their weights stacked at call time (one compiled
    block whatever the depth; the parameters stay per block, so checkpoints and exports are unchanged)."""

    def __init__(self, blocks: list[Block], *, final_norm_eps: float | None = None, remat: bool = False,
                 remat_policy: str = "nothing_saveable", scan_layers: bool = False):
        self.layers = nnx.List(blocks)
        self.final_norm_eps = final_norm_eps
        self.remat = remat
        self.remat_policy = check_remat_policy(remat_policy)
        self.scan_layers = scan_layers  # the blocks as one lax.scan over their stacked weights (compile time)

    def __call__(self, h_BSD: jax.Array, cos=None, sin=None, mask=None, kv_cache=None) -> jax.Array:
        def apply(layer, h_BSD):
            h_BSD = shard_activation(h_BSD, ACT_BSD)
            if self.remat and kv_cache is None:
                return _REMATERIALIZED[self.remat_policy](layer, h_BSD, cos, sin, mask)
            return layer(h_BSD, cos, sin, mask, kv_cache=kv_cache)

        if self.scan_layers and len(self.layers) > 1:
            h_BSD = loops.scan_modules(list(self.layers), apply, h_BSD, kv_cache=kv_cache)
        else:
            for layer in self.layers:
                h_BSD = apply(layer, h_BSD)
        if self.final_norm_eps is not None:
            h_BSD = rms_norm(h_BSD, self.final_norm_eps)
        return h_BSD
