"""The memory fix keeps the numbers: chunked cross-entropy and per-block remat give the full form's loss and
gradients; the compiled step's memory is checked against the device's before the first step."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import losses, step_memory
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

IGN = losses.IGNORE_LABEL_ID


@pytest.mark.parametrize("chunk", [None, 3, 7])
def test_chunked_cross_entropy_matches_full_logits_values_and_gradients(chunk):
    rng = np.random.default_rng(0)
    b, s, d, v = 2, 7, 5, 11
    hidden = jnp.asarray(rng.normal(size=(b, s, d)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(d, v)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, v, (b, s)), jnp.int32).at[0, 2].set(IGN).at[1, 6].set(IGN)

    def full(h, w):
        logits = h @ w
        return losses.softmax_cross_entropy(logits, labels), (labels != IGN) & (jnp.argmax(logits, -1) == labels)

    def chunked(h, w):
        return losses.chunked_softmax_cross_entropy(h, lambda x: x @ w, labels, chunk=chunk)

    (lf, cf), (lc, cc) = full(hidden, w), chunked(hidden, w)
    np.testing.assert_allclose(lc, lf, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cc, cf)
    assert float(lc[0, 2]) == 0.0 and not bool(cc[0, 2])
    gf = jax.grad(lambda h, w: full(h, w)[0].sum(), argnums=(0, 1))(hidden, w)
    gc = jax.grad(lambda h, w: chunked(h, w)[0].sum(), argnums=(0, 1))(hidden, w)
    for a, b_ in zip(gc, gf):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)


def test_chunk_default_bounds_the_logits_chunk():
    seen = []

    def head(x):
        seen.append(x.shape)
        return jnp.zeros((*x.shape[:2], 64), jnp.float32)

    losses.chunked_softmax_cross_entropy(jnp.zeros((4, 32, 3)), head, jnp.zeros((4, 32), jnp.int32),
                                         max_chunk_elements=4 * 8 * 64)
    assert seen[-1] == (4, 8, 3)  # 4 chunks of 8 positions, never [4, 32, 64]


@pytest.mark.slow  # test_remat_policies_change_memory_not_numbers checks the default policy's numbers too
def test_block_remat_gives_the_same_loss_and_gradients():
    cfg = HrmTextConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_layers_per_stack=2,
                        num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=2, L_bp_cycles=(0, 2),
                        prefix_lm=False, pad_token_id=0)
    ids = jnp.asarray(np.random.default_rng(1).integers(1, 32, (2, 6)), jnp.int32)
    seg, pos = jnp.ones_like(ids), jnp.broadcast_to(jnp.arange(6), ids.shape)
    out = []
    for remat in (False, True):
        model = HrmText(cfg, remat=remat, rngs=nnx.Rngs(0))
        gd, p, rest = nnx.split(model, nnx.Param, ...)

        def loss(p):
            m = nnx.merge(gd, p, rest)
            return losses.chunked_softmax_cross_entropy(m.segment_hidden_states(ids, seg, pos), m.logits,
                                                        ids)[0].sum()

        out.append(jax.value_and_grad(loss)(p))
    (l0, g0), (l1, g1) = out
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_check_fits_names_the_fields_to_lower():
    mem = step_memory.StepMemory(temp=30 * 2**30, arguments=2**30, outputs=2**30, aliased=2**30, code=0)
    assert mem.total == 31 * 2**30
    assert "31.00 GiB" in step_memory.check_fits(mem, 64 * 2**30, "test")
    with pytest.raises(step_memory.StepMemoryError) as e:
        step_memory.check_fits(mem, 24 * 2**30, "host RAM")
    msg = str(e.value)
    assert "\n" not in msg and all(f in msg for f in ("data.global_batch_size", "data.seq_len", "model.hrm_text.remat"))


def test_cpu_memory_flags_keep_an_explicit_choice():
    assert step_memory.cpu_memory_flags("") == f"{step_memory.CPU_SCHEDULER_FLAG}=false"
    assert step_memory.cpu_memory_flags("--a=1").startswith("--a=1 ")
    mine = f"{step_memory.CPU_SCHEDULER_FLAG}=true"
    assert step_memory.cpu_memory_flags(mine) == mine


def test_remat_policies_change_memory_not_numbers():
    """Each `model.hrm_text.remat_policy`: the loss and gradients of no remat; XLA's temporaries of the compiled
    gradient below no remat's for every policy. (Their order among themselves is XLA's to choose: on CPU at this
    shape nothing_saveable measured 12.61 MB, dots_with_no_batch_dims 12.48 MB, dots 12.48 MB, no remat 13.66 MB,
    the recomputation's own temporaries outweighing the dots kept.)"""
    from hrm_jax import config as config_lib
    from hrm_jax.model import layers

    assert tuple(layers.REMAT_POLICIES) == config_lib.REMAT_POLICY_NAMES
    cfg = HrmTextConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_layers_per_stack=2,
                        num_attention_heads=2, head_dim=32, H_cycles=2, L_cycles=2, L_bp_cycles=(0, 2),
                        prefix_lm=False, pad_token_id=0)
    ids = jnp.asarray(np.random.default_rng(2).integers(1, 64, (4, 64)), jnp.int32)
    seg, pos = jnp.ones_like(ids), jnp.broadcast_to(jnp.arange(64), ids.shape)
    results = {}
    for name in (None, *layers.REMAT_POLICIES):
        model = HrmText(cfg, remat=name is not None, remat_policy=name or "nothing_saveable", rngs=nnx.Rngs(0))
        gd, p, rest = nnx.split(model, nnx.Param, ...)

        def loss(p):
            m = nnx.merge(gd, p, rest)
            return losses.chunked_softmax_cross_entropy(m.segment_hidden_states(ids, seg, pos), m.logits,
                                                        ids)[0].sum()

        grad = jax.jit(jax.value_and_grad(loss))
        temp = grad.lower(p).compile().memory_analysis().temp_size_in_bytes
        results[name] = (grad(p), temp)
    (l0, g0), temp_none = results[None]
    for name in layers.REMAT_POLICIES:
        (l1, g1), _ = results[name]
        np.testing.assert_allclose(l1, l0, rtol=1e-6)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    temps = {n: results[n][1] for n in layers.REMAT_POLICIES}
    assert max(temps.values()) < temp_none, (temps, temp_none)
    with pytest.raises(ValueError, match="remat_policy 'some' is not one of"):
        HrmText(cfg, remat=True, remat_policy="some", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("loop", [pytest.param(False, marks=pytest.mark.slow), True])  # both: one run_cycle
def test_cycle_remat_changes_memory_not_numbers(loop):
    """`remat_cycles` (each H cycle keeps its input and is recomputed in the backward pass), unrolled and with
    `loop_cycles`: the loss and gradients of no remat, with the backprop-depth routing too. Looped, XLA's
    temporaries of the compiled gradient fall (measured 57.8 -> 19.5 MB at 8 H cycles). Unrolled at this tiny
    shape XLA's CPU buffer assignment gives the same peak either way (52.5 MB: not activations-bound), so memory
    is asserted for the loop; benchmarks/RESULTS.md measures both at code-30m (unrolled 16.4 -> 7.7 GiB)."""
    cfg = HrmTextConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_layers_per_stack=2,
                        num_attention_heads=2, head_dim=32, H_cycles=8, L_cycles=2, L_bp_cycles=(0, 2),
                        prefix_lm=False, pad_token_id=0)
    ids = jnp.asarray(np.random.default_rng(3).integers(1, 64, (4, 64)), jnp.int32)
    seg, pos = jnp.ones_like(ids), jnp.broadcast_to(jnp.arange(64), ids.shape)
    results = {}
    for cycles in (False, True):
        model = HrmText(cfg, loop_cycles=loop, remat_cycles=cycles, rngs=nnx.Rngs(0))
        gd, p, rest = nnx.split(model, nnx.Param, ...)

        def loss(p, depth):
            m = nnx.merge(gd, p, rest)
            hidden = m.segment_hidden_states(ids, seg, pos, bp_depth=depth)
            return losses.chunked_softmax_cross_entropy(hidden, m.logits, ids)[0].sum()

        grad = jax.jit(jax.value_and_grad(loss))
        temp = grad.lower(p, jnp.int32(6)).compile().memory_analysis().temp_size_in_bytes
        results[cycles] = (grad(p, None), grad(p, jnp.int32(6)), temp)
    for (l0, g0), (l1, g1) in zip(results[False][:2], results[True][:2]):
        np.testing.assert_allclose(l1, l0, rtol=1e-6)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    if loop:
        assert results[True][2] < 0.5 * results[False][2], (results[True][2], results[False][2])
