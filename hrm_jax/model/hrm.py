"""The original HRM (sapientinc/HRM `HierarchicalReasoningModel_ACTV1_Inner`), one segment of reasoning.

Faithful to the PyTorch code: post-norm blocks, input injection once per module call, non-trainable `H_init` /
`L_init`, sqrt(D) embedding scale applied in fp32, RoPE or learned positions, a zero-initialised sparse
puzzle-identifier embedding, lm_head, and a q_head initialised to weight 0 / bias -5. The one-step gradient:
every H/L call but the last L and the last H runs under `stop_gradient`.

`causal=True` turns it into a causal LM for code: causal attention (with packed-segment masking) in every module;
the Q head then reads the last valid position of each row, the only one that has seen the whole sequence. It is
served by `hrm_jax.generate` (`kv_cache_layout`, `attention_mask`, `hidden_states`, `logits`): a fixed number of
segments (`generation_segments`, default halt_max_steps), each (segment, cycle, module, layer) call one KV site.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx, struct

from hrm_jax.model import layers, loops
from hrm_jax.model.layers import Buffer, PuzzleEmbedding  # noqa: F401 (also importable from here)


@dataclasses.dataclass(frozen=True)
class HRMConfig:
    """Field names and defaults follow the original's `HierarchicalReasoningModel_ACTV1Config` (hrm_v1.yaml)."""

    vocab_size: int = 11
    seq_len: int = 81
    puzzle_emb_ndim: int = 512
    num_puzzle_identifiers: int = 1
    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4
    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: Literal["rope", "learned"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    forward_dtype: str = "bfloat16"
    causal: bool = False
    attention_impl: Literal["xla", "cudnn"] | None = None
    generation_segments: int = 0  # segments per generated token (causal generation); 0 = halt_max_steps

    def __post_init__(self):
        if self.pos_encodings not in ("rope", "learned"):
            raise ValueError(f"pos_encodings must be 'rope' or 'learned', got {self.pos_encodings!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.halt_max_steps < 1:
            raise ValueError(f"halt_max_steps must be >= 1, got {self.halt_max_steps}")
        if self.generation_segments < 0:
            raise ValueError(f"generation_segments must be >= 0 (0 = halt_max_steps), got {self.generation_segments}")

    @property
    def puzzle_emb_len(self) -> int:
        """P = ceil(puzzle_emb_ndim / D) leading positions that hold the puzzle embedding."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def total_len(self) -> int:
        return self.seq_len + self.puzzle_emb_len

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def dtype(self):
        return jnp.dtype(self.forward_dtype)

    @property
    def num_generation_segments(self) -> int:
        return self.generation_segments or self.halt_max_steps

    def replace(self, **changes) -> "HRMConfig":
        return dataclasses.replace(self, **changes)


@struct.dataclass
class InnerCarry:
    z_H: jax.Array  # [B, S+P, D] in forward dtype
    z_L: jax.Array  # [B, S+P, D]


class HRM(nnx.Module):
    """The inner model: one call runs one segment (H_cycles x L_cycles) and returns the new carry and heads."""

    def __init__(self, config: HRMConfig, *, loop_cycles: bool = False, rngs: nnx.Rngs):
        self.config = config
        self.loop_cycles = loop_cycles  # the gradient-free cycles as one lax.fori_loop (`segment`)
        cfg, dt, d = config, config.dtype, config.hidden_size
        embed_std = 1.0 / math.sqrt(d)
        self.embed_tokens = layers.Embedding(cfg.vocab_size, d, init=layers.trunc_normal_init(embed_std), dtype=dt,
                                             rngs=rngs)
        self.lm_head = layers.Linear(d, cfg.vocab_size, axes=("embed", "vocab"), dtype=dt, rngs=rngs)
        self.q_head = layers.Linear(d, 2, axes=("embed", None), use_bias=True, dtype=dt,
                                    kernel_init=lambda k, s, t=jnp.float32: jnp.zeros(s, t), rngs=rngs)
        self.q_head.bias[...] = jnp.full((2,), -5.0, jnp.float32)
        if cfg.puzzle_emb_ndim > 0:
            self.puzzle_emb = PuzzleEmbedding(jnp.zeros((cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim), jnp.float32),
                                              out_sharding=(None, "embed"), eager_sharding=False)
        else:
            self.puzzle_emb = None
        if cfg.pos_encodings == "learned":
            self.embed_pos = layers.Embedding(cfg.total_len, d, init=layers.trunc_normal_init(embed_std), dtype=dt,
                                              axes=(None, "embed"), rngs=rngs)
        else:
            self.embed_pos = None

        def stack(n):
            return layers.BlockStack([
                layers.Block(d, cfg.num_heads, cfg.head_dim, layers.swiglu_intermediate_size(d, cfg.expansion),
                             eps=cfg.rms_norm_eps, pre_norm=False, rope_in_fp32=True, dtype=dt,
                             attention_impl=cfg.attention_impl, rngs=rngs)
                for _ in range(n)])

        self.H_level = stack(cfg.H_layers)
        self.L_level = stack(cfg.L_layers)
        init_unit = layers.trunc_normal_init(1.0)
        self.H_init = Buffer(init_unit(rngs.params(), (d,)).astype(dt), out_sharding=(None,), eager_sharding=False)
        self.L_init = Buffer(init_unit(rngs.params(), (d,)).astype(dt), out_sharding=(None,), eager_sharding=False)

    # ----- inputs -----------------------------------------------------------------------------------------------
    def input_embeddings(self, inputs_BS: jax.Array, puzzle_identifiers_B: jax.Array | None) -> jax.Array:
        """[B, S+P, D]: puzzle positions then tokens, (learned positions), times sqrt(D); scales applied in fp32
        and rounded once, like PyTorch's python-float x bf16 product."""
        cfg, dt = self.config, self.config.dtype
        e = self.embed_tokens(inputs_BS)
        if self.puzzle_emb is not None:
            pe = jnp.take(self.puzzle_emb[...], puzzle_identifiers_B.astype(jnp.int32), axis=0).astype(dt)
            pad = cfg.puzzle_emb_len * cfg.hidden_size - cfg.puzzle_emb_ndim
            pe = jnp.pad(pe, ((0, 0), (0, pad)))
            e = jnp.concatenate([pe.reshape(-1, cfg.puzzle_emb_len, cfg.hidden_size), e], axis=1)
        if self.embed_pos is not None:
            e = (e + self.embed_pos.embedding[...].astype(dt)).astype(dt)
            e = (0.707106781 * e.astype(jnp.float32)).astype(dt)
        return (math.sqrt(cfg.hidden_size) * e.astype(jnp.float32)).astype(dt)

    def attention_context(self, segment_ids_BS: jax.Array | None, positions_BS: jax.Array | None):
        """RoPE tables and the attention mask shared by every call of a segment."""
        cfg, p = self.config, self.config.puzzle_emb_len
        if segment_ids_BS is not None and p > 0:
            raise ValueError("packed segment_ids need puzzle_emb_ndim=0 (puzzle positions belong to no segment)")
        index = jnp.arange(cfg.total_len)[None]
        cos = sin = None
        if cfg.pos_encodings == "rope":
            rope_pos = index if positions_BS is None else positions_BS
            cos, sin = layers.rope_cos_sin(rope_pos[0] if rope_pos.shape[0] == 1 else rope_pos, cfg.head_dim,
                                           cfg.rope_theta)
        mask = layers.attention_mask(causal=cfg.causal, q_index=index, kv_index=index,
                                     q_segment_ids=segment_ids_BS, kv_segment_ids=segment_ids_BS)
        return cos, sin, mask

    # ----- carry ------------------------------------------------------------------------------------------------
    def empty_carry(self, batch_size: int) -> InnerCarry:
        shape = (batch_size, self.config.total_len, self.config.hidden_size)
        return InnerCarry(z_H=jnp.zeros(shape, self.config.dtype), z_L=jnp.zeros(shape, self.config.dtype))

    def reset_carry(self, reset_B: jax.Array, carry: InnerCarry) -> InnerCarry:
        """Halted slots restart from H_init / L_init (broadcast to every position)."""
        flag = reset_B[:, None, None]
        return InnerCarry(z_H=jnp.where(flag, self.H_init[...], carry.z_H),
                          z_L=jnp.where(flag, self.L_init[...], carry.z_L))

    # ----- one segment ------------------------------------------------------------------------------------------
    def __call__(self, carry: InnerCarry, batch: dict[str, jax.Array], perturb=None):
        """One segment. Returns (new_carry (no gradient), logits [B,S,V], q_halt [B] fp32, q_continue [B] fp32).

        batch: `inputs` [B,S]; `puzzle_identifiers` [B] when puzzle_emb_ndim > 0; optional `segment_ids` and
        `positions` [B,S] (causal packing). `perturb(z, call_index)` (test-time noise, `hrm_jax.test_time`) is
        applied to every module call's output; None leaves the computation exactly as without it.
        """
        cfg = self.config
        segment_ids = batch.get("segment_ids")
        cos, sin, mask = self.attention_context(segment_ids, batch.get("positions"))
        x = self.input_embeddings(batch["inputs"], batch.get("puzzle_identifiers"))
        z_H, z_L = self.segment(carry.z_H, carry.z_L, x, cos, sin, mask, perturb=perturb)

        new_carry = jax.lax.stop_gradient(InnerCarry(z_H=z_H, z_L=z_L))
        logits = layers.shard_activation(self.lm_head(z_H)[:, cfg.puzzle_emb_len:], layers.ACT_BSV)
        q_logits = self.q_head(self.q_position(z_H, segment_ids)).astype(jnp.float32)
        return new_carry, logits, q_logits[..., 0], q_logits[..., 1]

    def segment(self, z_H: jax.Array, z_L: jax.Array, x: jax.Array, cos, sin, mask, kv_cache=None, perturb=None):
        """The H_cycles x L_cycles recurrence of one segment over input embeddings `x` -> (z_H, z_L), each
        [B, S, D]. `kv_cache` (hrm_jax.generate) is called by every attention call, in call order; `perturb`
        (see `__call__`) gets every call's output with the call's index in the segment."""
        cfg = self.config
        extra = {} if kv_cache is None else {"kv_cache": kv_cache}
        calls = iter(range(cfg.H_cycles * (cfg.L_cycles + 1)))

        def step(z):
            return z if perturb is None else perturb(z, next(calls))

        def L_call(z_L, z_H):
            return step(self.L_level(z_L + (z_H + x), cos, sin, mask, **extra))  # injection added once, as the original

        def H_call(z_H, z_L):
            return step(self.H_level(z_H + z_L, cos, sin, mask, **extra))

        if self.loop_cycles and perturb is None:  # the same calls, one compiled loop body
            def cycle(levels, z):
                L_level, H_level = levels
                z_H, z_L = z
                for _ in range(cfg.L_cycles):
                    z_L = L_level(z_L + (z_H + x), cos, sin, mask, **extra)
                return H_level(z_H + z_L, cos, sin, mask, **extra), z_L

            def L_only(L_level, z):
                z_H, z_L = z
                return z_H, L_level(z_L + (z_H + x), cos, sin, mask, **extra)

            z = loops.repeat_without_gradient(cfg.H_cycles - 1, cycle, (self.L_level, self.H_level), (z_H, z_L),
                                              kv_cache=kv_cache)
            z_H, z_L = loops.repeat_without_gradient(cfg.L_cycles - 1, L_only, self.L_level, z, kv_cache=kv_cache)
            z_L = L_call(z_L, z_H)
            return H_call(z_H, z_L), z_L
        # No-gradient cycles: every call but the last L and the last H (default order L, L, H, L).
        for h in range(cfg.H_cycles):
            for l in range(cfg.L_cycles):
                if not (h == cfg.H_cycles - 1 and l == cfg.L_cycles - 1):
                    z_L = L_call(z_L, z_H)
            if h != cfg.H_cycles - 1:
                z_H = H_call(z_H, z_L)
        z_H, z_L = jax.lax.stop_gradient((z_H, z_L))
        # One-step gradient.
        z_L = L_call(z_L, z_H)
        z_H = H_call(z_H, z_L)

        return z_H, z_L

    def q_position(self, z_H_BSD: jax.Array, segment_ids_BS: jax.Array | None) -> jax.Array:
        """The state the Q head reads [B, D]: position 0 (the puzzle token) as in the original; in causal mode the
        last valid position (last non-padding token of the row), since position 0 has seen nothing else."""
        if not self.config.causal:
            return z_H_BSD[:, 0]
        if segment_ids_BS is None:
            return z_H_BSD[:, -1]
        valid = segment_ids_BS != 0
        last = jnp.where(valid.any(-1), z_H_BSD.shape[1] - 1 - jnp.argmax(valid[:, ::-1], axis=-1), 0)
        return jnp.take_along_axis(z_H_BSD, last[:, None, None], axis=1)[:, 0]

    # ----- causal generation (hrm_jax.generate) -----------------------------------------------------------------
    @property
    def dtype(self):
        return self.config.dtype

    def kv_cache_layout(self) -> tuple[int, int, int]:
        """(attention call sites per token, heads, head_dim): one KV site per (segment, H cycle, module call,
        layer), in call order: segments x (H_cycles x L_cycles x L_layers + H_cycles x H_layers)."""
        cfg = self.config
        per_segment = cfg.H_cycles * (cfg.L_cycles * cfg.L_layers + cfg.H_layers)
        return cfg.num_generation_segments * per_segment, cfg.num_heads, cfg.head_dim

    def attention_mask(self, q_index_BS: jax.Array, kv_index_BT: jax.Array, *, kv_keep_BT: jax.Array | None = None,
                       q_token_type_BS: jax.Array | None = None, kv_token_type_BT: jax.Array | None = None):
        """Keep-mask [B|1, 1, S, T]: causal AND key not padding (kv_keep 1 = keep). No prefix-LM."""
        if q_token_type_BS is not None or kv_token_type_BT is not None:
            raise ValueError("the causal HRM has no prefix-LM: token_type_ids are not supported")
        keep = layers.attention_mask(causal=True, q_index=q_index_BS, kv_index=kv_index_BT)
        if kv_keep_BT is not None:
            keep = keep & (kv_keep_BT[:, None, None, :] != 0)
        return keep

    def hidden_states(self, inputs_BS: jax.Array, positions_BS: jax.Array, mask, kv_cache=None) -> jax.Array:
        """Final z_H [B, S, D] of `num_generation_segments` segments over new positions, the first from
        H_init / L_init. Causality makes the carry per position, so segment s+1 starts from segment s's outputs
        at the same positions; every call extends its own KV site through `kv_cache`."""
        cfg = self.config
        if not cfg.causal or cfg.puzzle_emb_ndim or cfg.pos_encodings != "rope":
            raise ValueError("generation needs the causal HRM: causal=True, puzzle_emb_ndim=0, rope positions")
        x = self.input_embeddings(inputs_BS, None)
        cos, sin = layers.rope_cos_sin(positions_BS, cfg.head_dim, cfg.rope_theta)
        z_H = jnp.broadcast_to(self.H_init[...], x.shape)
        z_L = jnp.broadcast_to(self.L_init[...], x.shape)
        if self.loop_cycles:  # every segment the same calls: one compiled loop body (no gradient in generation)
            def run_segment(model, z):
                return model.segment(*z, x, cos, sin, mask, kv_cache=kv_cache)

            return loops.repeat_without_gradient(cfg.num_generation_segments, run_segment, self, (z_H, z_L),
                                                 kv_cache=kv_cache)[0]
        for _ in range(cfg.num_generation_segments):
            z_H, z_L = self.segment(z_H, z_L, x, cos, sin, mask, kv_cache=kv_cache)
        return z_H

    def logits(self, z_H_BSD: jax.Array) -> jax.Array:
        return layers.shard_activation(self.lm_head(z_H_BSD), layers.ACT_BSV)
