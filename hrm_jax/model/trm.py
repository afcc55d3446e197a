"""TRM, the Tiny Recursive Model (SamsungSAILMontreal/TinyRecursiveModels `models/recursive_reasoning/trm.py`,
`TinyRecursiveReasoningModel_ACTV1_Inner`), one segment of reasoning, on the shared layers.

Exactly as the original: ONE network (`L_level`, `L_layers` post-norm blocks) serves both updates; a segment runs
T = H_cycles cycles of { n = L_cycles times z_L = net(z_L + (z_H + x)); then z_H = net(z_H + z_L) }, the first T-1
without gradient and the last with full backpropagation through its n+1 network applications (no one-step
gradient). Outputs and Q come from y = z_H (Q reads position 0). `puzzle_emb_len` (default 16) leading positions
hold the puzzle vector, zero-padded. `mlp_t` swaps attention for a SwiGLU along the sequence axis (RMSNorm over the
sequence dimension), used with `pos_encodings="none"`. Halting (`no_ACT_continue`, `hrm_jax.model.act`): q_halt > 0,
no second forward, loss lm + 0.5 q_halt BCE.

Everything else (embeddings and their fp32 scales, H_init / L_init buffers, the sparse puzzle table, lm / q heads
with q initialised to weight 0 / bias -5, the carry, the causal LM form and its generation hooks) is HRM's
(`hrm_jax.model.hrm`), which this class extends. `causal=True` trains TRM as a causal LM for code: each network
application is one KV-cache site per layer, `generation_segments x H_cycles x (L_cycles + 1) x L_layers` sites.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model import layers, loops
from hrm_jax.model.hrm import HRM, Buffer, PuzzleEmbedding


@dataclasses.dataclass(frozen=True)
class TRMConfig:
    """Field names and defaults follow the original's `TinyRecursiveReasoningModel_ACTV1Config` (config/arch/trm.yaml;
    `H_layers` is ignored there and absent here). `puzzle_emb_len` is resolved at construction: 0 means
    ceil(puzzle_emb_ndim / hidden_size), as the original; without a puzzle embedding there are no puzzle positions
    (the original needs puzzle_emb_len=0 then, or it fails on mismatched shapes)."""

    vocab_size: int = 11
    seq_len: int = 81
    puzzle_emb_ndim: int = 512
    num_puzzle_identifiers: int = 1
    H_cycles: int = 3
    L_cycles: int = 6
    L_layers: int = 2
    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    forward_dtype: str = "bfloat16"
    mlp_t: bool = False
    puzzle_emb_len: int = 16
    no_ACT_continue: bool = True
    causal: bool = False
    attention_impl: Literal["xla", "cudnn"] | None = None
    generation_segments: int = 0  # segments per generated token (causal generation); 0 = halt_max_steps

    def __post_init__(self):
        if self.pos_encodings not in ("rope", "learned", "none"):
            raise ValueError(f"pos_encodings must be 'rope', 'learned' or 'none', got {self.pos_encodings!r}")
        if self.mlp_t and self.pos_encodings == "rope":
            raise ValueError("mlp_t replaces attention, so RoPE has nothing to rotate: use pos_encodings='none' "
                             "(the original's MLP setting) or 'learned'")
        if self.mlp_t and self.causal:
            raise ValueError("mlp_t mixes every position of the sequence: it cannot be causal")
        if not self.mlp_t and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.halt_max_steps < 1:
            raise ValueError(f"halt_max_steps must be >= 1, got {self.halt_max_steps}")
        if self.H_cycles < 1 or self.L_cycles < 1 or self.L_layers < 1:
            raise ValueError(f"H_cycles, L_cycles and L_layers must be >= 1, got {self.H_cycles}, {self.L_cycles}, "
                             f"{self.L_layers}")
        if self.generation_segments < 0:
            raise ValueError(f"generation_segments must be >= 0 (0 = halt_max_steps), got {self.generation_segments}")
        needed = -(self.puzzle_emb_ndim // -self.hidden_size)
        resolved = 0 if self.puzzle_emb_ndim == 0 else (self.puzzle_emb_len or needed)
        if resolved < needed:
            raise ValueError(f"puzzle_emb_len {self.puzzle_emb_len} positions cannot hold a {self.puzzle_emb_ndim}-d "
                             f"puzzle embedding at hidden_size {self.hidden_size} (needs >= {needed})")
        object.__setattr__(self, "puzzle_emb_len", resolved)

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

    def replace(self, **changes) -> "TRMConfig":
        return dataclasses.replace(self, **changes)


# The paper's models at the original's data shapes (vocabulary and ids as its dataset builders write them:
# Sudoku pad + 10 digits, S = 81; Maze 30x30 with 6 symbols, S = 900). The counts exclude the puzzle table.
PRESETS: dict[str, dict] = {
    "trm-att-sudoku": dict(vocab_size=11, seq_len=81, pos_encodings="rope", mlp_t=False),
    "trm-mlp-sudoku": dict(vocab_size=11, seq_len=81, pos_encodings="none", mlp_t=True),
    "trm-mlp-maze": dict(vocab_size=6, seq_len=900, pos_encodings="none", mlp_t=True, L_cycles=4),
}
PAPER_PARAM_COUNTS = {"trm-att-sudoku": 6_828_034, "trm-mlp-sudoku": 5_028_866, "trm-mlp-maze": 18_795_522}


def preset(name: str, **changes) -> TRMConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown TRM preset {name!r}; expected one of {sorted(PRESETS)}")
    return TRMConfig(**{**PRESETS[name], **changes})


class TRM(HRM):
    """The inner model: one call runs one segment (T x (n + 1) network applications) and returns the new carry
    and heads. The ACT wrapper, the losses and the generation loop are HRM's."""

    def __init__(self, config: TRMConfig, *, loop_cycles: bool = False,  # noqa: PLW0231 (HRM's modules unbuilt)
                 rngs: nnx.Rngs):
        self.config = config
        self.loop_cycles = loop_cycles  # the T-1 gradient-free cycles as one lax.fori_loop (`segment`)
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
        token_mlp = ((cfg.total_len, layers.swiglu_intermediate_size(cfg.total_len, cfg.expansion))
                     if cfg.mlp_t else None)
        self.L_level = layers.BlockStack([
            layers.Block(d, cfg.num_heads, cfg.head_dim, layers.swiglu_intermediate_size(d, cfg.expansion),
                         eps=cfg.rms_norm_eps, pre_norm=False, rope_in_fp32=True, dtype=dt,
                         attention_impl=cfg.attention_impl, token_mlp=token_mlp, rngs=rngs)
            for _ in range(cfg.L_layers)])
        init_unit = layers.trunc_normal_init(1.0)
        self.H_init = Buffer(init_unit(rngs.params(), (d,)).astype(dt), out_sharding=(None,), eager_sharding=False)
        self.L_init = Buffer(init_unit(rngs.params(), (d,)).astype(dt), out_sharding=(None,), eager_sharding=False)

    def segment(self, z_H: jax.Array, z_L: jax.Array, x: jax.Array, cos, sin, mask, kv_cache=None, perturb=None):
        """T-1 gradient-free cycles, then one with full backpropagation; each cycle is n latent updates
        z_L = net(z_L + (z_H + x)) and one answer update z_H = net(z_H + z_L). `kv_cache` is called by every
        attention call, in call order; `perturb(z, call_index)` (test-time noise) gets every network
        application's output."""
        cfg = self.config
        extra = {} if kv_cache is None else {"kv_cache": kv_cache}
        calls = iter(range(cfg.H_cycles * (cfg.L_cycles + 1)))

        def net(h, injection):
            out = self.L_level(h + injection, cos, sin, mask, **extra)  # injection added once, as the original
            return out if perturb is None else perturb(out, next(calls))

        def cycle(z_H, z_L):
            for _ in range(cfg.L_cycles):
                z_L = net(z_L, z_H + x)
            return net(z_H, z_L), z_L

        if self.loop_cycles and perturb is None:  # the same calls, one compiled loop body
            def free_cycle(level, z):
                z_H, z_L = z
                for _ in range(cfg.L_cycles):
                    z_L = level(z_L + (z_H + x), cos, sin, mask, **extra)
                return level(z_H + z_L, cos, sin, mask, **extra), z_L

            z_H, z_L = loops.repeat_without_gradient(cfg.H_cycles - 1, free_cycle, self.L_level, (z_H, z_L),
                                                     kv_cache=kv_cache)
            return cycle(z_H, z_L)
        for _ in range(cfg.H_cycles - 1):
            z_H, z_L = cycle(z_H, z_L)
        z_H, z_L = jax.lax.stop_gradient((z_H, z_L))
        return cycle(z_H, z_L)

    def kv_cache_layout(self) -> tuple[int, int, int]:
        """(attention call sites per token, heads, head_dim): one site per (segment, cycle, network application,
        layer), in call order: segments x H_cycles x (L_cycles + 1) x L_layers."""
        cfg = self.config
        per_segment = cfg.H_cycles * (cfg.L_cycles + 1) * cfg.L_layers
        return cfg.num_generation_segments * per_segment, cfg.num_heads, cfg.head_dim


def num_params(config: TRMConfig) -> int:
    """Trainable parameters (the puzzle table and the H_init / L_init buffers excluded, as the paper counts)."""
    abstract = nnx.eval_shape(lambda: TRM(config, rngs=nnx.Rngs(0)))
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))


def block_flops_per_token(config: TRMConfig) -> float:
    """Forward FLOPs of one block for one token: the channel SwiGLU 2 x 3DI, plus either attention (qkv and o
    2 x 4D^2, scores and values 2 x 2 x S x D over the full S) or the token MLP (2 x 3 x D x I_t per token)."""
    d, s = config.hidden_size, config.total_len
    out = 2 * 3 * d * layers.swiglu_intermediate_size(d, config.expansion)
    if config.mlp_t:
        return out + 2 * 3 * d * layers.swiglu_intermediate_size(s, config.expansion)
    return out + 2 * 4 * d * d + 4 * s * d


def train_flops(config: TRMConfig, global_batch: int) -> float:
    """FLOPs of one TRM train step (one segment per sample): (T-1)(n+1) gradient-free network applications
    forward, the last n+1 forward + backward (3x), lm_head and q_head forward + backward. No second forward."""
    net = config.L_layers * block_flops_per_token(config)
    no_grad = (config.H_cycles - 1) * (config.L_cycles + 1) * net
    grad = 3 * ((config.L_cycles + 1) * net + 2 * config.hidden_size * (config.vocab_size + 2))
    return float(global_batch * config.total_len * (no_grad + grad))
