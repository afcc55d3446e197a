"""ACT halting semantics and the inference while_loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, HRMConfig

CFG = HRMConfig(vocab_size=9, seq_len=6, puzzle_emb_ndim=16, num_puzzle_identifiers=3, hidden_size=16, num_heads=2,
                H_layers=1, L_layers=1, halt_max_steps=5, halt_exploration_prob=0.5, forward_dtype="float32")
B = 4


def _batch(seed):
    rng = np.random.default_rng(seed)
    return {"inputs": jnp.asarray(rng.integers(0, 9, (B, 6)), jnp.int32),
            "labels": jnp.asarray(rng.integers(0, 9, (B, 6)), jnp.int32),
            "puzzle_identifiers": jnp.asarray(rng.integers(0, 3, (B,)), jnp.int32)}


def _model(q_bias=(-5.0, -5.0), q_kernel_std=0.0, cfg=CFG):
    model = HRM(cfg, rngs=nnx.Rngs(0))
    model.q_head.bias[...] = jnp.asarray(q_bias, jnp.float32)
    if q_kernel_std:
        model.q_head.kernel[...] = q_kernel_std * jax.random.normal(jax.random.key(5), (cfg.hidden_size, 2))
    return model


def _draws(uniform, min_steps):
    return act.ExplorationDraws(uniform=jnp.asarray(uniform, jnp.float32), min_steps=jnp.asarray(min_steps, jnp.int32))


NO_EXPLORE = _draws([0.9] * B, [2] * B)


def test_eval_halts_exactly_at_max_steps():
    model = _model(q_bias=(5.0, -5.0))  # Q says halt; evaluation ignores it
    carry = act.initial_carry(model, _batch(0))
    for step in range(1, CFG.halt_max_steps + 1):
        carry, outputs = act.act_step(model, carry, _batch(0), training=False)
        assert "target_q_continue" not in outputs
        np.testing.assert_array_equal(carry.steps, step)
        assert bool(carry.halted.all()) == (step == CFG.halt_max_steps)


def test_training_halts_on_q_and_at_max_steps():
    model = _model(q_bias=(5.0, -5.0))  # q_halt > q_continue: halt after the first segment
    carry, _ = act.act_step(model, act.initial_carry(model, _batch(0)), _batch(0), training=True, draws=NO_EXPLORE)
    assert bool(carry.halted.all())
    model = _model(q_bias=(-5.0, 5.0))  # never by Q: only at max steps
    carry = act.initial_carry(model, _batch(0))
    for step in range(1, CFG.halt_max_steps + 1):
        carry, _ = act.act_step(model, carry, _batch(step), training=True, draws=NO_EXPLORE)
        assert bool(carry.halted.any()) == (step == CFG.halt_max_steps)
    # halt_max_steps == 1 disables Q halting and exploration: always halted, no target.
    model = _model(cfg=CFG.replace(halt_max_steps=1), q_bias=(-5.0, 5.0))
    carry, outputs = act.act_step(model, act.initial_carry(model, _batch(0)), _batch(0), training=True)
    assert bool(carry.halted.all()) and "target_q_continue" not in outputs


def test_exploration_enforces_a_per_sample_minimum():
    model = _model(q_bias=(5.0, -5.0))  # Q always wants to halt
    draws = _draws([0.1, 0.9, 0.2, 0.3], [3, 4, 2, 5])  # explore rows 0, 2, 3 (prob 0.5); row 1 does not
    carry = act.initial_carry(model, _batch(0))
    halted_at = [None] * B
    for step in range(1, 6):
        carry, _ = act.act_step(model, carry, _batch(0), training=True, draws=draws)
        for i in range(B):
            if halted_at[i] is None and bool(carry.halted[i]):
                halted_at[i] = step
        if all(h is not None for h in halted_at):
            break
    assert halted_at == [3, 1, 2, 5]


def test_halted_slots_reset_and_take_new_data_while_running_slots_keep_theirs():
    model = _model(q_bias=(-5.0, 5.0), q_kernel_std=0.0)
    b0, b1 = _batch(0), _batch(1)
    carry, _ = act.act_step(model, act.initial_carry(model, b0), b0, training=True, draws=NO_EXPLORE)
    # Pretend slots 0 and 2 halted.
    carry = carry.replace(halted=jnp.array([True, False, True, False]))
    before = carry
    carry, _ = act.act_step(model, carry, b1, training=True, draws=NO_EXPLORE)
    for k in b0:
        np.testing.assert_array_equal(carry.current_data[k][np.array([0, 2])], b1[k][np.array([0, 2])])
        np.testing.assert_array_equal(carry.current_data[k][np.array([1, 3])], b0[k][np.array([1, 3])])
    np.testing.assert_array_equal(carry.steps, [1, 2, 1, 2])
    # A reset slot computes exactly what a fresh carry computes on the same data.
    fresh, _ = act.act_step(model, act.initial_carry(model, b1), b1, training=True, draws=NO_EXPLORE)
    np.testing.assert_allclose(carry.inner.z_H[0], fresh.inner.z_H[0], atol=1e-6)
    assert not np.allclose(carry.inner.z_H[1], before.inner.z_H[1])  # running slots went on from their carry


def test_target_q_comes_from_a_second_forward_from_the_updated_carry():
    model = _model(q_bias=(0.1, -0.2), q_kernel_std=0.3)
    b = _batch(0)
    carry = act.initial_carry(model, b)
    for _ in range(CFG.halt_max_steps):
        prev = carry
        carry, outputs = act.act_step(model, carry, b, training=True, draws=NO_EXPLORE)
        _, _, nq_halt, nq_cont = model(carry.inner, carry.current_data)
        is_last = carry.steps >= CFG.halt_max_steps
        expected = jax.nn.sigmoid(jnp.where(is_last, nq_halt, jnp.maximum(nq_halt, nq_cont)))
        np.testing.assert_allclose(outputs["target_q_continue"], expected, rtol=1e-6)
        del prev


def test_train_mode_requires_draws():
    model = _model()
    with pytest.raises(ValueError, match="exploration draws"):
        act.act_step(model, act.initial_carry(model, _batch(0)), _batch(0), training=True)


def test_while_loop_equals_unrolled_python_loop_fixed_steps():
    model = _model(q_bias=(0.3, -0.3), q_kernel_std=0.5)
    b = _batch(0)
    outputs, steps = jax.jit(lambda bb: act.act_infer(model, bb))(b)
    carry = act.initial_carry(model, b)
    for _ in range(CFG.halt_max_steps):
        carry, ref = act.act_step(model, carry, b, training=False)
    assert bool(carry.halted.all())
    np.testing.assert_array_equal(steps, CFG.halt_max_steps)
    for k in ("logits", "q_halt_logits", "q_continue_logits"):
        np.testing.assert_allclose(outputs[k], ref[k], rtol=1e-5, atol=1e-5)


def _q_margins(model, b):
    """q_halt - q_continue per segment [max_steps, B], running every sample to max steps."""
    carry = model.reset_carry(jnp.ones((B,), bool), model.empty_carry(B))
    margins, logits = [], []
    for _ in range(CFG.halt_max_steps):
        carry, seg_logits, qh, qc = model(carry, b)
        margins.append(np.asarray(qh - qc))
        logits.append(np.asarray(seg_logits))
    return np.stack(margins), np.stack(logits)


def test_adaptive_while_loop_equals_unrolled_per_sample_halting():
    model = _model(q_bias=(0.0, 0.0), q_kernel_std=2.0)
    b = _batch(3)
    margins, logits = _q_margins(model, b)  # the carry does not depend on the q head, so a bias shifts margins
    for shift in sorted(-margins.ravel() + 1e-3):
        halts = (margins + shift > 0) | (np.arange(1, CFG.halt_max_steps + 1) == CFG.halt_max_steps)[:, None]
        expected_steps = halts.argmax(0) + 1
        if len(set(expected_steps.tolist())) > 2:
            break
    assert len(set(expected_steps.tolist())) > 2, "the test needs samples halting at different segments"
    model.q_head.bias[...] = jnp.asarray([shift, 0.0], jnp.float32)
    outputs, steps = jax.jit(lambda bb: act.act_infer(model, bb, adaptive=True))(b)
    np.testing.assert_array_equal(steps, expected_steps)
    np.testing.assert_allclose(outputs["logits"], logits[expected_steps - 1, np.arange(B)], rtol=1e-5, atol=1e-5)
