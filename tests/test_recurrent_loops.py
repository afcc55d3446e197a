"""`model.hrm.loop_cycles` / `model.trm.loop_cycles`: the gradient-free cycles of a segment as one lax.fori_loop
give the unrolled forward and gradients (fp32), and the compiled program stops growing with the cycle count.
Cached generation through the loops: tests/test_generate_loops.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model import loops, trm
from hrm_jax.model.hrm import HRM, HRMConfig

HRM_TINY = HRMConfig(vocab_size=9, seq_len=8, puzzle_emb_ndim=0, hidden_size=16, num_heads=2, H_cycles=3, L_cycles=3,
                     H_layers=1, L_layers=2, halt_max_steps=2, forward_dtype="float32")
TRM_TINY = trm.TRMConfig(vocab_size=9, seq_len=8, puzzle_emb_ndim=0, H_cycles=3, L_cycles=2, L_layers=2,
                         hidden_size=16, num_heads=2, forward_dtype="float32")
CASES = {"hrm": (HRM, HRM_TINY), "trm_att": (trm.TRM, TRM_TINY),
         "trm_mlp": (trm.TRM, TRM_TINY.replace(mlp_t=True, pos_encodings="none"))}


def _segment_loss_and_grads(model):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    z_H, z_L, x, w = jax.random.normal(jax.random.key(1), (4, 2, 8, 16))

    def loss(p, x):
        m = nnx.merge(graphdef, p, rest)
        cos, sin, mask = m.attention_context(None, None)
        h, l = m.segment(z_H, z_L, x, cos, sin, mask)
        return jnp.sum(w * h) + 0.5 * jnp.sum(w * l)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)


def _loss_and_grads(name, loop, x64=False):
    cls, cfg = CASES[name]
    model = cls(cfg.replace(forward_dtype="float64") if x64 else cfg, loop_cycles=loop, rngs=nnx.Rngs(0))
    if x64:
        nnx.update(model, jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a,
                                       nnx.state(model)))
    return _segment_loss_and_grads(model)


@pytest.mark.parametrize("name", ["hrm", "trm_att"])
def test_looped_is_the_unrolled_computation_bitwise_in_float64(name):
    """Parameters and activations in float64 (RMSNorm still rounds through fp32): the same calls in the same
    order, so the loop and the unrolled code agree bit for bit, loss and every gradient."""
    with jax.enable_x64(True):
        (l1, g1), (l2, g2) = _loss_and_grads(name, False, True), _loss_and_grads(name, True, True)
        assert jax.tree.leaves(g1)[0].dtype == jnp.float64
        np.testing.assert_array_equal(l2, l1)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
            np.testing.assert_array_equal(b, a)


# fp32: the loop body is fused differently from the unrolled calls, so fp32 rounding differs after ~10 chained
# post-norm blocks. Measured max |gradient difference| / max |gradient|: HRM 1.4e-6, TRM-Att 2.0e-6, TRM-MLP
# 1.2e-5 (its token MLP mixes all positions; TRM-MLP drifts 6e-5 even with float64 activations, through the fp32
# RMSNorm, where HRM and TRM-Att are bitwise equal: the test above).
FP32_GRAD_TOLERANCE = {"hrm": 1e-5, "trm_att": 1e-5, "trm_mlp": 5e-5}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("hrm", "trm_att") else n
                                  for n in sorted(CASES)])  # hrm, trm_att: bitwise in float64 above (default run)
def test_looped_equals_unrolled_forward_and_gradients_in_fp32(name):
    (l1, g1), (l2, g2) = _loss_and_grads(name, False), _loss_and_grads(name, True)
    np.testing.assert_allclose(l2, l1, rtol=1e-5)
    scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(g1))
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=FP32_GRAD_TOLERANCE[name] * scale)
    assert np.abs(np.asarray(g2[1])).max() > 1e-3  # the input's gradient (through the graded calls) is there


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_looped_program_is_flat_in_the_cycle_count(name):
    cls, cfg = CASES[name]

    def size(H_cycles, loop):
        model = cls(cfg.replace(H_cycles=H_cycles), loop_cycles=loop, rngs=nnx.Rngs(0))
        graphdef, state = nnx.split(model)
        batch = {"inputs": jnp.ones((2, 8), jnp.int32)}

        def forward(state):
            m = nnx.merge(graphdef, state)
            return m(m.empty_carry(2), batch)[1]

        text = jax.jit(forward).lower(state).as_text()
        return len(text), ("while" in text)

    (u2, _), (u6, _) = size(2, False), size(6, False)
    (l2, loop2), (l6, loop6) = size(2, True), size(6, True)
    assert loop2 and loop6 and u6 > 1.5 * u2  # unrolled grows with the cycles
    assert l6 == l2  # looped: only the trip count changes


def test_repeat_without_gradient_stops_the_gradient_even_for_zero_trips():
    level = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
    for n in (0, 2):
        g = jax.grad(lambda z: loops.repeat_without_gradient(n, lambda m, z: m(z), level, z).sum())(jnp.ones(3))
        assert not np.asarray(g).any()

