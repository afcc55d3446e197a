"""The same-size transformer baseline (TRM's `models/recursive_reasoning/transformers_baseline.py`) on the shared
layers: one stack of blocks, no H/L split, no cycles.

Two forms, chosen by `config.causal`:

* **Puzzle form** (`causal=False`), TRM's `Model_ACTV2_Inner` exactly: HRM's input embedding (puzzle positions,
  learned positions or RoPE, x sqrt(D) in fp32), a non-trainable `H_init` carry, one stack call
  z_H = stack(z_H + x) of post-norm blocks, lm_head on z_H without the puzzle positions, the Q head (weight 0,
  bias -5) on position 0. It has HRM's ACT interface (`empty_carry`, `reset_carry`, `__call__`), so
  `hrm_jax.model.act` runs it: `halt_max_steps=1` is a single segment (a plain transformer; every slot halts
  after one step and no Q target is computed), more segments are TRM's ACT baseline.
* **Causal form** (`causal=True`), a causal LM for code that llama computes exactly (HF `LlamaForCausalLM`,
  llama.cpp `llama`): pre-norm blocks (h = h + attn(norm(h)); h = h + mlp(norm(h))), a final norm, lm_head;
  half-split (`rotate_half`) RoPE in the compute dtype like transformers. The differences from llama are only in
  where constants live, and the export folds them away exactly: the norms are parameter-free (exported as weight
  1.0, and llama multiplies by its weight after the same fp32 normalisation), and the embedding scale sqrt(D) is
  multiplied into the exported token table (a gather commutes with the per-element product). No H_init, no Q head.
  It is served by `hrm_jax.generate` (`kv_cache_layout`, `attention_mask`, `hidden_states`, `logits`).

`num_layers` is set by sizing against a reference family (`hrm_jax.sizing`, `config.transformer_config`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx, struct

from hrm_jax.model import layers
from hrm_jax.model.hrm import HRM, Buffer, PuzzleEmbedding


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """A resolved transformer: every field explicit (sizing happens before this is built)."""

    vocab_size: int = 11
    seq_len: int = 81
    num_layers: int = 8
    hidden_size: int = 512
    num_heads: int = 8
    head_dim: int = 64
    intermediate_size: int = 1536
    causal: bool = False
    pre_norm: bool = False
    puzzle_emb_ndim: int = 0
    num_puzzle_identifiers: int = 1
    pos_encodings: Literal["rope", "learned"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int = 1
    halt_exploration_prob: float = 0.1
    forward_dtype: str = "bfloat16"
    attention_impl: Literal["xla", "cudnn"] | None = None
    max_position_embeddings: int = 2048  # causal export only (llama's config field)
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self):
        for name in ("vocab_size", "seq_len", "num_layers", "hidden_size", "num_heads", "head_dim",
                     "intermediate_size", "halt_max_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TransformerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.pos_encodings not in ("rope", "learned"):
            raise ValueError(f"pos_encodings must be 'rope' or 'learned', got {self.pos_encodings!r}")
        if self.pos_encodings == "rope" and self.head_dim % 2:
            raise ValueError(f"head_dim must be even for half-split RoPE, got {self.head_dim}")
        if self.causal and (self.puzzle_emb_ndim or self.pos_encodings != "rope" or not self.pre_norm):
            raise ValueError("the causal transformer is llama's shape: pre_norm=True, pos_encodings='rope', "
                             f"puzzle_emb_ndim=0 (got pre_norm={self.pre_norm}, pos_encodings="
                             f"{self.pos_encodings!r}, puzzle_emb_ndim={self.puzzle_emb_ndim})")

    @property
    def puzzle_emb_len(self) -> int:
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def total_len(self) -> int:
        return self.seq_len + self.puzzle_emb_len

    @property
    def dtype(self):
        return jnp.dtype(self.forward_dtype)

    @property
    def embedding_scale(self) -> float:
        return math.sqrt(self.hidden_size)

    def replace(self, **changes) -> "TransformerConfig":
        return dataclasses.replace(self, **changes)


@struct.dataclass
class TransformerCarry:
    z_H: jax.Array  # [B, S+P, D] in the forward dtype


class Transformer(nnx.Module):
    """The baseline: `causal=False` is TRM's Model_ACTV2_Inner (ACT interface), `causal=True` a llama-shaped LM."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        cfg, dt, d = config, config.dtype, config.hidden_size
        embed_std = 1.0 / math.sqrt(d)
        self.embed_tokens = layers.Embedding(cfg.vocab_size, d, init=layers.trunc_normal_init(embed_std), dtype=dt,
                                             rngs=rngs)
        self.lm_head = layers.Linear(d, cfg.vocab_size, axes=("embed", "vocab"), dtype=dt, rngs=rngs)
        puzzle = not cfg.causal
        self.q_head = (layers.Linear(d, 2, axes=("embed", None), use_bias=True, dtype=dt,
                                     kernel_init=lambda k, s, t=jnp.float32: jnp.zeros(s, t), rngs=rngs)
                       if puzzle else None)
        if puzzle:
            self.q_head.bias[...] = jnp.full((2,), -5.0, jnp.float32)
        self.puzzle_emb = (PuzzleEmbedding(jnp.zeros((cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim), jnp.float32),
                                           out_sharding=(None, "embed"), eager_sharding=False)
                           if puzzle and cfg.puzzle_emb_ndim > 0 else None)
        self.embed_pos = (layers.Embedding(cfg.total_len, d, init=layers.trunc_normal_init(embed_std), dtype=dt,
                                           axes=(None, "embed"), rngs=rngs)
                          if puzzle and cfg.pos_encodings == "learned" else None)
        self.layers = layers.BlockStack(
            [layers.Block(d, cfg.num_heads, cfg.head_dim, cfg.intermediate_size, eps=cfg.rms_norm_eps,
                          pre_norm=cfg.pre_norm, rope_in_fp32=not cfg.causal, dtype=dt,
                          attention_impl=cfg.attention_impl, rngs=rngs)
             for _ in range(cfg.num_layers)],
            final_norm_eps=cfg.rms_norm_eps if cfg.pre_norm else None)
        self.H_init = (Buffer(layers.trunc_normal_init(1.0)(rngs.params(), (d,)).astype(dt), out_sharding=(None,),
                              eager_sharding=False) if puzzle else None)

    @property
    def dtype(self):
        return self.config.dtype

    # The same input embedding and RoPE tables / mask as HRM (they read only config fields and modules this class
    # shares with HRM by name).
    input_embeddings = HRM.input_embeddings
    attention_context = HRM.attention_context

    # ----- puzzle form: HRM's ACT interface ---------------------------------------------------------------------
    def empty_carry(self, batch_size: int) -> TransformerCarry:
        return TransformerCarry(z_H=jnp.zeros((batch_size, self.config.total_len, self.config.hidden_size),
                                              self.config.dtype))

    def reset_carry(self, reset_B: jax.Array, carry: TransformerCarry) -> TransformerCarry:
        return TransformerCarry(z_H=jnp.where(reset_B[:, None, None], self.H_init[...], carry.z_H))

    def __call__(self, carry: TransformerCarry, batch: dict[str, jax.Array]):
        """One segment: (new carry (no gradient), logits [B, S, V], q_halt [B] fp32, q_continue [B] fp32)."""
        if self.config.causal:
            raise ValueError("the causal transformer has no ACT segments: use segment_logits / hrm_jax.generate")
        cfg = self.config
        cos, sin, mask = self.attention_context(batch["inputs"].shape[0], batch.get("segment_ids"),
                                                batch.get("positions"))
        x = self.input_embeddings(batch["inputs"], batch.get("puzzle_identifiers"))
        z_H = self.layers(carry.z_H + x, cos, sin, mask)  # input injection once, then the blocks
        logits = layers.shard_activation(self.lm_head(z_H)[:, cfg.puzzle_emb_len:], layers.ACT_BSV)
        q = self.q_head(z_H[:, 0]).astype(jnp.float32)
        return jax.lax.stop_gradient(TransformerCarry(z_H=z_H)), logits, q[..., 0], q[..., 1]

    # ----- causal form: hrm_jax.generate's interface ------------------------------------------------------------
    def kv_cache_layout(self) -> tuple[int, int, int]:
        """(attention call sites per token, heads, head_dim): one per layer."""
        return self.config.num_layers, self.config.num_heads, self.config.head_dim

    def attention_mask(self, q_index_BS: jax.Array, kv_index_BT: jax.Array, *, kv_keep_BT: jax.Array | None = None,
                       q_token_type_BS: jax.Array | None = None, kv_token_type_BT: jax.Array | None = None):
        """Keep-mask [B|1, 1, S, T]: causal AND key not padding (kv_keep 1 = keep). No prefix-LM."""
        if q_token_type_BS is not None or kv_token_type_BT is not None:
            raise ValueError("the causal transformer has no prefix-LM: token_type_ids are not supported")
        keep = layers.attention_mask(causal=True, q_index=q_index_BS, kv_index=kv_index_BT)
        if kv_keep_BT is not None:
            keep = keep & (kv_keep_BT[:, None, None, :] != 0)
        return keep

    def embed(self, input_ids_BS: jax.Array) -> jax.Array:
        """E[ids] x sqrt(D), the product in fp32 and rounded once (as HRM)."""
        x = self.embed_tokens(input_ids_BS)
        return (x.astype(jnp.float32) * self.config.embedding_scale).astype(self.dtype)

    def hidden_states(self, input_ids_BS: jax.Array, positions_BS: jax.Array, mask, kv_cache=None) -> jax.Array:
        """The final-normed hidden states [B, S, D] of the causal LM; `kv_cache` is called once per layer."""
        cfg = self.config
        if not cfg.causal:
            raise ValueError("generation needs the causal transformer (model.family=transformer on code data)")
        cos, sin = layers.rope_cos_sin(positions_BS, cfg.head_dim, cfg.rope_theta)
        extra = {} if kv_cache is None else {"kv_cache": kv_cache}
        return self.layers(self.embed(input_ids_BS), cos, sin, mask, **extra)

    def logits(self, z_BSD: jax.Array) -> jax.Array:
        return layers.shard_activation(self.lm_head(z_BSD), layers.ACT_BSV)

    def segment_logits(self, input_ids_BS: jax.Array, segment_ids_BS: jax.Array, positions_BS: jax.Array):
        """Logits for packed training rows: causal within each segment (0 = padding, never attended), RoPE
        positions restarting per segment."""
        index_1S = jnp.arange(input_ids_BS.shape[1], dtype=jnp.int32)[None]
        mask = layers.attention_mask(causal=True, q_index=index_1S, kv_index=index_1S,
                                     q_segment_ids=segment_ids_BS, kv_segment_ids=segment_ids_BS)
        return self.logits(self.hidden_states(input_ids_BS, positions_BS, mask))

    def causal_logits(self, input_ids_BS: jax.Array, attention_mask_BS: jax.Array | None = None,
                      position_ids_BS: jax.Array | None = None) -> jax.Array:
        """Logits [B, S, V] as transformers' `LlamaForCausalLM(input_ids, attention_mask)` computes them
        (`attention_mask_BS` 1 = real key; positions default arange(S))."""
        index_1S = jnp.arange(input_ids_BS.shape[1], dtype=jnp.int32)[None]
        mask = self.attention_mask(index_1S, index_1S, kv_keep_BT=attention_mask_BS)
        positions = index_1S if position_ids_BS is None else position_ids_BS
        return self.logits(self.hidden_states(input_ids_BS, positions, mask))


def num_params(config: TransformerConfig) -> int:
    """Trainable parameters (nnx.Param; the puzzle table and H_init are not): token table, lm_head, per layer
    q|k|v + o + gate|up + down, and in puzzle form the Q head (and learned positions)."""
    c, d = config, config.hidden_size
    nh = c.num_heads * c.head_dim
    block = 3 * d * nh + nh * d + 3 * d * c.intermediate_size
    total = 2 * c.vocab_size * d + c.num_layers * block
    if not c.causal:
        total += 2 * d + 2 + (c.total_len * d if c.pos_encodings == "learned" else 0)
    return total
