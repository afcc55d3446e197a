"""TrainState, the jitted and sharded train / eval steps, and the train loop.

The model is split once (`nnx.split`) into a static graphdef and pytrees; the step functions are pure:
`train_step(state, batch) -> (state, metrics)`, jitted with explicit in/out shardings and the state donated.
The ACT carry is part of the state (batch-sharded), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx, struct

from hrm_jax import checkpoint as ckpt_lib
from hrm_jax import config as config_lib
from hrm_jax import data as data_lib
from hrm_jax import losses, metrics as metrics_lib, optim, parallel
from hrm_jax.model import act
from hrm_jax.model.hrm import HRM, HRMConfig, PuzzleEmbedding


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: updates applied so far
    params: nnx.State  # nnx.Param leaves (AdamATan2)
    puzzle_emb: nnx.State  # the sparse puzzle table (SignSGD); empty without a puzzle embedding
    buffers: nnx.State  # H_init, L_init: saved, never trained
    opt_state: Any
    puzzle_opt_state: Any
    carry: act.ACTCarry
    rng: jax.Array  # uint32 key data; per-step keys are fold_in(rng, step)


class NonFiniteLossError(FloatingPointError):
    """Raised when a train step produces a NaN/Inf loss; the last good checkpoint is kept."""


@dataclasses.dataclass
class Trainer:
    """Builds the model, optimisers, shardings and jitted steps for one config and mesh."""

    config: ml_collections.ConfigDict
    model_config: HRMConfig
    mesh: jax.sharding.Mesh

    def __post_init__(self):
        cfg, mc = self.config, self.model_config
        self.global_batch = cfg.data.global_batch_size
        abstract_model = nnx.eval_shape(lambda: HRM(mc, rngs=nnx.Rngs(0)))
        self.graphdef, params, table, buffers = nnx.split(abstract_model, nnx.Param, PuzzleEmbedding, ...)
        schedule = optim.cosine_schedule_with_warmup(cfg.optim.lr, cfg.optim.lr_warmup_steps, cfg.train.steps,
                                                     cfg.optim.lr_min_ratio)
        self.schedule = schedule
        adam = optim.adam_atan2(schedule, cfg.optim.beta1, cfg.optim.beta2, cfg.optim.weight_decay)
        self.tx = (optax.chain(optax.clip_by_global_norm(cfg.optim.grad_clip_norm), adam)
                   if cfg.optim.grad_clip_norm > 0 else adam)
        puzzle_schedule = optim.cosine_schedule_with_warmup(cfg.optim.puzzle_emb_lr, cfg.optim.lr_warmup_steps,
                                                            cfg.train.steps, cfg.optim.lr_min_ratio)
        self.puzzle_tx = optim.sparse_sign_sgd(puzzle_schedule, cfg.optim.puzzle_emb_weight_decay)

        self.example_batch = {
            "inputs": jax.ShapeDtypeStruct((self.global_batch, mc.seq_len), jnp.int32),
            "labels": jax.ShapeDtypeStruct((self.global_batch, mc.seq_len), jnp.int32),
            "puzzle_identifiers": jax.ShapeDtypeStruct((self.global_batch,), jnp.int32),
        }
        abstract_state = jax.eval_shape(self._init, jax.random.key_data(jax.random.key(0)))
        self.abstract_state = abstract_state
        self.state_shardings = self._shardings(abstract_state, params, table, buffers)
        self.batch_shardings = parallel.shard_batch_tree(self.example_batch, self.mesh)
        repl = parallel.replicated(self.mesh)
        self.init_fn = jax.jit(self._init, out_shardings=self.state_shardings)
        self.train_step = jax.jit(self._train_step, in_shardings=(self.state_shardings, self.batch_shardings),
                                  out_shardings=(self.state_shardings, repl), donate_argnums=0)
        self.eval_step = jax.jit(self._eval_step, in_shardings=(self.state_shardings, self.batch_shardings),
                                 out_shardings=repl)

    # ----- state --------------------------------------------------------------------------------------------------
    def _init(self, rng_data):
        rng = jax.random.wrap_key_data(rng_data)
        model = HRM(self.model_config, rngs=nnx.Rngs(params=jax.random.fold_in(rng, 0)))
        _, params, table, buffers = nnx.split(model, nnx.Param, PuzzleEmbedding, ...)
        batch = {k: jnp.zeros(v.shape, v.dtype) for k, v in self.example_batch.items()}
        return TrainState(step=jnp.zeros([], jnp.int32), params=params, puzzle_emb=table, buffers=buffers,
                          opt_state=self.tx.init(params), puzzle_opt_state=self.puzzle_tx.init(table),
                          carry=act.initial_carry(model, batch), rng=jax.random.key_data(jax.random.fold_in(rng, 1)))

    def _shardings(self, abstract_state: TrainState, params, table, buffers):
        mesh, repl = self.mesh, parallel.replicated(self.mesh)
        param_sh = parallel.state_shardings(params, mesh)
        opt_sh = optax.tree_map_params(self.tx, lambda _, s: s, abstract_state.opt_state, param_sh,
                                       transform_non_params=lambda _: repl,
                                       is_leaf=lambda x: isinstance(x, nnx.Variable))
        return TrainState(
            step=repl, params=param_sh, puzzle_emb=parallel.state_shardings(table, mesh),
            buffers=parallel.state_shardings(buffers, mesh), opt_state=opt_sh,
            puzzle_opt_state=jax.tree.map(lambda _: repl, abstract_state.puzzle_opt_state),
            carry=parallel.shard_batch_tree(abstract_state.carry, mesh), rng=repl)

    def init_state(self) -> TrainState:
        with jax.set_mesh(self.mesh):
            return self.init_fn(jax.random.key_data(jax.random.key(self.config.seed)))

    def model(self, state: TrainState) -> HRM:
        return nnx.merge(self.graphdef, state.params, state.puzzle_emb, state.buffers)

    # ----- steps --------------------------------------------------------------------------------------------------
    def _train_step(self, state: TrainState, batch):
        mc = self.model_config
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        draws = act.exploration_draws(rng, self.global_batch, mc.halt_max_steps)

        def loss_fn(params, table):
            model = nnx.merge(self.graphdef, params, table, state.buffers)
            carry, outputs = act.act_step(model, state.carry, batch, training=True, draws=draws)
            total, m = losses.act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps,
                                       self.config.model.loss_type)
            return total / self.global_batch, (carry, m)

        (loss, (carry, m)), (g_params, g_table) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            state.params, state.puzzle_emb)
        updates, opt_state = self.tx.update(g_params, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        table, puzzle_opt_state = state.puzzle_emb, state.puzzle_opt_state
        if jax.tree.leaves(table):  # rows present = the identifiers the carry's slots worked on this step
            t_updates, puzzle_opt_state = self.puzzle_tx.update(
                g_table, state.puzzle_opt_state, table, ids=carry.current_data["puzzle_identifiers"])
            table = optax.apply_updates(table, t_updates)
        m = dict(m, loss=loss, grad_norm=optax.global_norm(g_params), param_norm=optax.global_norm(params),
                 lr=self.schedule(state.step))
        new_state = state.replace(step=state.step + 1, params=params, puzzle_emb=table, opt_state=opt_state,
                                  puzzle_opt_state=puzzle_opt_state, carry=carry)
        return new_state, m

    def _eval_step(self, state: TrainState, batch):
        """The original's evaluation on one batch: a fresh carry, `halt_max_steps` segments (or adaptive)."""
        model = self.model(state)
        outputs, steps = act.act_infer(model, batch, adaptive=self.config.eval.adaptive)
        halted = jnp.ones(steps.shape, bool)
        _, m = losses.act_loss(outputs, batch["labels"], halted, steps, self.config.model.loss_type)
        return {k: m[k] for k in ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")}


def put_batch(trainer: Trainer, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    return parallel.global_batch_from_local({k: np.asarray(local_batch[k]) for k in trainer.example_batch},
                                            trainer.mesh)


def evaluate(trainer: Trainer, state: TrainState, test_iter, max_batches: int = 0) -> dict[str, float]:
    """Sums the eval metrics over the test split and divides by count (the original's eval/* numbers)."""
    totals: dict[str, float] = {}
    for i, batch in enumerate(test_iter):
        if max_batches and i >= max_batches:
            break
        with jax.set_mesh(trainer.mesh):
            m = jax.device_get(trainer.eval_step(state, put_batch(trainer, batch)))
        for k, v in m.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    count = max(totals.get("count", 0.0), 1.0)
    return {f"eval/{k}": v / count for k, v in totals.items() if k != "count"} | {"eval/count": totals.get("count", 0)}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Resume-or-init, then train to `config.train.steps`, checkpointing and evaluating along the way."""
    process_index, process_count = jax.process_index(), jax.process_count()
    train_ds, spec = data_lib.build(config, "train", process_index, process_count)
    model_config = config_lib.hrm_config(config, spec.as_dict())
    mesh = parallel.make_mesh(config.mesh.shape)
    trainer = Trainer(config, model_config, mesh)
    train_iter = iter(train_ds)
    writer = metrics_lib.MetricWriter(workdir, enabled=process_index == 0)
    manager = ckpt_lib.CheckpointManager(workdir, config, spec.as_dict())
    state = manager.restore_or_init(trainer, train_iter)
    start = int(jax.device_get(state.step))
    total = config.train.steps
    if process_index == 0:
        writer.write_config(config)
        logging.info("model: %s parameters; mesh %s; start at step %d of %d", metrics_lib.count_params(state.params),
                     dict(mesh.shape), start, total)
    progress = metrics_lib.Progress(total, start, tokens_per_step=config.data.global_batch_size * model_config.total_len,
                                    flops_per_step=metrics_lib.hrm_train_flops(model_config, config.data.global_batch_size))
    pending = None  # (step, device metrics): pulled after the next step is dispatched, so dispatch never stalls

    def flush(item):
        step, m = item
        m = jax.device_get(m)
        if not np.isfinite(m["loss"]):
            manager.wait()
            raise NonFiniteLossError(f"non-finite loss {m['loss']} at step {step}; stopped. The last good "
                                     f"checkpoint (step {manager.latest_step()}) is kept in {workdir}.")
        if step % config.train.log_every == 0 or step == total:
            writer.write_train(step, m, config.data.global_batch_size, progress.report(step))

    try:
        for step in range(start + 1, total + 1):
            batch = put_batch(trainer, next(train_iter))
            with jax.set_mesh(mesh):
                state, m = trainer.train_step(state, batch)
            if pending is not None:
                flush(pending)
            pending = (step, m)
            if config.train.checkpoint_every and step % config.train.checkpoint_every == 0 and step != total:
                flush(pending)
                pending = None
                manager.save(step, state, train_iter)
            if config.train.eval_every and step % config.train.eval_every == 0 and step != total:
                writer.write_scalars(step, _run_eval(config, trainer, state, process_index, process_count))
        if pending is not None:
            flush(pending)
        manager.save(total, state, train_iter, force=True)
        writer.write_scalars(total, _run_eval(config, trainer, state, process_index, process_count))
    finally:
        manager.close()
        writer.close()
    return state


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """`--config.mode=eval`: restore this workdir's latest checkpoint (or `init_from`) and evaluate on the test
    split; writes eval metrics to metrics.jsonl and `eval.json`."""
    process_index, process_count = jax.process_index(), jax.process_count()
    train_ds, spec = data_lib.build(config, "train", process_index, process_count)
    trainer = Trainer(config, config_lib.hrm_config(config, spec.as_dict()), parallel.make_mesh(config.mesh.shape))
    manager = ckpt_lib.CheckpointManager(workdir, config, spec.as_dict())
    try:
        if manager.latest_step() is None and not config.init_from:
            raise FileNotFoundError(f"eval: no checkpoint in {workdir} and no config.init_from")
        state = manager.restore_or_init(trainer, iter(train_ds))
    finally:
        manager.close()
    step = int(jax.device_get(state.step))
    out = _run_eval(config, trainer, state, process_index, process_count)
    if process_index == 0:
        writer = metrics_lib.MetricWriter(workdir)
        writer.write_scalars(step, out)
        writer.close()
        with open(f"{workdir}/eval.json", "w", encoding="utf-8") as f:
            json.dump({"step": step, **out}, f, indent=2)
    return out


def _run_eval(config, trainer, state, process_index, process_count) -> dict[str, float]:
    start = time.time()
    test_ds, _ = data_lib.build(config, "test", process_index, process_count)
    out = evaluate(trainer, state, iter(test_ds), config.train.eval_batches)
    out["eval/seconds"] = time.time() - start
    return out
