"""The HRM inner model: size, init, shapes and dtypes, the one-step gradient, causality."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, Buffer, HRMConfig, InnerCarry, PuzzleEmbedding

TINY = HRMConfig(vocab_size=13, seq_len=10, puzzle_emb_ndim=24, num_puzzle_identifiers=4, hidden_size=16,
                 num_heads=2, H_layers=1, L_layers=2, halt_max_steps=3, forward_dtype="float32")


def _batch(cfg, b=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {"inputs": jnp.asarray(rng.integers(0, cfg.vocab_size, (b, cfg.seq_len)), jnp.int32),
           "labels": jnp.asarray(rng.integers(0, cfg.vocab_size, (b, cfg.seq_len)), jnp.int32)}
    if cfg.puzzle_emb_ndim:
        out["puzzle_identifiers"] = jnp.asarray(rng.integers(0, cfg.num_puzzle_identifiers, (b,)), jnp.int32)
    return out


def _count(state):
    return sum(x.size for x in jax.tree.leaves(state))


def test_default_parameter_count_equals_the_original():
    model = nnx.eval_shape(lambda: HRM(HRMConfig(vocab_size=11), rngs=nnx.Rngs(0)))
    assert _count(nnx.state(model, nnx.Param)) == 27_275_266  # Sudoku, HRM issue #12
    model = nnx.eval_shape(lambda: HRM(HRMConfig(vocab_size=12, seq_len=900), rngs=nnx.Rngs(0)))
    assert _count(nnx.state(model, nnx.Param)) == 27_276_290  # ARC
    # The puzzle table and H_init/L_init are not parameters.
    assert _count(nnx.state(model, PuzzleEmbedding)) == 512 and _count(nnx.state(model, Buffer)) == 1024


def test_init_statistics():
    model = HRM(HRMConfig(vocab_size=11, H_layers=1, L_layers=1), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(model.q_head.kernel[...], 0.0)
    np.testing.assert_array_equal(model.q_head.bias[...], -5.0)
    np.testing.assert_array_equal(model.puzzle_emb[...], 0.0)
    assert model.H_init[...].dtype == jnp.bfloat16 and model.H_init[...].shape == (512,)
    assert abs(float(np.asarray(model.H_init[...], np.float32).std()) - 1.0) < 0.15
    assert not np.array_equal(model.H_init[...], model.L_init[...])
    qkv = np.asarray(model.H_level.layers[0].self_attn.qkv_proj.kernel[...])
    assert abs(qkv.std() - 1 / math.sqrt(512)) < 0.02 / math.sqrt(512) * 10
    down = np.asarray(model.H_level.layers[0].mlp.down_proj.kernel[...])
    assert abs(down.std() * math.sqrt(1536) - 1) < 0.02
    emb = np.asarray(model.embed_tokens.embedding[...])
    assert emb.dtype == np.float32 and abs(emb.std() * math.sqrt(512) - 1) < 0.1
    # Different layers get different weights.
    assert not np.array_equal(qkv, model.L_level.layers[0].self_attn.qkv_proj.kernel[...])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_jitted_forward_shapes_and_dtypes(dtype, pos):
    cfg = TINY.replace(forward_dtype=dtype, pos_encodings=pos)
    model = HRM(cfg, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    batch = _batch(cfg)

    @jax.jit
    def forward(state, batch):
        m = nnx.merge(graphdef, state)
        carry = m.reset_carry(jnp.ones((3,), bool), m.empty_carry(3))
        return m(carry, batch)

    carry, logits, q_halt, q_continue = forward(state, batch)
    assert logits.shape == (3, cfg.seq_len, cfg.vocab_size) and logits.dtype == jnp.dtype(dtype)
    assert carry.z_H.shape == (3, cfg.total_len, cfg.hidden_size) and carry.z_H.dtype == jnp.dtype(dtype)
    assert q_halt.shape == (3,) and q_halt.dtype == jnp.float32 and q_continue.dtype == jnp.float32
    np.testing.assert_allclose(q_halt, -5.0)  # zero weight, bias -5
    assert np.isfinite(np.asarray(logits, np.float32)).all()


def test_bf16_forward_tracks_fp32():
    model32 = HRM(TINY, rngs=nnx.Rngs(0))
    model16 = HRM(TINY.replace(forward_dtype="bfloat16"), rngs=nnx.Rngs(0))
    nnx.update(model16, nnx.state(model32, nnx.Param))
    batch = _batch(TINY)
    l32 = act.act_infer(model32, batch, max_steps=1)[0]["logits"]
    l16 = act.act_infer(model16, batch, max_steps=1)[0]["logits"]
    agree = np.mean(np.argmax(l32, -1) == np.argmax(np.asarray(l16, np.float32), -1))
    assert agree > 0.9 and np.abs(np.asarray(l16, np.float32) - l32).max() < 0.5


def _one_step_reference(model: HRM, carry: InnerCarry, batch):
    """The original's forward written out: L, L, H, L without gradient (on the default 2x2 cycles), then L, H."""
    x = model.input_embeddings(batch["inputs"], batch.get("puzzle_identifiers"))
    cos, sin, mask = model.attention_context(None, None)
    L = lambda zl, zh: model.L_level(zl + (zh + x), cos, sin, mask)  # noqa: E731
    H = lambda zh, zl: model.H_level(zh + zl, cos, sin, mask)  # noqa: E731
    z_H, z_L = carry.z_H, carry.z_L
    z_L = L(z_L, z_H)
    z_L = L(z_L, z_H)
    z_H = H(z_H, z_L)
    z_L = L(z_L, z_H)
    z_H, z_L = jax.lax.stop_gradient((z_H, z_L))
    z_H = H(z_H, L(z_L, z_H))
    return model.lm_head(z_H)[:, model.config.puzzle_emb_len:]


def test_one_step_gradient_flows_only_through_the_last_L_and_H_calls():
    model = HRM(TINY, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, (nnx.Param, PuzzleEmbedding), ...)
    batch = _batch(TINY)
    carry0 = model.reset_carry(jnp.ones((3,), bool), model.empty_carry(3))
    carry0 = InnerCarry(z_H=carry0.z_H + 0.3, z_L=carry0.z_L - 0.2)
    weights = jax.random.normal(jax.random.key(3), (3, TINY.seq_len, TINY.vocab_size))

    def ours(params, carry):
        return jnp.sum(nnx.merge(graphdef, params, rest)(carry, batch)[1] * weights)

    def reference(params):
        return jnp.sum(_one_step_reference(nnx.merge(graphdef, params, rest), carry0, batch) * weights)

    def full_bptt(params):  # what the gradient would be without the one-step approximation
        m = nnx.merge(graphdef, params, rest)
        x = m.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        cos, sin, mask = m.attention_context(None, None)
        z_H, z_L = carry0.z_H, carry0.z_L
        for _ in range(2):
            for _ in range(2):
                z_L = m.L_level(z_L + (z_H + x), cos, sin, mask)
            z_H = m.H_level(z_H + z_L, cos, sin, mask)
        return jnp.sum(m.lm_head(z_H)[:, TINY.puzzle_emb_len:] * weights)

    g_ours, g_carry = jax.grad(ours, argnums=(0, 1))(params, carry0)
    g_ref = jax.grad(reference)(params)
    g_full = jax.grad(full_bptt)(params)
    np.testing.assert_allclose(ours(params, carry0), full_bptt(params), rtol=1e-5)  # same forward value
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(a, b, rtol=1e-3, atol=1e-5)
               for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_full)))
    # No gradient reaches the incoming carry.
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g_carry))
    # The puzzle table gets a gradient (through the injection of the last L call) only on its batch rows.
    g_table = np.asarray(g_ours["puzzle_emb"][...])
    used = set(np.asarray(batch["puzzle_identifiers"]).tolist())
    for row in range(TINY.num_puzzle_identifiers):
        assert (np.abs(g_table[row]).max() > 0) == (row in used)


def test_causal_mode_logits_at_or_before_t_ignore_later_tokens():
    cfg = TINY.replace(causal=True, puzzle_emb_ndim=0, halt_max_steps=3)
    model = HRM(cfg, rngs=nnx.Rngs(0))
    batch = _batch(cfg, b=2)
    t = 4
    changed = dict(batch, inputs=batch["inputs"].at[:, t + 1].set((batch["inputs"][:, t + 1] + 1) % cfg.vocab_size))
    run = jax.jit(lambda b: act.act_infer(model, b)[0]["logits"])  # 3 segments x (2 H x 2 L) cycles
    a, b = run(batch), run(changed)
    np.testing.assert_array_equal(a[:, :t + 1], b[:, :t + 1])
    assert not np.allclose(a[:, t + 1:], b[:, t + 1:])
    # Through the training path too: every segment's carry at positions <= t is unchanged.
    ca, cb = act.initial_carry(model, batch), act.initial_carry(model, changed)
    for _ in range(3):
        ca, oa = act.act_step(model, ca, batch, training=False)
        cb, ob = act.act_step(model, cb, changed, training=False)
        np.testing.assert_array_equal(ca.inner.z_H[:, :t + 1], cb.inner.z_H[:, :t + 1])
        np.testing.assert_array_equal(oa["logits"][:, :t + 1], ob["logits"][:, :t + 1])


def test_causal_packed_segments_do_not_see_each_other_and_q_reads_last_valid_token():
    cfg = TINY.replace(causal=True, puzzle_emb_ndim=0, seq_len=8)
    model = HRM(cfg, rngs=nnx.Rngs(0))
    nnx.update(model, {"q_head": {"kernel": nnx.Param(jax.random.normal(jax.random.key(0), (16, 2)))}})
    seg = jnp.array([[1, 1, 1, 2, 2, 2, 0, 0]])
    pos = jnp.array([[0, 1, 2, 0, 1, 2, 0, 0]])
    inputs = jnp.array([[3, 4, 5, 6, 7, 8, 0, 0]])
    carry = model.reset_carry(jnp.ones((1,), bool), model.empty_carry(1))
    _, packed, q_packed, _ = model(carry, {"inputs": inputs, "segment_ids": seg, "positions": pos})
    _, alone, _, _ = model(carry, {"inputs": jnp.array([[6, 7, 8, 1, 1, 1, 1, 1]])})
    np.testing.assert_allclose(packed[0, 3:6], alone[0, :3], atol=1e-5)  # segment 2 == the same tokens alone
    # Padding after the last segment does not change the Q head (it reads position 5, the last valid one).
    _, _, q_other_pad, _ = model(carry, {"inputs": inputs.at[0, 6:].set(9), "segment_ids": seg, "positions": pos})
    np.testing.assert_allclose(q_packed, q_other_pad, atol=1e-6)
    with pytest.raises(ValueError, match="puzzle_emb_ndim=0"):
        HRM(TINY.replace(causal=True), rngs=nnx.Rngs(0))(
            model.empty_carry(1), {"inputs": inputs[:, :10], "segment_ids": seg})


def test_config_validation():
    with pytest.raises(ValueError, match="pos_encodings"):
        HRMConfig(pos_encodings="alibi")
    with pytest.raises(ValueError, match="divisible"):
        HRMConfig(hidden_size=100, num_heads=8)
    assert HRMConfig(puzzle_emb_ndim=100, hidden_size=64).puzzle_emb_len == 2
