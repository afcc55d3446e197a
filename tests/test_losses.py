"""Stablemax / softmax cross-entropy, the ACT loss head and its metrics, causal-LM labels."""

import jax
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


def _stablemax_ce_grad_f64(logits_V: np.ndarray, label: int) -> np.ndarray:
    """d/dlogits of -log stablemax(logits)[label] in float64, the original's precision (s(x) = 1/(1-x) for x < 0,
    x + 1 otherwise; ds/dx = 1/(1-x)^2, resp. 1)."""
    x = logits_V.astype(np.float64)
    s = np.where(x < 0, 1 / (1 - np.minimum(x, 0)), x + 1)
    ds = np.where(x < 0, 1 / (1 - np.minimum(x, 0)) ** 2, 1.0)
    grad = ds / s.sum()
    grad[label] -= ds[label] / s[label]
    return grad


def _around(values, dtype):
    """Each value and its neighbours one ulp below and above, in `dtype`."""
    out = []
    for v in values:
        v = jnp.asarray(v, dtype)
        out += [jnp.nextafter(v, jnp.asarray(-jnp.inf, dtype)), v, jnp.nextafter(v, jnp.asarray(jnp.inf, dtype))]
    return jnp.stack(out)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_stablemax_gradient_is_finite_and_exact_at_the_branch_points(dtype, jit):
    """x == 1 made the untaken 1/(1-x) branch's infinite derivative times 0 a NaN (issue 15); x == 0 is the
    branch switch, x == -1 the zero of x + 1. Every logit row holds one such point (+-1 ulp); each row's label is
    the point itself, then another position, so both gradient terms are exercised."""
    points = _around([-1.0, 0.0, 1.0], dtype)  # [9]
    others = jnp.asarray([0.25, -2.0, 3.0], dtype)
    rows = jnp.concatenate([points[:, None], jnp.broadcast_to(others, (points.shape[0], 3))], axis=1)  # [9, 4]
    logits = jnp.stack([rows, rows])  # [2, 9, 4]: batch 0 labels the point, batch 1 labels position 2
    labels = jnp.stack([jnp.zeros(9, jnp.int32), jnp.full(9, 2, jnp.int32)])

    grad_fn = jax.grad(lambda lg: losses.stablemax_cross_entropy(lg, labels).sum())
    grad = np.asarray((jax.jit(grad_fn) if jit else grad_fn)(logits).astype(jnp.float32))
    assert np.isfinite(grad).all(), grad
    x64 = np.asarray(logits.astype(jnp.float32), np.float64)
    expected = np.stack([np.stack([_stablemax_ce_grad_f64(x64[b, i], int(labels[b, i])) for i in range(9)])
                         for b in range(2)])
    # The gradient is computed in fp32 and returned in the logits' dtype: fp32 rounding, resp. bf16 rounding.
    rtol = 1e-6 if dtype == jnp.float32 else 2.0 ** -8
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=1e-7)
