"""KV-cached generation: jitted prefill, then a `jax.lax.while_loop` of single-token decode steps with greedy /
temperature / top-k / top-p sampling, seeded, batched with left padding and per-row stop tokens.

The cache is generic over attention call sites: one K/V buffer per call of an attention layer in a forward pass,
in call order, stacked [sites, B, T, N, H] (`CacheWriter` is threaded through the model as the layers' `kv_cache`
hook; a model's compiled loops carry it and write the site their trip computes). For HRM-Text this is
transformers' layout, slot (h*(L_cycles+1) + l)*lps + i, lps*H*(L+1) slots: every recurrent call of a block keeps
its own post-RoPE keys and values. For the causal HRM (`HRM.hidden_states`) a token runs a fixed number of
segments M from H_init / L_init; causality makes the carry per position, so segment s+1 of a new token starts from
segment s's outputs at that token, and each (segment, H cycle, module call, layer) is one site, in call order:
M x H_cycles x (L_cycles x L_layers + H_layers) sites.

A model served here is a `GenerativeModel` (the Protocol below): `kv_cache_layout() -> (sites, heads, head_dim)`,
`attention_mask(q_index, kv_index, kv_keep_BT=, q_token_type_BS=, kv_token_type_BT=)`,
`hidden_states(ids, positions, mask, kv_cache=)` and `logits(z)`, and a `dtype`.

Semantics follow transformers' `generate()`: RoPE positions cumsum(attention_mask) - 1; the prefix-LM block
(token_type_ids) applies to the prefill only; generated tokens are causal.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import nnx, struct


@runtime_checkable
class GenerativeModel(Protocol):
    """What `generate` needs from a model (HrmText, the causal HRM)."""

    dtype: Any

    def kv_cache_layout(self) -> tuple[int, int, int]: ...
    def attention_mask(self, q_index_BS: jax.Array, kv_index_BT: jax.Array, *, kv_keep_BT: jax.Array | None = None,
                       q_token_type_BS: jax.Array | None = None,
                       kv_token_type_BT: jax.Array | None = None) -> jax.Array: ...
    def hidden_states(self, input_ids_BS: jax.Array, position_ids_BS: jax.Array, mask, kv_cache=None) -> jax.Array: ...
    def logits(self, z_H_BSD: jax.Array) -> jax.Array: ...


@struct.dataclass
class KVCache:
    """Keys/values of every call site stacked, k and v [sites, B, T, N, H] (post-RoPE), which keys are real
    ([B, T], False for left padding), and how many positions are written (the same for every row)."""

    k: jax.Array
    v: jax.Array
    key_valid_BT: jax.Array
    length: jax.Array  # int32 scalar

    @property
    def max_length(self) -> int:
        return self.key_valid_BT.shape[1]


def init_cache(model, batch_size: int, max_length: int) -> KVCache:
    sites, heads, head_dim = model.kv_cache_layout()
    zeros = jnp.zeros((sites, batch_size, max_length, heads, head_dim), model.dtype)
    return KVCache(k=zeros, v=zeros, key_valid_BT=jnp.ones((batch_size, max_length), bool),
                   length=jnp.zeros((), jnp.int32))


class CacheWriter:
    """The `kv_cache` hook for one forward: each call writes its new k/v at site `site` (at the cache's current
    length), returns that site's whole buffer and moves to the next site. `site` is a Python int, or a traced
    int32 once a loop has made calls (`hrm_jax.model.loops` carries `carry()` through the loop and counts the
    calls), so a compiled loop body writes a different site on every trip; `calls` stays a static count."""

    def __init__(self, cache: KVCache):
        self.k_SBTNH, self.v_SBTNH, self.start = cache.k, cache.v, cache.length
        self.site, self.calls = 0, 0

    @property
    def num_sites(self) -> int:
        return self.k_SBTNH.shape[0]

    def __call__(self, k_BSNH: jax.Array, v_BSNH: jax.Array):
        if self.calls >= self.num_sites:
            raise ValueError(f"the model made more attention calls than the cache's {self.num_sites} sites")
        at = tuple(jnp.asarray(i, jnp.int32) for i in (self.site, 0, self.start, 0, 0))  # one index type (x64)
        self.k_SBTNH = jax.lax.dynamic_update_slice(self.k_SBTNH, k_BSNH[None].astype(self.k_SBTNH.dtype), at)
        self.v_SBTNH = jax.lax.dynamic_update_slice(self.v_SBTNH, v_BSNH[None].astype(self.v_SBTNH.dtype), at)
        keys = jax.lax.dynamic_index_in_dim(self.k_SBTNH, self.site, keepdims=False)
        values = jax.lax.dynamic_index_in_dim(self.v_SBTNH, self.site, keepdims=False)
        self.site, self.calls = self.site + 1, self.calls + 1
        return keys, values

    def carry(self):
        """The traced state a loop body threads: (k, v, site)."""
        return self.k_SBTNH, self.v_SBTNH, jnp.asarray(self.site, jnp.int32)

    def set_carry(self, carry) -> None:
        self.k_SBTNH, self.v_SBTNH, self.site = carry

    def updated(self, cache: KVCache, new_tokens: int) -> KVCache:
        if self.calls != self.num_sites:
            raise ValueError(f"the model made {self.calls} attention calls, the cache has {self.num_sites} sites")
        return cache.replace(k=self.k_SBTNH, v=self.v_SBTNH, length=cache.length + new_tokens)


def _forward(model, cache: KVCache, ids_BS, positions_BS, token_type_ids_BS=None):
    s, t = ids_BS.shape[1], cache.max_length
    q_index = cache.length + jnp.arange(s, dtype=jnp.int32)[None]
    kv_index = jnp.arange(t, dtype=jnp.int32)[None]
    kv_tt = None
    if token_type_ids_BS is not None:  # prefill only: the cache is empty, so kv position j is prompt token j
        kv_tt = jnp.pad(token_type_ids_BS, ((0, 0), (0, t - s)))
    mask = model.attention_mask(q_index, kv_index, kv_keep_BT=cache.key_valid_BT, q_token_type_BS=token_type_ids_BS,
                                kv_token_type_BT=kv_tt)
    writer = CacheWriter(cache)
    z = model.hidden_states(ids_BS, positions_BS, mask, kv_cache=writer)
    return model.logits(z), writer.updated(cache, s)


def prefill(model, cache: KVCache, input_ids_BS, attention_mask_BS=None, token_type_ids_BS=None):
    """Run the prompt (left-padded: 0 = padding) into an empty cache. Returns (logits [B, S, V], positions of the
    last prompt token [B], cache)."""
    b, s = input_ids_BS.shape
    if attention_mask_BS is None:
        attention_mask_BS = jnp.ones((b, s), jnp.int32)
    positions = jnp.maximum(jnp.cumsum(attention_mask_BS, axis=1) - 1, 0).astype(jnp.int32)
    key_valid = jax.lax.dynamic_update_slice(cache.key_valid_BT, attention_mask_BS.astype(bool), (0, 0))
    logits, cache = _forward(model, cache.replace(key_valid_BT=key_valid), input_ids_BS, positions, token_type_ids_BS)
    return logits, positions[:, -1], cache


def decode_step(model, cache: KVCache, token_B, position_B):
    """One new token per row at RoPE position `position_B`. Returns (logits [B, V], cache)."""
    logits, cache = _forward(model, cache, token_B[:, None], position_B[:, None])
    return logits[:, 0], cache


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """`temperature` 0 is greedy. `top_k` 0 and `top_p` 1 disable those filters (applied in transformers' order:
    temperature, top-k, top-p). A row stops after emitting any of `stop_tokens` (included in its output); later
    slots hold `pad_token_id`. Only `max_new_tokens` and the number of stop tokens are compiled in: other values
    reuse the compiled loop."""

    max_new_tokens: int
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    stop_tokens: tuple[int, ...] = ()
    pad_token_id: int = 0

    def __post_init__(self):
        object.__setattr__(self, "stop_tokens", tuple(int(t) for t in self.stop_tokens))
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0, top_k >= 0 and 0 < top_p <= 1; got {self}")

    def arrays(self) -> dict[str, jax.Array]:
        """The traced (non-compiled) values."""
        return {"temperature": jnp.float32(self.temperature), "top_k": jnp.int32(self.top_k),
                "top_p": jnp.float32(self.top_p), "pad": jnp.int32(self.pad_token_id),
                "stop": jnp.asarray(self.stop_tokens or (-1,), jnp.int32)}


def sample(logits_BV: jax.Array, key: jax.Array, temperature, top_k, top_p) -> jax.Array:
    """Next tokens [B] (int32): argmax where temperature == 0, else a draw from softmax(logits / temperature)
    restricted to the top_k most likely (0: all), then to the smallest set reaching probability top_p."""
    logits = logits_BV.astype(jnp.float32)
    vocab = logits.shape[-1]
    scaled = logits / jnp.where(temperature > 0, temperature, 1.0)
    sorted_desc = jnp.sort(scaled, axis=-1)[:, ::-1]
    rank = jnp.arange(vocab)[None]
    sorted_desc = jnp.where((top_k > 0) & (rank >= top_k), -jnp.inf, sorted_desc)  # top-k
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    kept = (rank == 0) | ((mass_before < top_p) & (sorted_desc > -jnp.inf))  # top-p, never empty
    threshold = jnp.min(jnp.where(kept, sorted_desc, jnp.inf), axis=-1, keepdims=True)
    drawn = jax.random.categorical(key, jnp.where(scaled < threshold, -jnp.inf, scaled), axis=-1)
    return jnp.where(temperature > 0, drawn, jnp.argmax(logits, axis=-1)).astype(jnp.int32)


@struct.dataclass
class Generated:
    tokens_BN: jax.Array     # new tokens, pad after a row's stop token
    num_tokens_B: jax.Array  # tokens produced per row, the stop token included


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens"))
def _generate(graphdef, state, input_ids_BS, attention_mask_BS, token_type_ids_BS, rng, params, max_new_tokens):
    model = nnx.merge(graphdef, state)
    b, s = input_ids_BS.shape
    n = max_new_tokens
    cache = init_cache(model, b, s + n)
    logits, position, cache = prefill(model, cache, input_ids_BS, attention_mask_BS, token_type_ids_BS)

    def cond(carry):
        step, _, _, _, done, _ = carry
        return (step < n) & ~jnp.all(done)

    def body(carry):
        step, logits, position, cache, done, tokens = carry
        token = sample(logits, jax.random.fold_in(rng, step), params["temperature"], params["top_k"],
                       params["top_p"])
        token = jnp.where(done, params["pad"], token)
        tokens = tokens.at[:, step].set(token)
        done = done | jnp.isin(token, params["stop"])
        position = position + 1
        logits, cache = decode_step(model, cache, token, position)
        return step + 1, logits, position, cache, done, tokens

    init = (jnp.zeros((), jnp.int32), logits[:, -1], position, cache, jnp.zeros((b,), bool),
            jnp.full((b, n), params["pad"], jnp.int32))
    step, _, _, _, done, tokens = jax.lax.while_loop(cond, body, init)
    is_stop = jnp.isin(tokens, params["stop"]) & (jnp.arange(n)[None] < step)
    first_stop = jnp.where(is_stop.any(-1), jnp.argmax(is_stop, axis=-1) + 1, step)
    return Generated(tokens_BN=tokens, num_tokens_B=first_stop.astype(jnp.int32))


def generate(model, input_ids_BS, sampling: SamplingConfig, *, attention_mask_BS=None, token_type_ids_BS=None,
             rng: jax.Array | None = None) -> Generated:
    """Generate up to `sampling.max_new_tokens` per row after a left-padded prompt (`attention_mask_BS` 0 = pad).
    `token_type_ids_BS` == 1 marks the bidirectional prompt prefix (models with prefix-LM on). Seeded by `rng`."""
    input_ids_BS = jnp.asarray(input_ids_BS, jnp.int32)
    if attention_mask_BS is None:
        attention_mask_BS = jnp.ones_like(input_ids_BS)
    graphdef, state = nnx.split(model)
    rng = jax.random.key(0) if rng is None else rng
    tt = None if token_type_ids_BS is None else jnp.asarray(token_type_ids_BS, jnp.int32)
    return _generate(graphdef, state, input_ids_BS, jnp.asarray(attention_mask_BS, jnp.int32), tt, rng,
                     sampling.arrays(), max_new_tokens=sampling.max_new_tokens)
