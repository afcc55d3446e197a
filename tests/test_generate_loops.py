"""Cached generation through the compiled loops (`loop_cycles` on): the stacked KV cache rides in the loop carry
and each trip writes the site its calls would have had unrolled, so prefill fills every site with the unrolled
keys/values, decoding gives the unrolled logits and tokens, and the compiled generation program stops growing
with the cycle (and segment) count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import generate as gen
from hrm_jax.model import layers
from hrm_jax.model.hrm import HRM, HRMConfig
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig
from hrm_jax.model.trm import TRM, TRMConfig

S, N_NEW = 5, 6
HRM_CFG = HRMConfig(vocab_size=40, seq_len=S + N_NEW, puzzle_emb_ndim=0, hidden_size=32, num_heads=2, H_cycles=3,
                    L_cycles=2, H_layers=1, L_layers=2, halt_max_steps=2, forward_dtype="float32", causal=True)
TRM_CFG = TRMConfig(vocab_size=40, seq_len=S + N_NEW, puzzle_emb_ndim=0, hidden_size=32, num_heads=2, H_cycles=3,
                    L_cycles=2, L_layers=2, halt_max_steps=2, forward_dtype="float32", causal=True)
# L_bp_cycles padded to (1, 1, 0, 3): cycles 0 and 1 one loop over cycles (each with its two free L calls in the
# inner loop), cycle 2's three L calls gradient-free (looped), cycle 3's graded; looped, each stack call's two
# blocks a scan over their stacked weights (`scan_layers`) too.
TEXT_CFG = HrmTextConfig(vocab_size=40, hidden_size=32, intermediate_size=48, num_layers_per_stack=2,
                         num_attention_heads=2, head_dim=8, H_cycles=4, L_cycles=3, L_bp_cycles=(0, 3),
                         pad_token_id=0, prefix_lm=False)


def _build(name, loop, dtype="float32"):
    if name == "hrm_text":
        return HrmText(TEXT_CFG, dtype=jnp.dtype(dtype), loop_cycles=loop, scan_layers=loop, rngs=nnx.Rngs(0))
    cls, cfg = {"hrm": (HRM, HRM_CFG), "trm": (TRM, TRM_CFG)}[name]
    return cls(cfg.replace(forward_dtype=dtype), loop_cycles=loop, rngs=nnx.Rngs(0))


FAMILIES = ("hrm", "trm", "hrm_text")
IDS = jnp.asarray([[0, 0, 7, 9, 11], [3, 5, 7, 2, 30]], jnp.int32)
MASK = (IDS != 0).astype(jnp.int32)


@jax.jit
def _prefill_and_decode(graphdef, state):
    """Prefill, then N_NEW decode steps feeding back the argmax: the cache after prefill, every step's logits."""
    model = nnx.merge(graphdef, state)
    cache = gen.init_cache(model, IDS.shape[0], S + N_NEW)
    logits, position, cache = gen.prefill(model, cache, IDS, MASK)
    prefilled, steps = cache, [logits[:, -1]]
    for _ in range(N_NEW - 1):
        position = position + 1
        step_logits, cache = gen.decode_step(model, cache, jnp.argmax(steps[-1], -1).astype(jnp.int32), position)
        steps.append(step_logits)
    return prefilled, jnp.stack(steps, 1)


def _rms_norm_in_input_dtype(x, eps):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)


@pytest.mark.parametrize("name", FAMILIES)
def test_looped_prefill_and_decode_are_the_unrolled_computation_in_float64(name, monkeypatch):
    """Everything in float64 (RMSNorm too, which otherwise rounds through fp32): the loop makes the same calls
    and writes the same sites, so every site of the cache is the unrolled one to float64 rounding (measured: equal
    bit for bit, or a few units in the last place where XLA fuses the loop body's arithmetic differently, 3e-15
    absolute; a call written to a wrong site would differ by O(1))."""
    monkeypatch.setattr(layers, "rms_norm", _rms_norm_in_input_dtype)
    with jax.enable_x64(True):
        runs = []
        for loop in (False, True):
            model = _build(name, loop, "float64")
            nnx.update(model, jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a,
                                           nnx.state(model)))
            runs.append(_prefill_and_decode(*nnx.split(model)))
        (cache_u, steps_u), (cache_l, steps_l) = runs
        assert cache_l.k.dtype == jnp.float64 and cache_l.k.shape[0] == _build(name, False).kv_cache_layout()[0]
        assert bool((jnp.abs(cache_u.k[:, :, :S]).max(axis=(1, 2, 3, 4)) > 0).all())  # every site written
        for a, b in ((cache_u.k, cache_l.k), (cache_u.v, cache_l.v), (steps_u, steps_l)):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * float(jnp.abs(a).max()))


# fp32 (RMSNorm in fp32, as trained): the loop body fuses differently from the unrolled calls, so rounding differs
# and grows along the chain of calls. Measured max |difference| / max |value| over the cache: HRM 5.2e-7, TRM
# 4.1e-6 (36 chained calls at the last site); over the decoded logits: HRM 6.4e-7, TRM 7.8e-6.
FP32_TOLERANCE = 2e-5


@pytest.mark.slow  # 2 min on 2 cores; the float64 test above checks the same calls and sites in the default run
@pytest.mark.parametrize("name", FAMILIES)
def test_looped_prefill_and_decode_match_the_unrolled_in_fp32(name):
    (cache_u, steps_u), (cache_l, steps_l) = (_prefill_and_decode(*nnx.split(_build(name, loop)))
                                              for loop in (False, True))
    for a, b in ((cache_u.k, cache_l.k), (cache_u.v, cache_l.v), (steps_u, steps_l)):
        np.testing.assert_allclose(b, a, rtol=0, atol=FP32_TOLERANCE * float(jnp.abs(a).max()))


@pytest.mark.slow  # the float64 prefill/decode test checks every family's logits in the default run
@pytest.mark.parametrize("name", ["trm"])  # the most sites
def test_looped_generate_gives_the_unrolled_tokens(name):
    sampling = gen.SamplingConfig(max_new_tokens=N_NEW, temperature=0.0)
    a, b = (gen.generate(_build(name, loop), IDS, sampling, attention_mask_BS=MASK, rng=jax.random.key(0))
            for loop in (False, True))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(y, x)


def test_the_looped_generation_program_is_flat_in_cycles_and_segments():
    def size(loop, **changes):
        model = HRM(HRM_CFG.replace(**changes), loop_cycles=loop, rngs=nnx.Rngs(0))
        graphdef, state = nnx.split(model)
        sampling = gen.SamplingConfig(max_new_tokens=2)
        text = gen._generate.lower(graphdef, state, IDS, MASK, None, jax.random.key(0), sampling.arrays(),
                                   max_new_tokens=2).as_text()
        return len(text)

    assert size(False, H_cycles=6) > 1.5 * size(False, H_cycles=2)  # unrolled grows with the cycles
    assert size(True, H_cycles=6) == size(True, H_cycles=2)
    assert size(True, generation_segments=4) == size(True, generation_segments=2)


def test_a_wrong_site_count_is_still_refused():
    model = _build("hrm", True)
    cache = gen.init_cache(model, 1, S)
    short = cache.replace(k=cache.k[:-1], v=cache.v[:-1])
    with pytest.raises(ValueError, match="attention calls"):
        gen.prefill(model, short, IDS[:1])
