"""AdamATan2, sparse SignSGD and the schedule against hand-computed values."""

import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hrm_jax import optim


def test_schedule_counts_like_the_original():
    sched = optim.cosine_schedule_with_warmup(1e-4, warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert math.isclose(float(sched(0)), 1e-4 / 10, rel_tol=1e-6)  # first update uses t = 1, never lr 0
    assert math.isclose(float(sched(8)), 9e-5, rel_tol=1e-6)
    assert math.isclose(float(sched(9)), 1e-4, rel_tol=1e-6)  # t = warmup: cosine start
    assert math.isclose(float(sched(59)), 1e-4 * (0.1 + 0.9 * 0.5), rel_tol=1e-5)  # half way
    assert math.isclose(float(sched(109)), 1e-5, rel_tol=1e-5)  # the end: min ratio
    flat = optim.cosine_schedule_with_warmup(1e-4, 10, 110, min_ratio=1.0)
    assert all(math.isclose(float(flat(c)), 1e-4, rel_tol=1e-6) for c in (9, 50, 109, 500))


def test_adam_atan2_matches_the_reference_update():
    lr, b1, b2, wd = 0.01, 0.9, 0.95, 0.1
    tx = optim.adam_atan2(lr, b1, b2, wd)
    p = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array([0.0])}
    grads = [{"w": jnp.array([0.1, -0.2, 0.0]), "b": jnp.array([1e-12])},
             {"w": jnp.array([-0.3, 0.1, 0.5]), "b": jnp.array([-2.0])},
             {"w": jnp.array([0.2, 0.2, -0.1]), "b": jnp.array([0.5])}]
    state = tx.init(p)
    ref = {k: np.asarray(v, np.float64) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    v = {k: np.zeros_like(v) for k, v in ref.items()}
    for t, g in enumerate(grads, start=1):
        upd, state = tx.update(g, state, p)
        p = optax.apply_updates(p, upd)
        for k in ref:
            gk = np.asarray(g[k], np.float64)
            ref[k] = ref[k] * (1 - lr * wd)
            m[k] = m[k] + (1 - b1) * (gk - m[k])
            v[k] = b2 * v[k] + (1 - b2) * gk ** 2
            ref[k] = ref[k] - lr / (1 - b1 ** t) * np.arctan2(m[k], np.sqrt(v[k]) / math.sqrt(1 - b2 ** t))
        for k in ref:
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-6, atol=1e-7)
    # No epsilon: a 1e-12 gradient still moves the parameter by a full-size step (atan2 is scale-invariant).
    assert abs(float(p["b"][0])) > 1e-3


def test_adam_atan2_uses_the_schedule_at_t_plus_one():
    seen = []
    tx = optim.adam_atan2(lambda c: (seen.append(c), jnp.float32(0.0))[1], weight_decay=0.0)
    state = tx.init({"w": jnp.zeros(2)})
    tx.update({"w": jnp.ones(2)}, state, {"w": jnp.zeros(2)})
    assert int(seen[0]) == 0  # optax count 0 == the original's t = 1 (see cosine_schedule_with_warmup)


def test_sparse_sign_sgd_touches_only_present_rows_and_sums_duplicate_ids():
    lr, wd = 0.1, 0.5
    tx = optim.sparse_sign_sgd(lr, wd)
    table = jnp.arange(12, dtype=jnp.float32).reshape(4, 3) - 5.0
    # Dense table gradient as JAX's gather transpose gives it: row 1 appears twice (its two contributions summed).
    grad = jnp.zeros((4, 3)).at[1].set(jnp.array([0.2, -0.1, 0.0])).at[3].set(jnp.array([-1.0, 2.0, 0.0]))
    ids = jnp.array([1, 3, 1, 2])  # row 2 present with zero gradient: decayed only; row 0 absent: untouched
    state = tx.init(table)
    upd, state = tx.update(grad, state, table, ids=ids)
    new = np.asarray(optax.apply_updates(table, upd))
    t = np.asarray(table)
    expected = t.copy()
    for r in (1, 2, 3):
        expected[r] = t[r] * (1 - lr * wd) - lr * np.sign(np.asarray(grad[r]))
    np.testing.assert_allclose(new, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(new[0], t[0])
    with pytest.raises(ValueError, match="ids"):
        tx.update(grad, state, table)
