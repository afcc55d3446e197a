"""TrainState, the jitted and sharded train / eval steps, and the train loop: one path for every model family.

The model is split once (`nnx.split`) into a static graphdef and pytrees; the step functions are pure:
`train_step(state, batch) -> (state, metrics)`, jitted with explicit in/out shardings and the state donated.
A family (`families.py`) says how to build the model, what a batch holds, and its loss; the ACT carry (HRM) is
part of the state, batch-sharded, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
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
from hrm_jax import data as data_lib
from hrm_jax import evaluation, families, metrics as metrics_lib, optim, parallel, preemption, resume, step_memory
from hrm_jax.model.layers import PuzzleEmbedding
from hrm_jax.progress import Progress, say


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: updates applied so far
    params: nnx.State  # nnx.Param leaves (AdamATan2)
    puzzle_emb: nnx.State  # the sparse puzzle table (SignSGD); empty without a puzzle embedding
    buffers: nnx.State  # non-trainable state (H_init, L_init, z_L_init): saved, never trained
    opt_state: Any
    puzzle_opt_state: Any
    carry: Any  # the family's carry (HRM: ACTCarry; HRM-Text: {})
    rng: jax.Array  # uint32 key data; per-step keys are fold_in(rng, step)
    ema_params: Any  # exponential moving average of `params` (optim.ema_decay > 0), else {}; evaluation uses it


class NonFiniteLossError(FloatingPointError):
    """Raised when a train step produces a NaN/Inf loss; the last good checkpoint is kept."""


def _like_params(tree, params, param_shardings, other):
    """Shardings for an optimiser state: subtrees shaped like the params get the params' shardings."""
    structure = jax.tree.structure(params)
    return jax.tree.map(lambda node: param_shardings if jax.tree.structure(node) == structure else other,
                        tree, is_leaf=lambda node: jax.tree.structure(node) == structure)


@dataclasses.dataclass
class Trainer:
    """Builds the model, optimisers, shardings and jitted steps for one config, data spec and mesh."""

    config: ml_collections.ConfigDict
    family: Any
    seq_len: int
    mesh: jax.sharding.Mesh

    def __post_init__(self):
        cfg = self.config
        self.global_batch = cfg.data.global_batch_size
        abstract_model = nnx.eval_shape(lambda: self.family.build(nnx.Rngs(0)))
        self.graphdef, params, table, buffers = nnx.split(abstract_model, nnx.Param, PuzzleEmbedding, ...)
        self.tx, self.puzzle_tx, self.schedule = optim.from_config(cfg.optim, cfg.train.steps)

        self.example_batch = families.example_batch(self.family.batch_keys, self.global_batch, self.seq_len)
        self.abstract_state = jax.eval_shape(self._init, jax.random.key_data(jax.random.key(0)))
        self.state_shardings = self._shardings(self.abstract_state, params, table, buffers)
        self.batch_shardings = parallel.shard_batch_tree(self.example_batch, self.mesh)
        repl = parallel.replicated(self.mesh)
        self.init_fn = jax.jit(self._init, out_shardings=self.state_shardings)
        self.train_step = jax.jit(self._train_step, in_shardings=(self.state_shardings, self.batch_shardings),
                                  out_shardings=(self.state_shardings, repl), donate_argnums=0)
        self.evaluator = evaluation.Evaluator(self.family, self.graphdef, self.mesh, self.global_batch, self.seq_len)

    # ----- state --------------------------------------------------------------------------------------------------
    def _init(self, rng_data):
        rng = jax.random.wrap_key_data(rng_data)
        model = self.family.build(nnx.Rngs(params=jax.random.fold_in(rng, 0)))
        _, params, table, buffers = nnx.split(model, nnx.Param, PuzzleEmbedding, ...)
        batch = {k: jnp.zeros(v.shape, v.dtype) for k, v in self.example_batch.items()}
        carry = self.family.initial_carry(model, self.family.model_batch(batch))
        ema = jax.tree.map(jnp.copy, params) if self.config.optim.ema_decay else {}
        return TrainState(step=jnp.zeros([], jnp.int32), params=params, puzzle_emb=table, buffers=buffers,
                          opt_state=self.tx.init(params), puzzle_opt_state=self.puzzle_tx.init(table),
                          carry=carry, rng=jax.random.key_data(jax.random.fold_in(rng, 1)), ema_params=ema)

    def _shardings(self, abstract_state: TrainState, params, table, buffers):
        mesh, repl = self.mesh, parallel.replicated(self.mesh)
        param_sh = parallel.state_shardings(params, mesh)
        return TrainState(
            step=repl, params=param_sh, puzzle_emb=parallel.state_shardings(table, mesh),
            buffers=parallel.state_shardings(buffers, mesh),
            opt_state=_like_params(abstract_state.opt_state, abstract_state.params, param_sh, repl),
            puzzle_opt_state=jax.tree.map(lambda _: repl, abstract_state.puzzle_opt_state),
            carry=parallel.shard_batch_tree(abstract_state.carry, mesh), rng=repl,
            ema_params=param_sh if self.config.optim.ema_decay else {})

    def init_state(self) -> TrainState:
        with jax.set_mesh(self.mesh):
            return self.init_fn(jax.random.key_data(jax.random.key(self.config.seed)))

    def model_states(self, state: TrainState) -> tuple:
        """What evaluation merges with `graphdef`: EMA parameters when the run keeps them (as TRM evaluates and
        saves its EMA model), else the trained ones; the puzzle table; the buffers."""
        params = state.ema_params if self.config.optim.ema_decay else state.params
        return params, state.puzzle_emb, state.buffers

    def model(self, state: TrainState):
        """The model evaluation sees (`model_states` merged)."""
        return nnx.merge(self.graphdef, *self.model_states(state))

    # ----- steps --------------------------------------------------------------------------------------------------
    def _train_step(self, state: TrainState, batch):
        with nnx.logical_axis_rules(parallel.LOGICAL_AXIS_RULES):  # activation constraints resolve through these
            return self._train_step_body(state, batch)

    def _train_step_body(self, state: TrainState, batch):
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

        def loss_fn(params, table):
            model = nnx.merge(self.graphdef, params, table, state.buffers)
            total, carry, m = self.family.train_loss(model, state.carry, batch, rng)
            return total / self.global_batch, (carry, m)

        (loss, (carry, m)), (g_params, g_table) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            state.params, state.puzzle_emb)
        updates, opt_state = self.tx.update(g_params, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        table, puzzle_opt_state = state.puzzle_emb, state.puzzle_opt_state
        if jax.tree.leaves(table):  # rows present = the identifiers the carry's slots worked on this step
            t_updates, puzzle_opt_state = self.puzzle_tx.update(g_table, state.puzzle_opt_state, table,
                                                                ids=self.family.puzzle_ids(carry))
            table = optax.apply_updates(table, t_updates)
        m = dict(m, loss=loss, grad_norm=optax.global_norm(g_params), param_norm=optax.global_norm(params),
                 lr=self.schedule(state.step))
        ema = state.ema_params
        if self.config.optim.ema_decay:  # shadow = decay * shadow + (1 - decay) * params, after every step
            ema = optim.ema_update(ema, params, self.config.optim.ema_decay)
        return state.replace(step=state.step + 1, params=params, puzzle_emb=table, opt_state=opt_state,
                             puzzle_opt_state=puzzle_opt_state, carry=carry, ema_params=ema), m


def put_batch(trainer: Trainer, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    return parallel.global_batch_from_local({k: np.asarray(local_batch[k]) for k in trainer.example_batch},
                                            trainer.mesh)


def evaluate(trainer: Trainer, state: TrainState, test_iter, max_batches: int = 0) -> dict[str, float]:
    """The family's eval metrics of the state's (EMA) model over the test split (`evaluation.Evaluator`)."""
    return trainer.evaluator(trainer.model_states(state), test_iter, max_batches)


@dataclasses.dataclass
class Run:
    """Everything a train or eval run builds from its config."""

    trainer: Trainer
    spec: data_lib.DataSpec
    manager: ckpt_lib.CheckpointManager
    fingerprint: dict  # what a checkpoint must match to be resumed (checkpoint.run_fingerprint)

    def save(self, step: int, state: TrainState, data_iter, force: bool = False) -> None:
        self.manager.save(step, state, data_iter, ckpt_lib.meta_for(self.trainer.config, self.fingerprint, step),
                          force=force)


def setup(config: ml_collections.ConfigDict, workdir: str) -> tuple[Run, Any]:
    process_index, process_count = jax.process_index(), jax.process_count()
    train_ds, spec = data_lib.build(config, "train", process_index, process_count, workdir=workdir)
    family = families.build_family(config, spec.as_dict())
    trainer = Trainer(config, family, spec.seq_len, parallel.make_mesh(config.mesh.shape))
    manager = ckpt_lib.CheckpointManager.for_run(workdir, config)
    return Run(trainer, spec, manager, ckpt_lib.run_fingerprint(config, family, spec.as_dict())), train_ds


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Resume-or-init, then train to `config.train.steps`, checkpointing and evaluating along the way.

    The step is compiled first, its memory checked against the device's (`step_memory`); progress lines (step,
    loss, tokens/s, ETA measured after compilation) at least every 30 s; SIGTERM stops after the current step with
    a checkpoint (during compilation: at once, raising `preemption.Preempted`)."""
    run, train_ds = setup(config, workdir)
    trainer, manager = run.trainer, run.manager
    is_chief = jax.process_index() == 0
    train_iter = iter(train_ds)
    try:
        state = resume.restore_or_init(manager, trainer, train_iter, run.fingerprint)
    except BaseException:
        manager.close()
        raise
    start, total = int(jax.device_get(state.step)), config.train.steps
    # A resumed run drops what was logged after its checkpoint (a kill -9 leaves those steps behind).
    writer = metrics_lib.MetricWriter(workdir, enabled=is_chief, resume_step=start)
    tokens_per_step = config.data.global_batch_size * run.spec.seq_len
    if is_chief:
        writer.write_config(config)
        say(f"{trainer.family.name}: {trainer.family.num_params():,} parameters; mesh {dict(trainer.mesh.shape)}; "
            f"{'start' if start == 0 else 'resume'} at step {start} of {total} ({tokens_per_step:,} tokens/step)")
    pending = None  # (step, device metrics): pulled after the next step is dispatched, so dispatch never stalls

    def flush(item):
        step, m = item
        m = jax.device_get(m)
        if not np.isfinite(m["loss"]):
            manager.wait()
            raise NonFiniteLossError(f"non-finite loss {m['loss']} at step {step}; stopped. The last good "
                                     f"checkpoint (step {manager.latest_step()}) is kept in {workdir}.")
        if step % config.train.log_every == 0 or step == total:
            writer.write_train(step, m, config.data.global_batch_size, perf.report(step))
        if is_chief:
            progress.update(step, loss=float(m["loss"]))

    def save(step, force=False):
        run.save(step, state, train_iter, force=force)
        if is_chief:
            say(f"checkpoint step {step} -> {manager.directory}/{step}")

    with preemption.PreemptionSignal() as preempt:
        try:
            step_fn = trainer.train_step
            first = None
            if start < total:
                first = put_batch(trainer, next(train_iter))
                try:
                    # Multi-host: no early stop while compiling (hosts must agree; the step loop's check does).
                    poll = preempt.requested_here if jax.process_count() == 1 else (lambda: False)
                    step_fn = step_memory.compile_step(trainer, state, first, stop_requested=poll)
                except step_memory.CompilationInterrupted as e:
                    latest = manager.latest_step()
                    raise preemption.Preempted(
                        f"SIGTERM: {e}; nothing new to checkpoint ("
                        f"{'latest checkpoint: step %d' % latest if latest is not None else 'no step trained yet'}"
                        "); rerun the same command to resume") from None
            perf = metrics_lib.PerfMeter(start, tokens_per_step, trainer.family.flops_per_token() * tokens_per_step,
                                         total)
            progress = Progress("step", total, done=start, interval_s=30.0, rate_scale=tokens_per_step,
                                rate_unit="tokens/s")
            for step in range(start + 1, total + 1):
                batch = first if first is not None else put_batch(trainer, next(train_iter))
                first = None
                with jax.set_mesh(trainer.mesh):
                    state, m = step_fn(state, batch)
                if pending is not None:
                    flush(pending)
                pending = (step, m)
                if preempt.requested():
                    flush(pending)
                    save(step, force=True)
                    logging.warning("SIGTERM: stopped after step %d of %d with a checkpoint; rerun the same "
                                    "command to resume", step, total)
                    return state
                if config.train.checkpoint_every and step % config.train.checkpoint_every == 0 and step != total:
                    flush(pending)
                    pending = None
                    save(step)
                if config.train.eval_every and step % config.train.eval_every == 0 and step != total:
                    writer.write_scalars(step, _run_eval(config, trainer, state, workdir))
            if pending is not None:
                flush(pending)
            if start < total:
                save(total, force=True)
            writer.write_scalars(total, _run_eval(config, trainer, state, workdir))
        finally:
            manager.close()
            writer.close()
        return state


def _run_eval(config, trainer, state, workdir) -> dict[str, float]:
    start = time.time()
    test_ds, _ = data_lib.build(config, "test", jax.process_index(), jax.process_count(), workdir=workdir)
    out = evaluate(trainer, state, iter(test_ds), config.train.eval_batches)
    out["eval/seconds"] = time.time() - start
    return out
