"""Adaptive computation time (ACT) around the HRM, as pure functions over pytrees.

Training (`act_step`, the original's `HierarchicalReasoningModel_ACTV1.forward`): one segment per train step, with
a carry that persists across batches. Halted slots restart from H_init/L_init and take the new batch row; slots
still running keep their old example (the new row at that index is dropped, as in the original). Halting is
`steps >= halt_max_steps`, or in training `q_halt > q_continue` subject to per-sample exploration; the Q-learning
target comes from a second, gradient-free forward from the updated carry. With `no_ACT_continue` (TRM) the rule is
`q_halt > 0` and there is neither a Q-continue target nor a second forward.

Inference (`act_infer`): a `jax.lax.while_loop` over segments. `adaptive=False` reproduces the original's
evaluation (always exactly `halt_max_steps` segments); `adaptive=True` halts each sample when its Q head says so
and exits as soon as every sample has halted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from hrm_jax.model.hrm import HRM, InnerCarry


@struct.dataclass
class ACTCarry:
    inner: InnerCarry
    steps: jax.Array  # [B] int32, segments run on the current example
    halted: jax.Array  # [B] bool
    current_data: dict[str, jax.Array]  # the example each slot is working on


@struct.dataclass
class ExplorationDraws:
    """Per-sample random numbers of one training segment (the original's rand_like / randint_like)."""

    uniform: jax.Array  # [B] in [0, 1): explore when < halt_exploration_prob
    min_steps: jax.Array  # [B] int32 in [2, halt_max_steps]


def initial_carry(model: HRM, batch: dict[str, jax.Array]) -> ACTCarry:
    """Every slot starts halted, so the first step resets it and loads its batch row."""
    batch_size = batch["inputs"].shape[0]
    return ACTCarry(inner=model.empty_carry(batch_size),
                    steps=jnp.zeros((batch_size,), jnp.int32),
                    halted=jnp.ones((batch_size,), bool),
                    current_data={k: jnp.zeros_like(v) for k, v in batch.items()})


def exploration_draws(rng: jax.Array, batch_size: int, halt_max_steps: int) -> ExplorationDraws:
    k_uniform, k_steps = jax.random.split(rng)
    return ExplorationDraws(uniform=jax.random.uniform(k_uniform, (batch_size,)),
                            min_steps=jax.random.randint(k_steps, (batch_size,), 2, halt_max_steps + 1, jnp.int32))


def wants_halt(config, q_halt: jax.Array, q_continue: jax.Array) -> jax.Array:
    """The Q head's halt signal: q_halt > q_continue (HRM); q_halt > 0 when the model config sets
    `no_ACT_continue` (TRM: only the halt logit is learned)."""
    if getattr(config, "no_ACT_continue", False):
        return q_halt > 0
    return q_halt > q_continue


def _select_rows(flag_B: jax.Array, new: jax.Array, old: jax.Array) -> jax.Array:
    return jnp.where(flag_B.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


def act_step(model: HRM, carry: ACTCarry, batch: dict[str, jax.Array], *, training: bool,
             draws: ExplorationDraws | None = None,
             fixed_segments: int | None = None) -> tuple[ACTCarry, dict[str, jax.Array]]:
    """One ACT segment. In training with halt_max_steps > 1, `draws` (see `exploration_draws`) are required.

    `fixed_segments=N`: every slot halts after exactly N segments, training included (no Q halting, exploration
    or Q target, so no second forward). The causal HRM trains so by default: Q-based halting reads the Q head at
    the last position, so whether a slot halts -- and its carry resets -- would depend on later tokens."""
    cfg = model.config
    if fixed_segments is not None and fixed_segments < 1:
        raise ValueError(f"fixed_segments must be >= 1, got {fixed_segments}")
    inner = model.reset_carry(carry.halted, carry.inner)
    steps = jnp.where(carry.halted, 0, carry.steps)
    data = {k: _select_rows(carry.halted, batch[k], v) for k, v in carry.current_data.items()}

    inner, logits, q_halt, q_continue = model(inner, data)
    outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}

    steps = steps + 1
    if fixed_segments is not None:
        return ACTCarry(inner=inner, steps=steps, halted=steps >= fixed_segments, current_data=data), outputs
    is_last = steps >= cfg.halt_max_steps
    halted = is_last
    if training and cfg.halt_max_steps > 1:
        if draws is None:
            raise ValueError("act_step(training=True) needs exploration draws")
        q_halt_ng, q_continue_ng = jax.lax.stop_gradient((q_halt, q_continue))
        halted = halted | wants_halt(cfg, q_halt_ng, q_continue_ng)
        min_halt_steps = (draws.uniform < cfg.halt_exploration_prob).astype(jnp.int32) * draws.min_steps
        halted = halted & (steps >= min_halt_steps)
        if getattr(cfg, "no_ACT_continue", False):  # TRM: no Q-continue target, no second forward
            return ACTCarry(inner=inner, steps=steps, halted=halted, current_data=data), outputs
        # Q target from a second forward from the updated carry (no replay buffer, no target network).
        _, _, next_q_halt, next_q_continue = model(inner, data)
        next_q_halt, next_q_continue = jax.lax.stop_gradient((next_q_halt, next_q_continue))
        outputs["target_q_continue"] = jax.nn.sigmoid(
            jnp.where(is_last, next_q_halt, jnp.maximum(next_q_halt, next_q_continue)))
    return ACTCarry(inner=inner, steps=steps, halted=halted, current_data=data), outputs


def act_infer(model: HRM, batch: dict[str, jax.Array], *, adaptive: bool = False,
              max_steps: int | None = None, noise=None) -> tuple[dict[str, jax.Array], jax.Array]:
    """Inference over segments as a `jax.lax.while_loop`; returns (final outputs, segments used per sample [B]).

    adaptive=False: exactly `max_steps` (default halt_max_steps) segments for every sample, the original's eval.
    adaptive=True: a sample halts after the first segment where q_halt > q_continue (or at max_steps); its
    outputs freeze there, and the loop exits once all samples have halted.
    `noise` (`hrm_jax.test_time.Noise`): perturbs the carry before each segment and/or every module call's output,
    keyed by each sample's own segment index; None runs the unperturbed model.
    """
    max_steps = max_steps or model.config.halt_max_steps
    batch_size = batch["inputs"].shape[0]
    all_halted = jnp.ones((batch_size,), bool)
    inner0 = model.reset_carry(all_halted, model.empty_carry(batch_size))
    _, logits_like, q_like, _ = jax.eval_shape(model, inner0, batch)
    init = (inner0, jnp.zeros((batch_size,), jnp.int32), jnp.zeros((batch_size,), bool),
            jnp.zeros(logits_like.shape, logits_like.dtype), jnp.zeros(q_like.shape, q_like.dtype),
            jnp.zeros(q_like.shape, q_like.dtype))

    def cond(state):
        return ~jnp.all(state[2])

    def body(state):
        inner, steps, halted, logits, q_halt, q_continue = state
        if noise is None:
            new_inner, new_logits, new_q_halt, new_q_continue = model(inner, batch)
        else:
            new_inner, new_logits, new_q_halt, new_q_continue = model(noise.carry(inner, steps), batch,
                                                                      perturb=noise.calls(steps))
        active = ~halted
        inner = jax.tree.map(lambda n, o: _select_rows(active, n, o), new_inner, inner)
        logits = _select_rows(active, new_logits, logits)
        q_halt = _select_rows(active, new_q_halt, q_halt)
        q_continue = _select_rows(active, new_q_continue, q_continue)
        steps = steps + active.astype(jnp.int32)
        stop = steps >= max_steps
        if adaptive:
            stop = stop | wants_halt(model.config, new_q_halt, new_q_continue)
        return inner, steps, halted | (active & stop), logits, q_halt, q_continue

    _, steps, _, logits, q_halt, q_continue = jax.lax.while_loop(cond, body, init)
    return {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}, steps
