"""Stablemax / softmax cross-entropy, the ACT loss head and its metrics, causal-LM labels."""

import jax.numpy as jnp
import numpy as np
import pytest

from hrm_jax import losses

IGN = losses.IGNORE_LABEL_ID


def test_stablemax_cross_entropy_matches_its_formula_and_ignores():
    logits = jnp.array([[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]])
    labels = jnp.array([[0, IGN]])
    s = lambda x: np.where(x < 0, 1 / (1 - x + 1e-30), x + 1)  # noqa: E731
    row = s(np.array([1.0, -2.0, 0.5]))
    expected = -np.log(row[0] / row.sum())
    out = losses.stablemax_cross_entropy(logits, labels)
    np.testing.assert_allclose(out, [[expected, 0.0]], rtol=1e-6)


def test_softmax_cross_entropy_matches_log_softmax():
    logits = jnp.array([[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]])
    labels = jnp.array([[2, 1]])
    ls = logits - jnp.log(jnp.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, labels), [[-ls[0, 0, 2], -ls[0, 1, 1]]], rtol=1e-6)
    assert float(losses.softmax_cross_entropy(logits, jnp.array([[IGN, IGN]])).sum()) == 0.0


def _outputs(correct_rows, q_halt, q_cont, target=None):
    # 3 sequences x 4 positions, vocab 3; labels 1 everywhere except ignores.
    labels = jnp.array([[1, 1, 1, 1], [1, 1, IGN, IGN], [IGN] * 4])
    logits = np.zeros((3, 4, 3), np.float32)
    logits[..., 0] = 1.0
    for r in correct_rows:
        logits[r, :, 1] = 2.0
    out = {"logits": jnp.asarray(logits), "q_halt_logits": jnp.asarray(q_halt, jnp.float32),
           "q_continue_logits": jnp.asarray(q_cont, jnp.float32)}
    if target is not None:
        out["target_q_continue"] = jnp.asarray(target, jnp.float32)
    return out, labels


def test_act_loss_composition_and_metrics_over_halted_sequences():
    outputs, labels = _outputs([0], [1.0, -1.0, 0.5], [0.0, 0.2, -0.3], target=[0.9, 0.1, 0.5])
    halted = jnp.array([True, False, True])
    steps = jnp.array([3, 2, 4])
    total, m = losses.act_loss(outputs, labels, halted, steps, "softmax_cross_entropy")
    ce = lambda z: -np.log(np.exp(z[1]) / np.exp(z).sum())  # noqa: E731
    lm = ce(np.array([1.0, 2.0, 0.0])) + ce(np.array([1.0, 0.0, 0.0]))  # row 0 mean, row 1 mean, row 2 nothing
    bce = lambda x, y: np.log1p(np.exp(-abs(x))) + max(x, 0) - x * y  # noqa: E731
    q_halt = bce(1.0, 1.0) + bce(-1.0, 0.0) + bce(0.5, 1.0)  # row 2 has no labels: counts as "correct"
    q_cont = bce(0.0, 0.9) + bce(0.2, 0.1) + bce(-0.3, 0.5)
    np.testing.assert_allclose(m["lm_loss"], lm, rtol=1e-5)
    np.testing.assert_allclose(m["q_halt_loss"], q_halt, rtol=1e-5)
    np.testing.assert_allclose(m["q_continue_loss"], q_cont, rtol=1e-5)
    np.testing.assert_allclose(total, lm + 0.5 * (q_halt + q_cont), rtol=1e-5)
    # Metrics: only row 0 is halted and has labels.
    assert int(m["count"]) == 1 and int(m["exact_accuracy"]) == 1 and int(m["steps"]) == 3
    assert float(m["accuracy"]) == 1.0 and int(m["q_halt_accuracy"]) == 1
    # Without a target there is no q_continue term.
    outputs.pop("target_q_continue")
    total2, m2 = losses.act_loss(outputs, labels, halted, steps, "softmax_cross_entropy")
    assert "q_continue_loss" not in m2
    np.testing.assert_allclose(total2, lm + 0.5 * q_halt, rtol=1e-5)


def test_act_loss_rejects_unknown_loss_type():
    outputs, labels = _outputs([], [0.0] * 3, [0.0] * 3)
    with pytest.raises(ValueError, match="unknown loss_type"):
        losses.act_loss(outputs, labels, jnp.ones(3, bool), jnp.ones(3, jnp.int32), "hinge")


def test_causal_lm_labels_shift_within_segments_and_respect_the_loss_mask():
    targets = jnp.array([[5, 6, 7, 8, 9, 0]])
    seg = jnp.array([[1, 1, 1, 2, 2, 0]])
    mask = jnp.array([[0, 0, 1, 1, 1, 0]])
    out = losses.causal_lm_labels(targets, mask, seg)
    np.testing.assert_array_equal(out, [[IGN, 7, IGN, 9, IGN, IGN]])
    np.testing.assert_array_equal(losses.causal_lm_labels(targets), [[6, 7, 8, 9, 0, IGN]])
