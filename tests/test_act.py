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


def _causal_family(causal_act_halting: bool):
    from hrm_jax.families import HRMFamily  # noqa: PLC0415
    cfg = HRMConfig(vocab_size=9, seq_len=8, puzzle_emb_ndim=0, hidden_size=16, num_heads=2, H_layers=1, L_layers=1,
                    halt_max_steps=3, halt_exploration_prob=0.5, forward_dtype="float32", causal=True)
    return HRMFamily(cfg, "softmax_cross_entropy", code=True, causal_act_halting=causal_act_halting)


def _causal_runner(family, steps=7):
    """batch -> logits and halted of `steps` consecutive training segments (family.train_segment, the train step's
    path), the same batch and rng stream each time; a Q head that halts some slots early when asked. Compiled once."""
    model = _model(q_bias=(0.0, 0.0), q_kernel_std=1.0, cfg=family.model_config)
    segment = jax.jit(lambda carry, data, rng: family.train_segment(model, carry, data, rng))

    def run(batch):
        data = family.model_batch(batch)
        carry = family.initial_carry(model, data)
        out = []
        for i in range(steps):
            carry, outputs = segment(carry, data, jax.random.key(i))
            out.append((np.asarray(outputs["logits"]), np.asarray(carry.halted)))
        return out

    return run


def _code_batch(seed=0, b=3, s=8):
    rng = np.random.default_rng(seed)
    return {"inputs": jnp.asarray(rng.integers(0, 9, (b, s)), jnp.int32),
            "targets": jnp.asarray(rng.integers(0, 9, (b, s)), jnp.int32),
            "segment_ids": jnp.ones((b, s), jnp.int32), "positions": jnp.tile(jnp.arange(s), (b, 1)),
            "loss_mask": jnp.ones((b, s), jnp.int32)}


def test_causal_training_is_causal_through_act_steps():
    """Perturbing any late token changes no earlier logit, at any of 7 training segments (resets included): the
    causal HRM trains with exactly generation_segments segments per example, halting independent of the tokens."""
    family = _causal_family(causal_act_halting=False)
    assert family.fixed_train_segments == family.model_config.num_generation_segments == 3
    batch = _code_batch()
    run = _causal_runner(family)
    base = run(batch)
    assert [h.all() for _, h in base] == [False, False, True] * 2 + [False]  # every slot halts at segment 3
    for t in range(4, 8):
        changed = dict(batch, inputs=batch["inputs"].at[:, t].set((batch["inputs"][:, t] + 1) % 9))
        for step, ((a, _), (b, _)) in enumerate(zip(base, run(changed))):
            np.testing.assert_array_equal(a[:, :t], b[:, :t], err_msg=f"token {t}, segment {step}")
            assert not np.array_equal(a[:, t:], b[:, t:])


def test_causal_act_halting_flag_is_not_causal():
    """What the flag trades away (why it is off by default): Q halting reads the last position, so a late token
    changes which slots halt and reset, and with them earlier logits."""
    family = _causal_family(causal_act_halting=True)
    assert family.fixed_train_segments is None
    batch = _code_batch()
    run = _causal_runner(family)
    base = run(batch)
    leaked = False
    for t in range(4, 8):
        for v in range(1, 9):
            changed = dict(batch, inputs=batch["inputs"].at[:, t].set((batch["inputs"][:, t] + v) % 9))
            other = run(changed)
            leaked |= any(not np.array_equal(a[:, :t], b[:, :t]) for (a, _), (b, _) in zip(base, other))
            if leaked:
                break
        if leaked:
            break
    assert leaked


def test_fixed_segments_rejects_zero():
    model = _model()
    batch = _batch(0)
    with pytest.raises(ValueError, match="fixed_segments must be >= 1"):
        act.act_step(model, act.initial_carry(model, batch), batch, training=True, fixed_segments=0)


def test_causal_act_halting_needs_the_causal_hrm():
    from hrm_jax import config as config_lib  # noqa: PLC0415
    c = config_lib.base_config()
    c.data.kind, c.model.hrm.causal_act_halting = "synthetic", True
    with pytest.raises(config_lib.ConfigError, match="config.model.hrm.causal_act_halting"):
        config_lib.validate(c)
    c.model.hrm.causal = True
    config_lib.validate(c)
