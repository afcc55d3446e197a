"""HRM-Text (transformers `hrm_text`, sapientinc/HRM-Text) in Flax NNX, built from the shared layers.

Numerically the transformers 5.23.0 forward (HRM_TEXT_REFERENCE.md section 3): embeddings x `embedding_scale` enter
once as z_H; z_L starts from the frozen `z_L_init`; per H cycle, `L_cycles` calls z_L = L(z_L + z_H), then
z_H = H(z_H + z_L); every stack call ends in a parameter-free RMSNorm; logits = lm_head(z_H). `L_bp_cycles` routes
gradients (section 4): an L call outside the trailing window of its H cycle has its output `stop_gradient`-ed,
which is `torch.no_grad()`'s effect. The prefix-LM mask (token_type_ids == 1 tokens form one bidirectional block)
applies only when `config.prefix_lm` and token types are given.

The config's fields are transformers' `HrmTextConfig` fields; the compute dtype is the model's, not the config's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model import layers, loops

# The transformers release whose HrmTextConfig keys `to_hf_dict` writes.
TRANSFORMERS_VERSION = "5.23.0"

# torch's lecun init in Sapient's code: normal().fmod(3) x this factor restores unit std after the wrap.
FMOD_NORMAL_STD_CORRECTION = 1.014762601732121


@dataclasses.dataclass(frozen=True)
class HrmTextConfig:
    """transformers' `HrmTextConfig` fields (num_layers_per_stack = blocks per stack, not the expanded slot count).

    `embedding_scale=None` resolves to 1 / initializer_range, as transformers does.
    """

    vocab_size: int = 151808
    hidden_size: int = 1536
    intermediate_size: int = 4096
    num_layers_per_stack: int = 16
    num_attention_heads: int = 12
    head_dim: int = 128
    H_cycles: int = 2
    L_cycles: int = 3
    L_bp_cycles: tuple[int, ...] = (2,)
    embedding_scale: float | None = None
    initializer_range: float = 0.02
    prefix_lm: bool = True
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | tuple[int, ...] | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass normalisation)
        set_("L_bp_cycles", tuple(int(n) for n in self.L_bp_cycles))
        if isinstance(self.eos_token_id, list):
            set_("eos_token_id", tuple(self.eos_token_id))
        if self.embedding_scale is None:
            set_("embedding_scale", 1.0 / self.initializer_range)
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers_per_stack",
                     "num_attention_heads", "head_dim", "H_cycles", "L_cycles"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"HrmTextConfig.{name} must be >= 1, got {getattr(self, name)}")
        if any(n < 0 for n in self.L_bp_cycles):
            raise ValueError(f"HrmTextConfig.L_bp_cycles must be non-negative counts, got {list(self.L_bp_cycles)}")
        if self.head_dim % 2:
            raise ValueError(f"HrmTextConfig.head_dim must be even for half-split RoPE, got {self.head_dim}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"HrmTextConfig.hidden_size {self.hidden_size} must be a multiple of num_attention_heads "
                             f"{self.num_attention_heads} (transformers' HrmTextConfig rejects it otherwise)")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"HrmTextConfig.pad_token_id {self.pad_token_id} is outside [0, {self.vocab_size})")

    # ----- derived ----------------------------------------------------------------------------------------------
    @property
    def num_hidden_layers(self) -> int:
        """transformers' expanded count: one KV slot per (H cycle, stack call, layer) = lps * H * (L + 1)."""
        return self.num_layers_per_stack * self.H_cycles * (self.L_cycles + 1)

    @property
    def L_bp_cycles_padded(self) -> tuple[int, ...]:
        """Left-padded with 1s to H_cycles entries (transformers pads to H_cycles, not L_cycles)."""
        return (1,) * max(0, self.H_cycles - len(self.L_bp_cycles)) + self.L_bp_cycles

    def l_call_keeps_grad(self, h: int, l: int) -> bool:
        """Whether L call `l` of H cycle `h` propagates gradient (the trailing `L_bp_cycles_padded[h]` calls do)."""
        padded = self.L_bp_cycles_padded
        n_grad = padded[h] if h < len(padded) else 1
        return l >= self.L_cycles - n_grad

    @property
    def max_bp_depth(self) -> int:
        """Module calls with gradient under the static routing: every H call plus the routed L calls (the
        authors' `bp_max_steps`: 5 for the released [0, 3] at H=2, L=3)."""
        return self.H_cycles + sum(min(k, self.L_cycles) for k in self.L_bp_cycles_padded[:self.H_cycles])

    def replace(self, **changes) -> "HrmTextConfig":
        return dataclasses.replace(self, **changes)

    # ----- transformers config.json -----------------------------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], *, source: str = "config") -> "HrmTextConfig":
        """From a transformers `config.json` dict (any transformers version or Sapient's exporter).

        Handles: `num_hidden_layers` per stack (no `num_layers_per_stack`) or expanded (with it); a legacy top-level
        `rope_theta`; Sapient's `L_bp_steps` alias; `head_dim` absent = 128; `num_key_value_heads` ignored (MHA).
        `source` names the file in error messages.
        """
        model_type = d.get("model_type", "hrm_text")
        if model_type != "hrm_text":
            raise ValueError(f"{source}: model_type is {model_type!r}, expected 'hrm_text'")

        def unsupported(key, ok):
            if key in d and d[key] is not None and d[key] != ok:
                raise ValueError(f"{source}: {key}={d[key]!r} is not supported by hrm_jax's HRM-Text (expected {ok!r})")

        unsupported("hidden_act", "silu")
        unsupported("attention_bias", False)
        unsupported("mlp_bias", False)
        unsupported("rope_scaling", None)
        if float(d.get("attention_dropout") or 0.0) != 0.0:
            raise ValueError(f"{source}: attention_dropout={d['attention_dropout']} is not supported (expected 0.0)")

        rope = d.get("rope_parameters") or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"{source}: rope_parameters.rope_type={rope['rope_type']!r} is not supported "
                             "(expected 'default')")
        rope_theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))

        if "num_hidden_layers" not in d and "num_layers_per_stack" not in d:
            raise ValueError(f"{source}: neither num_layers_per_stack nor num_hidden_layers is set")
        lps = d.get("num_layers_per_stack")
        if lps is None:  # original hub config / first construction: num_hidden_layers is blocks per stack
            lps = d["num_hidden_layers"]

        bp = d.get("L_bp_cycles", d.get("L_bp_steps"))
        if bp is None:
            bp = [2]
        elif isinstance(bp, int):
            bp = [bp]

        kw = dict(
            vocab_size=d.get("vocab_size", 151808), hidden_size=d.get("hidden_size", 1536),
            intermediate_size=d.get("intermediate_size", 4096), num_layers_per_stack=lps,
            num_attention_heads=d.get("num_attention_heads", 12), head_dim=d.get("head_dim") or 128,
            H_cycles=d.get("H_cycles", 2), L_cycles=d.get("L_cycles", 3), L_bp_cycles=tuple(bp),
            embedding_scale=d.get("embedding_scale"), initializer_range=d.get("initializer_range", 0.02),
            prefix_lm=d.get("prefix_lm", True), rope_theta=float(rope_theta),
            max_position_embeddings=d.get("max_position_embeddings", 2048), rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            tie_word_embeddings=d.get("tie_word_embeddings", False), pad_token_id=d.get("pad_token_id"),
            bos_token_id=d.get("bos_token_id"), eos_token_id=d.get("eos_token_id"))
        try:
            return cls(**kw)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def to_hf_dict(self, dtype: str = "float32") -> dict[str, Any]:
        """transformers 5.23.0's config.json keys (num_hidden_layers expanded, num_layers_per_stack set)."""
        eos = list(self.eos_token_id) if isinstance(self.eos_token_id, tuple) else self.eos_token_id
        return {
            "H_cycles": self.H_cycles, "L_bp_cycles": list(self.L_bp_cycles), "L_cycles": self.L_cycles,
            "architectures": ["HrmTextForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id, "dtype": dtype, "embedding_scale": float(self.embedding_scale),
            "eos_token_id": eos, "head_dim": self.head_dim, "hidden_act": "silu", "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range, "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings, "mlp_bias": False, "model_type": "hrm_text",
            "num_attention_heads": self.num_attention_heads, "num_hidden_layers": self.num_hidden_layers,
            "num_layers_per_stack": self.num_layers_per_stack, "pad_token_id": self.pad_token_id,
            "prefix_lm": self.prefix_lm, "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {"rope_theta": float(self.rope_theta), "rope_type": "default"},
            "tie_word_embeddings": self.tie_word_embeddings, "transformers_version": TRANSFORMERS_VERSION,
            "use_cache": True, "vocab_size": self.vocab_size,
        }


def num_params(config: HrmTextConfig, *, embeddings: bool = True) -> int:
    """Trainable parameters (z_L_init, a frozen buffer of hidden_size values, excluded). `embeddings=False` counts
    the blocks only (embedding table and lm_head left out)."""
    d, nh = config.hidden_size, config.num_attention_heads * config.head_dim
    block = 4 * d * nh + nh * d + 3 * d * config.intermediate_size
    total = 2 * config.num_layers_per_stack * block
    if embeddings:
        total += config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
    return total


def bp_warmup_depth(step: jax.Array, total_steps: int, ratio: float, bp_min: int, bp_max: int) -> jax.Array:
    """The authors' backprop-depth staircase (HRM_TEXT_TRAINING 3.4): bp_min + floor((bp_max - bp_min) *
    min(1, step / (ratio * total_steps))), e.g. 2, 3, 4 over successive thirds of the first 20 % of training,
    then 5 (the static routing)."""
    frac = jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / max(ratio * total_steps, 1e-9))
    return bp_min + jnp.floor((bp_max - bp_min) * frac).astype(jnp.int32)


def _code_preset(hidden: int, heads: int, lps: int) -> HrmTextConfig:
    # Authors' recipe scaled down: I = ceil256(round(8D/3)), init std 1/sqrt(D), embeddings x sqrt(D),
    # causal (DESIGN: the code model trains with prefix-LM off), the released routing's analogue (no gradient
    # through cycle 0's L calls, all of the last cycle's). Token ids: our SentencePiece model's pad/bos/eos.
    return HrmTextConfig(
        vocab_size=16384, hidden_size=hidden, intermediate_size=layers.swiglu_intermediate_size(hidden, 4.0),
        num_layers_per_stack=lps, num_attention_heads=heads, head_dim=64, H_cycles=2, L_cycles=2,
        L_bp_cycles=(0, 2), embedding_scale=math.sqrt(hidden), initializer_range=1.0 / math.sqrt(hidden),
        prefix_lm=False, max_position_embeddings=2048, pad_token_id=0, bos_token_id=1, eos_token_id=2)


PRESETS: dict[str, HrmTextConfig] = {
    # The released sapientinc/HRM-Text-1B shape (1,182,793,728 trainable parameters).
    "hrm-text-1b": HrmTextConfig(
        vocab_size=65536, hidden_size=1536, intermediate_size=4096, num_layers_per_stack=16, num_attention_heads=12,
        head_dim=128, H_cycles=2, L_cycles=3, L_bp_cycles=(0, 3), embedding_scale=math.sqrt(1536),
        initializer_range=1.0 / math.sqrt(1536), prefix_lm=True, max_position_embeddings=4096, rms_norm_eps=1e-6,
        pad_token_id=5, bos_token_id=6, eos_token_id=11),
    "code-30m": _code_preset(512, 8, 4),    # I 1536: 29.4M in blocks, 46.1M with embedding + lm_head
    "code-100m": _code_preset(768, 12, 5),  # I 2048: 76.7M in blocks, 101.8M with embedding + lm_head
}


def preset(name: str) -> HrmTextConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown HRM-Text preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def fmod_normal_init(std: float) -> layers.Initializer:
    """Sapient's init: normal().fmod(3) x 1.0148 x std (out-of-range draws wrap, they are not resampled)."""

    def init(key, shape, dtype=jnp.float32):
        unit = jnp.fmod(jax.random.normal(key, shape, jnp.float32), 3.0) * FMOD_NORMAL_STD_CORRECTION
        return (unit * std).astype(dtype)

    return init


class HrmText(nnx.Module):
    """HrmTextForCausalLM: `model(input_ids) -> logits [B, S, V]` in the compute `dtype` (parameters stay fp32).

    `init="transformers"`: `_init_weights` (plain normal(0, initializer_range) for every linear and the embedding,
    pad row zeroed, z_L_init zeros). `init="authors"`: Sapient's truncated LeCun (fmod(3)), std 1/sqrt(D) for gqkv,
    gate_up, o_proj, the embedding and lm_head, 1/sqrt(I) for down_proj; z_L_init unit std rounded to bf16 as they
    store it; the pad row zeroed too. `remat=True`: per-block rematerialization in training (`layers.BlockStack`),
    keeping what `remat_policy` says; `remat_cycles=True`: per-H-cycle rematerialization (each cycle keeps its
    input (z_H, z_L) and is recomputed in the backward pass; with `remat` too, that recomputation is per block).
    `scan_layers=True`: each stack's blocks as one `lax.scan` over their stacked weights (`layers.BlockStack`).
    """

    def __init__(self, config: HrmTextConfig, *, dtype=jnp.float32,
                 init: Literal["transformers", "authors"] = "transformers",
                 attention_impl: Literal["xla", "cudnn"] | None = None, remat: bool = False,
                 remat_policy: str = "nothing_saveable", loop_cycles: bool = False, remat_cycles: bool = False,
                 scan_layers: bool = False, rngs: nnx.Rngs):
        if init not in ("transformers", "authors"):
            raise ValueError(f"HrmText init must be 'transformers' or 'authors', got {init!r}")
        self.config, self.dtype = config, dtype
        self.loop_cycles = loop_cycles  # cycles as compiled loops (hidden_states)
        self.remat_cycles = remat_cycles  # training keeps each H cycle's input only and recomputes the cycle
        cfg, d = config, config.hidden_size
        if init == "transformers":
            kernel_init = down_init = embed_init = head_init = layers.normal_init(cfg.initializer_range)
        else:
            kernel_init = embed_init = head_init = fmod_normal_init(1.0 / math.sqrt(d))
            down_init = fmod_normal_init(1.0 / math.sqrt(cfg.intermediate_size))

        self.embed_tokens = layers.Embedding(cfg.vocab_size, d, init=embed_init, dtype=dtype, rngs=rngs)
        if cfg.pad_token_id is not None:
            self.embed_tokens.embedding[...] = self.embed_tokens.embedding[...].at[cfg.pad_token_id].set(0.0)

        def stack():
            blocks = []
            for _ in range(cfg.num_layers_per_stack):
                blocks.append(layers.Block(
                    d, cfg.num_attention_heads, cfg.head_dim, cfg.intermediate_size, eps=cfg.rms_norm_eps,
                    pre_norm=True, gated_attention=True, rope_in_fp32=False, dtype=dtype, kernel_init=kernel_init,
                    down_init=down_init, attention_impl=attention_impl, rngs=rngs))
            return layers.BlockStack(blocks, final_norm_eps=cfg.rms_norm_eps, remat=remat, remat_policy=remat_policy,
                                     scan_layers=scan_layers)

        self.L_module = stack()
        self.H_module = stack()
        if init == "transformers":
            z_L = jnp.zeros((d,), jnp.float32)
        else:
            z_L = fmod_normal_init(1.0)(rngs.params(), (d,)).astype(jnp.bfloat16).astype(jnp.float32)
        self.z_L_init = layers.Buffer(z_L, out_sharding=(None,), eager_sharding=False)
        self.lm_head = (None if cfg.tie_word_embeddings else
                        layers.Linear(d, cfg.vocab_size, axes=("embed", "vocab"), dtype=dtype, kernel_init=head_init,
                                      rngs=rngs))

    # ----- pieces shared with generation ------------------------------------------------------------------------
    def kv_cache_layout(self) -> tuple[int, int, int]:
        """(attention call sites per forward, heads, head_dim): one KV slot per (H cycle, stack call, layer)."""
        cfg = self.config
        return cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim

    def attention_mask(self, q_index_BS: jax.Array, kv_index_BT: jax.Array, *, kv_keep_BT: jax.Array | None = None,
                       q_token_type_BS: jax.Array | None = None, kv_token_type_BT: jax.Array | None = None):
        """Keep-mask [B|1, 1, S, T]: (causal OR both token types == 1) AND key not padding (kv_keep 1 = keep).
        Token types are used only when `config.prefix_lm` (transformers ignores them otherwise)."""
        use_prefix = self.config.prefix_lm and q_token_type_BS is not None
        keep = layers.attention_mask(causal=True, q_index=q_index_BS, kv_index=kv_index_BT,
                                     q_prefix=q_token_type_BS if use_prefix else None,
                                     kv_prefix=kv_token_type_BT if use_prefix else None)
        if kv_keep_BT is not None:
            keep = keep & (kv_keep_BT[:, None, None, :] != 0)
        return keep

    def embed(self, input_ids_BS: jax.Array) -> jax.Array:
        """z_H0 = E[ids] * embedding_scale in the compute dtype; the pad row gets no gradient from the lookup
        (nn.Embedding's padding_idx; a tied lm_head still trains it, as in transformers)."""
        x_BSD = self.embed_tokens(input_ids_BS)
        pad = self.config.pad_token_id
        if pad is not None:
            x_BSD = jnp.where((input_ids_BS == pad)[..., None], jax.lax.stop_gradient(x_BSD), x_BSD)
        # torch multiplies by the python float in fp32 and rounds once.
        return (x_BSD.astype(jnp.float32) * self.config.embedding_scale).astype(self.dtype)

    def hidden_states(self, input_ids_BS: jax.Array, position_ids_BS: jax.Array, mask, kv_cache=None,
                      bp_depth: jax.Array | None = None) -> jax.Array:
        """The H/L recurrence -> final z_H [B, S, D]. `kv_cache`, if given, is called by every attention call in
        transformers' slot order (slot (h*(L+1)+l)*lps + i) to extend its keys/values (see hrm_jax.generate).
        `bp_depth` (a traced int, the backprop-depth warm-up `bp_warmup_depth`): besides the static routing,
        only the last min(H, bp-1) H calls and the last bp - that L calls keep their gradient (the authors'
        hrm_nocarry_bp_warmup); None = the static routing alone. `loop_cycles`: a cycle's leading gradient-free
        L calls run as one `lax.fori_loop` (one compiled body; the cache hook rides in it), and consecutive H
        cycles of one routing (transformers pads L_bp_cycles with 1s: every cycle before the given ones) run as
        one differentiated loop over cycles, so the compiled graph stays flat in H_cycles too."""
        cfg = self.config
        z_H = self.embed(input_ids_BS)
        cos, sin = layers.rope_cos_sin(position_ids_BS, cfg.head_dim, cfg.rope_theta)
        z_L = jnp.broadcast_to(jax.lax.stop_gradient(self.z_L_init[...]).astype(self.dtype), z_H.shape)
        extra = {} if kv_cache is None else {"kv_cache": kv_cache}
        h_bp = l_bp = None
        if bp_depth is not None:
            h_bp = jnp.minimum(cfg.H_cycles, bp_depth - 1)
            l_bp = bp_depth - h_bp

        def route(out, keeps: bool, calls_after: int, budget):
            if not keeps:
                return jax.lax.stop_gradient(out)
            if bp_depth is None:
                return out
            return jnp.where(calls_after < budget, out, jax.lax.stop_gradient(out))

        def cycle(L_module, H_module, z_H, z_L, h, shape_h: int):
            """H cycle `h` (a Python int, or traced in a loop over cycles of `shape_h`'s routing)."""
            first = 0
            free = sum(not cfg.l_call_keeps_grad(shape_h, l) for l in range(cfg.L_cycles))  # leading no-grad calls
            if self.loop_cycles and free > 1:
                z_H_const = jax.lax.stop_gradient(z_H)

                def free_call(L_module, z, z_H_const=z_H_const):  # nnx.remat inside it, when on
                    return L_module(z + z_H_const, cos, sin, mask, **extra)

                z_L = loops.repeat_without_gradient(free, free_call, L_module, z_L, kv_cache=kv_cache)
                first = free
            for l in range(first, cfg.L_cycles):
                out = L_module(z_L + z_H, cos, sin, mask, **extra)
                later_l = (cfg.H_cycles - h) * cfg.L_cycles - l - 1
                z_L = route(out, cfg.l_call_keeps_grad(shape_h, l), later_l, l_bp)
            out = H_module(z_H + z_L, cos, sin, mask, **extra)
            return route(out, True, cfg.H_cycles - h - 1, h_bp), z_L

        def run_cycle(L_module, H_module, z_H, z_L, h, shape_h: int):
            if not self.remat_cycles or kv_cache is not None:  # generation has no backward pass
                return cycle(L_module, H_module, z_H, z_L, h, shape_h)

            def cycle_at_shape(L_module, H_module, z_H, z_L, h):
                return cycle(L_module, H_module, z_H, z_L, h, shape_h)
            return nnx.remat(cycle_at_shape)(L_module, H_module, z_H, z_L, jnp.asarray(h, jnp.int32))

        h = 0
        while h < cfg.H_cycles:
            run = 1  # with loop_cycles, consecutive cycles of one routing run as one loop (with gradient)
            while self.loop_cycles and h + run < cfg.H_cycles and self._routing(h + run) == self._routing(h):
                run += 1
            if run > 1:
                def looped(modules, zs, i, h0=h):
                    return run_cycle(*modules, *zs, h0 + i, shape_h=h0)

                z_H, z_L = loops.repeat_with_gradient(run, looped, (self.L_module, self.H_module), (z_H, z_L),
                                                      kv_cache=kv_cache)
            else:
                z_H, z_L = run_cycle(self.L_module, self.H_module, z_H, z_L, h, shape_h=h)
            h += run
        return z_H

    def _routing(self, h: int) -> tuple[bool, ...]:
        """Which L calls of H cycle `h` keep their gradient: cycles with equal routing share one loop body."""
        return tuple(self.config.l_call_keeps_grad(h, l) for l in range(self.config.L_cycles))

    def logits(self, z_H_BSD: jax.Array) -> jax.Array:
        logits = self.embed_tokens.attend(z_H_BSD) if self.lm_head is None else self.lm_head(z_H_BSD)
        return layers.shard_activation(logits, layers.ACT_BSV)

    def segment_hidden_states(self, input_ids_BS: jax.Array, segment_ids_BS: jax.Array,
                              positions_BS: jax.Array, token_type_ids_BS: jax.Array | None = None,
                              bp_depth: jax.Array | None = None) -> jax.Array:
        """Final z_H [B, S, D] for packed training rows: causal attention within each segment (segment id 0 =
        padding, never attended), RoPE positions restarting per segment (`positions_BS`). With `prefix_lm`,
        `token_type_ids_BS` == 1 tokens of one segment (its prompt) attend each other both ways: each packed
        segment's prompt is its own bidirectional block, as the segment alone would see it."""
        use_prefix = self.config.prefix_lm and token_type_ids_BS is not None
        index_1S = jnp.arange(input_ids_BS.shape[1], dtype=jnp.int32)[None]
        mask = layers.attention_mask(causal=True, q_index=index_1S, kv_index=index_1S,
                                     q_segment_ids=segment_ids_BS, kv_segment_ids=segment_ids_BS,
                                     q_prefix=token_type_ids_BS if use_prefix else None,
                                     kv_prefix=token_type_ids_BS if use_prefix else None)
        return self.hidden_states(input_ids_BS, positions_BS, mask, bp_depth=bp_depth)

    def segment_logits(self, input_ids_BS: jax.Array, segment_ids_BS: jax.Array, positions_BS: jax.Array,
                       token_type_ids_BS: jax.Array | None = None) -> jax.Array:
        """Logits [B, S, V] of `segment_hidden_states` (training computes its loss chunked instead)."""
        return self.logits(self.segment_hidden_states(input_ids_BS, segment_ids_BS, positions_BS,
                                                      token_type_ids_BS))

    def __call__(self, input_ids_BS: jax.Array | None = None, token_type_ids_BS: jax.Array | None = None,
                 attention_mask_BS: jax.Array | None = None, position_ids_BS: jax.Array | None = None, *,
                 input_ids: jax.Array | None = None, attention_mask: jax.Array | None = None,
                 token_type_ids: jax.Array | None = None, position_ids: jax.Array | None = None) -> jax.Array:
        """Logits [B, S, V] in the compute dtype. `attention_mask_BS`: 1 = real token, 0 = padding (keys only);
        `position_ids_BS` default arange(S); `token_type_ids_BS` == 1 marks the bidirectional prefix.
        transformers' keyword names (`input_ids`, `attention_mask`, `token_type_ids`, `position_ids`) are
        accepted too, so code written for `HrmTextForCausalLM` runs unchanged."""
        def pick(ours, theirs, name):
            if ours is not None and theirs is not None:
                raise TypeError(f"HrmText got both {name}_BS and {name}")
            return theirs if ours is None else ours

        input_ids_BS = pick(input_ids_BS, input_ids, "input_ids")
        if input_ids_BS is None:
            raise TypeError("HrmText needs input_ids")
        attention_mask_BS = pick(attention_mask_BS, attention_mask, "attention_mask")
        token_type_ids_BS = pick(token_type_ids_BS, token_type_ids, "token_type_ids")
        position_ids_BS = pick(position_ids_BS, position_ids, "position_ids")
        s = input_ids_BS.shape[1]
        index_1S = jnp.arange(s, dtype=jnp.int32)[None]
        mask = self.attention_mask(index_1S, index_1S, kv_keep_BT=attention_mask_BS,
                                   q_token_type_BS=token_type_ids_BS, kv_token_type_BT=token_type_ids_BS)
        positions = index_1S if position_ids_BS is None else position_ids_BS
        return self.logits(self.hidden_states(input_ids_BS, positions, mask))
