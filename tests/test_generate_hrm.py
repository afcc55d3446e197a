"""hrm_jax.generate on the causal HRM: per-(segment, cycle, module, layer) KV caches give the logits of a full
fixed-segment recomputation (`act.act_infer`, M segments over the whole sequence); greedy tokens are its argmax;
rows stop on their own stop tokens; sampling is seeded."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import generate as gen
from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, HRMConfig

PAD = 0
S = 7       # prompt width everywhere
N_NEW = 32  # one generation length everywhere: the compiled loop is reused across tests
TINY = HRMConfig(vocab_size=64, seq_len=S + N_NEW, puzzle_emb_ndim=0, hidden_size=32, num_heads=2, H_cycles=2,
                 L_cycles=2, H_layers=1, L_layers=2, halt_max_steps=2, forward_dtype="float32", causal=True)


@pytest.fixture(scope="module")
def model():
    return HRM(TINY, rngs=nnx.Rngs(0))


def prompts(lengths, seed=0):
    """Left-padded prompts [B, S] and their mask."""
    rng = np.random.default_rng(seed)
    ids, mask = np.full((len(lengths), S), PAD), np.zeros((len(lengths), S), np.int32)
    for row, n in enumerate(lengths):
        ids[row, S - n:] = rng.integers(3, 64, size=n)
        mask[row, S - n:] = 1
    return ids, mask


@functools.partial(jax.jit, static_argnums=0)
def _act_infer(graphdef, state, batch):
    ref = nnx.merge(graphdef, state)
    return act.act_infer(ref, batch, max_steps=ref.config.num_generation_segments)


def full_logits(model, ids_BT, mask_BT):
    """The recomputation: `act_infer` with exactly M = generation segments over the whole (left-padded) sequence;
    padding is segment 0, RoPE positions cumsum(mask) - 1 as in generate."""
    cfg = model.config.replace(seq_len=ids_BT.shape[1])
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: HRM(cfg, rngs=nnx.Rngs(0))))
    batch = {"inputs": jnp.asarray(ids_BT, jnp.int32), "segment_ids": jnp.asarray(mask_BT, jnp.int32),
             "positions": jnp.asarray(np.maximum(np.cumsum(mask_BT, axis=1) - 1, 0), jnp.int32)}
    outputs, steps = _act_infer(graphdef, nnx.state(model), batch)
    assert np.all(np.asarray(steps) == cfg.num_generation_segments)
    return np.asarray(outputs["logits"])


def test_cache_sites_are_segments_x_calls_x_layers():
    assert nnx.eval_shape(lambda: HRM(TINY, rngs=nnx.Rngs(0))).kv_cache_layout() == (2 * 2 * (2 * 2 + 1), 2, 16)
    assert nnx.eval_shape(lambda: HRM(TINY.replace(generation_segments=3), rngs=nnx.Rngs(0))
                          ).kv_cache_layout()[0] == 3 * 2 * (2 * 2 + 1)
    with pytest.raises(ValueError, match="generation_segments"):
        TINY.replace(generation_segments=-1)


def test_generation_segments_change_the_output():
    """The segment count is honoured (1 segment from H_init / L_init is not 2), so the recomputation tests that
    pin each count to act_infer(max_steps=M) would catch a model ignoring it."""
    ids = jnp.asarray([[5, 9, 11]])
    index = jnp.arange(3)[None]
    out = {}
    for m in (1, 2):
        model = HRM(TINY.replace(generation_segments=m), rngs=nnx.Rngs(0))
        out[m] = np.asarray(model.logits(model.hidden_states(ids, index, model.attention_mask(index, index))))
    assert np.abs(out[1] - out[2]).max() > 1e-2


@pytest.mark.parametrize("segments", [0, 1], ids=["default-2", "1"])
def test_cached_logits_equal_full_recomputation(segments):
    model = HRM(TINY.replace(generation_segments=segments), rngs=nnx.Rngs(0))
    ids, mask = prompts([5, 7], seed=1)
    steps = 64
    forced = np.random.default_rng(2).integers(3, 64, size=(2, steps))
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, ids, mask, forced):
        m = nnx.merge(graphdef, state)
        cache = gen.init_cache(m, ids.shape[0], ids.shape[1] + steps)
        logits, position, cache = gen.prefill(m, cache, ids, mask)

        def step(carry, token):
            position, cache = carry
            logits, cache = gen.decode_step(m, cache, token, position + 1)
            return (position + 1, cache), logits

        _, decoded = jax.lax.scan(step, (position, cache), forced.T)
        return logits, jnp.swapaxes(decoded, 0, 1)

    prefill_logits, decoded = run(state, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(forced))
    full = full_logits(model, np.concatenate([ids, forced], 1), np.concatenate([mask, np.ones_like(forced)], 1))
    real = mask.astype(bool)
    assert np.abs(np.asarray(prefill_logits) - full[:, :S])[real].max() <= 1e-5
    assert np.abs(np.asarray(decoded) - full[:, S:]).max() <= 1e-5


def test_greedy_equals_argmax_of_full_recomputation(model):
    ids, mask = prompts([7, 4], seed=3)
    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW, pad_token_id=PAD), attention_mask_BS=mask)
    tokens = np.asarray(out.tokens_BN)
    np.testing.assert_array_equal(np.asarray(out.num_tokens_B), [N_NEW, N_NEW])
    full = full_logits(model, np.concatenate([ids, tokens], 1), np.concatenate([mask, np.ones_like(tokens)], 1))
    # Token k is the argmax after prompt + tokens[:k], i.e. at position S - 1 + k.
    np.testing.assert_array_equal(tokens, np.argmax(full[:, S - 1:S - 1 + N_NEW], axis=-1))


def test_per_row_stop_tokens(model):
    ids, mask = prompts([7, 5], seed=5)
    free = np.asarray(gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW), attention_mask_BS=mask)
                      .tokens_BN)
    candidates = [k for k in range(1, N_NEW) if free[0, k] not in free[0, :k]]
    k = next(k for k in candidates if (list(free[1]).index(free[0, k]) if free[0, k] in free[1] else N_NEW) != k)
    stop = int(free[0, k])  # row 0 stops after k + 1 tokens, row 1 at another step
    want_len = [k + 1, list(free[1]).index(stop) + 1 if stop in free[1] else N_NEW]
    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW, stop_tokens=(stop,), pad_token_id=PAD),
                       attention_mask_BS=mask)
    tokens = np.asarray(out.tokens_BN)
    np.testing.assert_array_equal(np.asarray(out.num_tokens_B), want_len)
    for row, n in enumerate(want_len):
        np.testing.assert_array_equal(tokens[row, :n], free[row, :n])
        assert np.all(tokens[row, n:] == PAD)


def test_sampling_is_seeded(model):
    ids, mask = prompts([7, 4], seed=6)
    hot = gen.SamplingConfig(max_new_tokens=N_NEW, temperature=5.0)
    a = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(1)).tokens_BN
    b = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(1)).tokens_BN
    c = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(2)).tokens_BN
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a) != np.asarray(c))


def test_only_the_causal_rope_hrm_generates():
    ids = np.ones((1, 3), np.int32)
    for bad in (TINY.replace(causal=False), TINY.replace(pos_encodings="learned"),
                TINY.replace(puzzle_emb_ndim=32)):
        with pytest.raises(ValueError, match="causal HRM"):
            gen.generate(HRM(bad, rngs=nnx.Rngs(0)), ids, gen.SamplingConfig(max_new_tokens=1))
    with pytest.raises(ValueError, match="token_type_ids"):
        gen.generate(HRM(TINY, rngs=nnx.Rngs(0)), ids, gen.SamplingConfig(max_new_tokens=1),
                     token_type_ids_BS=np.ones((1, 3), np.int32))
