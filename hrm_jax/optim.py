"""Optimisers of the original HRM as optax GradientTransformations, and its LR schedule.

* `adam_atan2`: the `adam-atan2` package's update (imoneoi), exactly: decoupled weight decay, lerp first moment,
  no epsilon, bias-1 correction multiplying the atan2 output. Covers every nn.Param (q_head bias included).
* `sparse_sign_sgd`: the puzzle-embedding optimiser (CastedSparseEmbeddingSignSGD): sign of the per-identifier
  summed gradient, decoupled weight decay, applied ONLY to the rows present in the batch.
* `cosine_schedule_with_warmup`: the original's `cosine_schedule_with_warmup_lr_lambda`.
* `ema_update`: TRM's parameter EMA (`models/ema.py` EMAHelper.update), applied after every step.
* `from_config`: the run's optimisers, built from its `optim` config node (the one place that reads it).

Step counting as the original: its `train_state.step` is incremented before use, so the first update uses t = 1.
optax counts from 0, so the schedules here take optax's `count` and evaluate the original at t = count + 1.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]


def cosine_schedule_with_warmup(base_lr: float, warmup_steps: int, total_steps: int,
                                min_ratio: float = 0.0, num_cycles: float = 0.5) -> Schedule:
    """lr(count) = the original's lambda at t = count + 1:
    base * t / warmup for t < warmup, else base * (min_ratio + max(0, (1 - min_ratio) * 0.5 * (1 + cos(pi * 2 *
    num_cycles * progress)))) with progress = (t - warmup) / max(1, total - warmup)."""

    def schedule(count):
        t = jnp.asarray(count, jnp.float32) + 1.0
        warm = base_lr * t / max(1, warmup_steps)
        progress = (t - warmup_steps) / max(1, total_steps - warmup_steps)
        cosine = base_lr * (min_ratio + jnp.maximum(
            0.0, (1.0 - min_ratio) * 0.5 * (1.0 + jnp.cos(math.pi * 2.0 * num_cycles * progress))))
        return jnp.where(t < warmup_steps, warm, cosine)

    return schedule


def _as_schedule(lr: float | Schedule) -> Schedule:
    return lr if callable(lr) else (lambda count: jnp.asarray(lr, jnp.float32))


class AdamATan2State(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def adam_atan2(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.95,
               weight_decay: float = 0.1) -> optax.GradientTransformation:
    """Per element, with t = count + 1:
        p <- p (1 - lr wd);  m <- m + (1-b1)(g - m);  v <- b2 v + (1-b2) g^2
        p <- p - lr / (1 - b1^t) * atan2(m, sqrt(v) / sqrt(1 - b2^t))
    returned as the update u with p + u equal to the above."""
    schedule = _as_schedule(learning_rate)

    def init(params):
        zeros = jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params)
        return AdamATan2State(count=jnp.zeros([], jnp.int32), mu=zeros, nu=jax.tree.map(jnp.copy, zeros))

    def update(grads, state, params):
        if params is None:
            raise ValueError("adam_atan2 needs params (decoupled weight decay)")
        t = state.count + 1
        lr = schedule(state.count)
        mu = jax.tree.map(lambda m, g: m + (1 - b1) * (g.astype(jnp.float32) - m), state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g.astype(jnp.float32)), state.nu, grads)
        step_size = lr / (1 - b1 ** t.astype(jnp.float32))
        bias2_sqrt = jnp.sqrt(1 - b2 ** t.astype(jnp.float32))

        def one(p, m, v):
            decayed = p * (1 - lr * weight_decay)
            new_p = decayed - step_size * jnp.arctan2(m, jnp.sqrt(v) / bias2_sqrt)
            return (new_p - p).astype(p.dtype)

        updates = jax.tree.map(one, params, mu, nu)
        return updates, AdamATan2State(count=t, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


class SparseSignSGDState(NamedTuple):
    count: jax.Array


def sparse_sign_sgd(learning_rate: float | Schedule, weight_decay: float) -> optax.GradientTransformationExtraArgs:
    """SignSGD with decoupled weight decay on the rows of an embedding table that appear in `ids`.

    `update(grads, state, params, ids=...)`: `grads` is the dense gradient of the table (JAX's gather transpose
    already sums the gradient of repeated ids, like the original's scatter_add over unique ids), `ids` the
    identifiers of the global batch. Rows not in `ids` get a zero update: neither decay nor step.
    """
    schedule = _as_schedule(learning_rate)

    def init(params):
        del params
        return SparseSignSGDState(count=jnp.zeros([], jnp.int32))

    def update(grads, state, params, *, ids=None, **unused):
        del unused
        if params is None or ids is None:
            raise ValueError("sparse_sign_sgd needs params and ids")
        lr = schedule(state.count)

        def one(g, p):
            present = jnp.zeros((p.shape[0],), bool).at[ids.reshape(-1)].set(True)[:, None]
            new_p = p * (1 - lr * weight_decay) - lr * jnp.sign(g)
            return jnp.where(present, new_p - p, 0.0).astype(p.dtype)

        return jax.tree.map(one, grads, params), SparseSignSGDState(count=state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def ema_update(ema_params, params, decay: float):
    """TRM's EMAHelper.update: shadow <- (1 - mu) * param + mu * shadow, every step, no bias correction (the
    shadow starts as a copy of the initial parameters). Only trainable parameters: the puzzle table is not EMA'd."""
    return jax.tree.map(lambda e, p: (1.0 - decay) * p + decay * e, ema_params, params)


class Optimisers(NamedTuple):
    """What the train step applies: `tx` to every nn.Param, `puzzle_tx` to the puzzle table; `schedule` is the
    parameters' learning rate (logged)."""

    tx: optax.GradientTransformation
    puzzle_tx: optax.GradientTransformationExtraArgs
    schedule: Schedule


def from_config(node, total_steps: int) -> Optimisers:
    """The optimisers of the `optim` config node (lr, lr_min_ratio, lr_warmup_steps, beta1, beta2, weight_decay,
    puzzle_emb_lr, puzzle_emb_weight_decay, grad_clip_norm; 0 = no clipping) over `total_steps` steps."""
    schedule = cosine_schedule_with_warmup(node.lr, node.lr_warmup_steps, total_steps, node.lr_min_ratio)
    adam = adam_atan2(schedule, node.beta1, node.beta2, node.weight_decay)
    tx = optax.chain(optax.clip_by_global_norm(node.grad_clip_norm), adam) if node.grad_clip_norm > 0 else adam
    puzzle_schedule = cosine_schedule_with_warmup(node.puzzle_emb_lr, node.lr_warmup_steps, total_steps,
                                                  node.lr_min_ratio)
    return Optimisers(tx, sparse_sign_sgd(puzzle_schedule, node.puzzle_emb_weight_decay), schedule)
