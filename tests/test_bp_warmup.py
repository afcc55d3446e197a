"""HRM-Text's backprop-depth warm-up (model.hrm_text.bp_warmup_ratio): the authors' staircase of gradient depth,
its routing (bp=2: no gradient reaches the embedding; full depth: the static routing's gradients exactly), and
the family applying it from the train step's step count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax import config as config_lib, families
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig, bp_warmup_depth

# The released routing's shape: H=2, L=3, L_bp_cycles [0, 3] -> max depth 5.
TINY = HrmTextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers_per_stack=1,
                     num_attention_heads=2, head_dim=8, H_cycles=2, L_cycles=3, L_bp_cycles=(0, 3),
                     pad_token_id=0, prefix_lm=False)
IDS = jnp.asarray(np.random.default_rng(0).integers(1, 64, (2, 8)), jnp.int32)


def test_staircase_is_the_authors():
    assert TINY.max_bp_depth == 5
    depth = [int(bp_warmup_depth(s, 300, 0.2, 2, 5)) for s in (0, 19, 20, 39, 40, 59, 60, 299)]
    assert depth == [2, 2, 3, 3, 4, 4, 5, 5]  # thirds of the first 20 % (60 steps), then 5


def _grads(bp_depth):
    model = HrmText(TINY, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    pos = jnp.broadcast_to(jnp.arange(8), IDS.shape)
    seg = jnp.ones_like(IDS)

    def loss(p):
        m = nnx.merge(graphdef, p, rest)
        return m.logits(m.segment_hidden_states(IDS, seg, pos, bp_depth=bp_depth)).sum() * 1e-2

    return jax.grad(loss)(params)


def _norm(tree):
    return float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(tree)))


def test_depth_routes_the_gradient():
    static = _grads(None)
    full = _grads(jnp.int32(5))
    for a, b in zip(jax.tree.leaves(static), jax.tree.leaves(full), strict=True):
        np.testing.assert_array_equal(a, b)  # full depth = the static routing, bit for bit
    two, three = _grads(jnp.int32(2)), _grads(jnp.int32(3))
    assert _norm(static["embed_tokens"]) > 0
    assert _norm(two["embed_tokens"]) == 0  # x reaches the loss only through H0, which runs without gradient
    assert _norm(two["L_module"]) > 0 and _norm(three["embed_tokens"]) > 0
    # bp=3 routes through fewer L calls than the full depth: the L stack's gradient differs.
    assert not np.allclose(jax.tree.leaves(three["L_module"])[0], jax.tree.leaves(full["L_module"])[0])


def test_family_applies_the_warmup_from_the_step():
    family = families.HrmTextFamily(TINY, bp_warmup_ratio=0.2, total_steps=300)
    assert family.bp_depth(None) is None and families.HrmTextFamily(TINY).bp_depth(jnp.int32(0)) is None
    model = HrmText(TINY, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batch = {"inputs": IDS, "targets": IDS, "segment_ids": jnp.ones_like(IDS),
             "positions": jnp.broadcast_to(jnp.arange(8), IDS.shape), "loss_mask": jnp.ones_like(IDS)}

    def grads(step):
        return jax.grad(lambda p: family.train_loss(nnx.merge(graphdef, p, rest), {}, batch, None,
                                                    step=step)[0])(params)

    assert _norm(grads(jnp.int32(0))["embed_tokens"]) == 0
    assert _norm(grads(jnp.int32(100))["embed_tokens"]) > 0


def test_validate_refuses_a_bad_ratio():
    from configs import mbpp  # noqa: PLC0415
    c = mbpp.get_config("tiny")
    c.model.hrm_text.bp_warmup_ratio = 1.5
    with pytest.raises(config_lib.ConfigError, match="bp_warmup_ratio"):
        config_lib.validate(c)
