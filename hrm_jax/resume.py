"""Where a training run starts: the trainer's resume policy over `checkpoint.py`'s I/O.

Order (`restore_or_init`):
  1. this workdir's newest checkpoint whose metadata matches the run (model config, data spec, global batch,
     tokenizer fingerprint) and whose arrays have this state's layout; another configuration or layout is refused
     with an error naming the fields or arrays. A damaged step (unreadable files) is skipped with a one-line
     warning naming the file; once an older step restores, each damaged newer one is moved aside as
     `<step>.damaged`, so the run saves that step again. When steps exist and none restores, the run stops with
     an error listing each step's cause (and moves nothing): never a silent fresh start;
  2. else `config.init_from`: parameters (and buffers, puzzle table) from another run's checkpoint or a Hugging
     Face HRM-Text folder, fresh optimiser, carry and data position; a checkpoint of another family is
     refused, and a puzzle table stored for another number of puzzles is reset to its mean row (TRM);
  3. else a fresh init.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
from absl import logging
from flax import nnx

from hrm_jax import checkpoint as ckpt_lib


class NoRestorableCheckpointError(RuntimeError):
    """Checkpoints exist but none of them restores."""


def _with_params(fresh, params, buffers, puzzle_emb=None):
    """A fresh state carrying loaded parameters (and an EMA that starts from them, when the run keeps one)."""
    ema = jax.tree.map(lambda p: p.copy(), params) if jax.tree.leaves(fresh.ema_params) else fresh.ema_params
    return fresh.replace(params=params, buffers=buffers, ema_params=ema,
                         puzzle_emb=fresh.puzzle_emb if puzzle_emb is None else puzzle_emb)


def restore_or_init(manager: ckpt_lib.CheckpointManager, trainer, data_iter, fingerprint: dict):
    """The state to train from (see the module docstring); `data_iter` is moved to the restored position."""
    target = ckpt_lib.abstract_with_shardings(trainer.abstract_state, trainer.state_shardings)
    damaged: list[ckpt_lib.DamagedCheckpointError] = []
    for step in reversed(manager.all_steps()):
        try:
            manager.check_fingerprint(step, fingerprint)
            manager.check_layout(step, target)
            state = manager.restore(step, target, data_iter)
        except ckpt_lib.DamagedCheckpointError as e:
            logging.warning("%s; trying the previous one", e)
            damaged.append(e)
            continue
        for e in damaged:
            logging.warning("moved the damaged checkpoint %s aside to %s", manager.step_dir(e.step),
                            manager.move_aside(e.step))
        logging.info("resumed from %s/%d", manager.directory, step)
        return state
    if damaged:
        raise NoRestorableCheckpointError(
            f"no checkpoint in {manager.directory} restores; refusing to start afresh over them:\n  "
            + "\n  ".join(str(e) for e in damaged)
            + "\nMove the folder away to start afresh, or repair the files.")
    state = trainer.init_state()
    if trainer.config.init_from:
        state = init_from(trainer.config.init_from, trainer, state)
    return state


def init_from(path: str, trainer, fresh):
    """Parameters, puzzle table and buffers from another run's latest checkpoint (or, for HRM-Text, from a
    Hugging Face folder); the optimiser, carry and data position start fresh."""
    if os.path.exists(os.path.join(path, "config.json")) and not ckpt_lib.is_checkpoint_folder(path):
        return _init_from_hf(path, trainer, fresh)
    source = ckpt_lib.CheckpointManager(ckpt_lib.checkpoints_dir(path), read_only=True)
    try:
        step = source.latest_step()
        if step is None:
            raise FileNotFoundError(f"config.init_from: no checkpoint found under {path}")
        target = ckpt_lib.abstract_with_shardings(trainer.abstract_state, trainer.state_shardings)
        meta = source.read_meta(step)
        if meta.get("model_family", trainer.family.name) != trainer.family.name:
            raise ckpt_lib.IncompatibleCheckpointError(
                f"config.init_from {path} (step {step}) holds a {meta['model_family']!r} model; this run is "
                f"model.family={trainer.family.name!r}")
        table_target = target.puzzle_emb
        saved_ids = (meta.get("model") or {}).get("num_puzzle_identifiers")
        ours_ids = getattr(trainer.family.model_config, "num_puzzle_identifiers", None)
        reset_table = bool(jax.tree.leaves(table_target)) and saved_ids is not None and saved_ids != ours_ids
        if reset_table:  # the stored table has another number of puzzles: restore it as stored, then reset
            table_target = jax.tree.map(lambda a: jax.ShapeDtypeStruct((saved_ids, *a.shape[1:]), a.dtype,
                                                                       sharding=a.sharding), table_target)
        partial = {"params": target.params, "puzzle_emb": table_target, "buffers": target.buffers}
        try:
            restored = source.restore_arrays(step, partial)
        except ckpt_lib.IncompatibleCheckpointError as e:
            raise ckpt_lib.IncompatibleCheckpointError(f"config.init_from {path} does not fit this model: {e}") \
                from None
    finally:
        source.close()
    table = restored["puzzle_emb"]
    if reset_table:
        table = _mean_row_table(table, target.puzzle_emb, trainer.state_shardings.puzzle_emb)
        logging.warning("config.init_from %s: its puzzle table has %d identifiers, this run %d: every row reset to "
                        "the mean row (TRM's load_checkpoint, for fine-tuning on new puzzles)", path, saved_ids,
                        ours_ids)
    logging.info("initialised parameters from %s (step %d)", path, step)
    return _with_params(fresh, restored["params"], restored["buffers"], table)


def _mean_row_table(table, target, shardings):
    """Every row of this run's table set to the mean row of the loaded one (the original TRM's reset when a
    checkpoint's puzzle embedding has another shape)."""
    def one(loaded, like, sharding):
        mean = jnp.mean(jnp.asarray(loaded, jnp.float32), axis=0, keepdims=True)
        return jax.device_put(jnp.broadcast_to(mean, like.shape).astype(like.dtype), sharding)

    return jax.tree.map(one, table, target, shardings)


def _init_from_hf(path: str, trainer, fresh):
    """A transformers HRM-Text folder: its config must be the run's model (shapes, cycles, vocabulary)."""
    from hrm_jax import hf  # noqa: PLC0415

    if trainer.family.name != "hrm_text":
        raise ckpt_lib.IncompatibleCheckpointError(f"config.init_from {path} is a Hugging Face folder: it needs "
                                                   f"model.family=hrm_text, not {trainer.family.name!r}")
    theirs = dataclasses.asdict(hf.read_config(path))
    ours = dataclasses.asdict(trainer.family.model_config)
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_layers_per_stack", "num_attention_heads",
            "head_dim", "H_cycles", "L_cycles", "tie_word_embeddings")
    diffs = [f"{k}: folder {theirs[k]!r} vs this run {ours[k]!r}" for k in keys if theirs[k] != ours[k]]
    if diffs:
        raise ckpt_lib.IncompatibleCheckpointError(f"config.init_from {path} does not fit this model:\n  " +
                                                   "\n  ".join(diffs))
    model = hf.from_pretrained(path, dtype=trainer.family.dtype)
    _, params, buffers = nnx.split(model, nnx.Param, ...)
    params = jax.device_put(params, trainer.state_shardings.params)
    buffers = jax.device_put(buffers, trainer.state_shardings.buffers)
    logging.info("initialised parameters from the Hugging Face folder %s", path)
    return _with_params(fresh, params, buffers)
