"""`model.hrm_text.loop_cycles`: a cycle's gradient-free L calls as one lax.fori_loop give the unrolled
forward and gradients (fp32), and the uncached forward is unchanged. Cached generation through the loop:
tests/test_generate_loops.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

# The released routing's shape: cycle 0's three L calls are gradient-free (looped), cycle 1's graded.
TINY = HrmTextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers_per_stack=2,
                     num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=3, L_bp_cycles=(0, 3),
                     pad_token_id=0, prefix_lm=False)
IDS = jnp.asarray(np.random.default_rng(0).integers(1, 64, (2, 10)), jnp.int32)


def _models(remat=False):
    return (HrmText(TINY, remat=remat, rngs=nnx.Rngs(0)),
            HrmText(TINY, loop_cycles=True, remat=remat, rngs=nnx.Rngs(0)))


def _loss_and_grads(model):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    seg, pos = jnp.ones_like(IDS), jnp.broadcast_to(jnp.arange(10), IDS.shape)
    weights = jax.random.normal(jax.random.key(1), (2, 10, 64))

    def loss(p):
        m = nnx.merge(graphdef, p, rest)
        return (m.segment_logits(IDS, seg, pos) * weights).sum()

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("remat", [False, True])
def test_looped_equals_unrolled_forward_and_gradients(remat):
    unrolled, looped = _models(remat)
    (l1, g1), (l2, g2) = _loss_and_grads(unrolled), _loss_and_grads(looped)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(jax.tree.leaves(g2["L_module"])[0]).sum()) > 0


def test_looped_lowers_to_a_loop():
    _, looped = _models()
    text = jax.jit(lambda ids: looped(ids)).lower(IDS).as_text()
    assert "while" in text or "scan" in text



def test_the_uncached_forward_is_unchanged():
    unrolled, looped = _models()
    np.testing.assert_allclose(looped(IDS), unrolled(IDS), rtol=1e-6, atol=1e-6)
