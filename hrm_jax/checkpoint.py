"""Orbax checkpoints: the train state, the data iterator and metadata, saved together; all Orbax calls live here.

Resume-or-init order (`CheckpointManager.restore_or_init`):
  1. this workdir's newest checkpoint whose metadata matches the run (model config, data spec, global batch,
     tokenizer fingerprint); a checkpoint from another config is refused with an error naming the fields;
     a checkpoint that fails to restore (truncated, partial) is skipped with a warning for the previous one;
  2. else `config.init_from`: parameters (and buffers, puzzle table) from another run's checkpoint, fresh
     optimiser, carry and data position; a puzzle table stored for another number of puzzles is reset to its mean
     row (TRM's load_checkpoint: fine-tuning on new puzzles);
  3. else a fresh init.
Saving is asynchronous; retention keeps the latest N plus every K-th step (`preservation_policy`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from hrm_jax import config as config_lib


class IncompatibleCheckpointError(ValueError):
    """A checkpoint written by a run with another model / data configuration."""


def run_fingerprint(config: ml_collections.ConfigDict, family, data_meta: dict) -> dict:
    """What must match for a checkpoint to be resumed: the family and its resolved model config, the data spec
    (tokenizer fingerprint included), the global batch. JSON-normalised, as it is stored."""
    fingerprint = {"model_family": family.name, "model": dataclasses.asdict(family.model_config),
                   "data": dict(data_meta), "global_batch_size": int(config.data.global_batch_size),
                   "ema": bool(config.optim.ema_decay)}
    return json.loads(json.dumps(fingerprint))


def _diff(saved: dict, current: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r} vs this run {b!r}")
    return out


def abstract_with_shardings(abstract, shardings):
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


def _with_params(fresh, params, buffers, puzzle_emb=None):
    """A fresh state carrying loaded parameters (and an EMA that starts from them, when the run keeps one)."""
    ema = jax.tree.map(lambda p: p.copy(), params) if jax.tree.leaves(fresh.ema_params) else fresh.ema_params
    return fresh.replace(params=params, buffers=buffers, ema_params=ema,
                         puzzle_emb=fresh.puzzle_emb if puzzle_emb is None else puzzle_emb)


def _mean_row_table(table, target, shardings):
    """Every row of this run's table set to the mean row of the loaded one (the original TRM's reset when a
    checkpoint's puzzle embedding has another shape)."""
    def one(loaded, like, sharding):
        mean = jnp.mean(jnp.asarray(loaded, jnp.float32), axis=0, keepdims=True)
        return jax.device_put(jnp.broadcast_to(mean, like.shape).astype(like.dtype), sharding)

    return jax.tree.map(one, table, target, shardings)


class CheckpointManager:
    def __init__(self, workdir: str, config: ml_collections.ConfigDict, family, data_meta: dict):
        self.config = config
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.fingerprint = run_fingerprint(config, family, data_meta)
        policies = [ocp.checkpoint_managers.LatestN(config.train.keep_latest)]
        if config.train.keep_every:
            policies.append(ocp.checkpoint_managers.EveryNSteps(config.train.keep_every))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=config.train.async_checkpoint, create=True,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies))
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "data", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iter, force: bool = False) -> None:
        meta = dict(self.fingerprint, step=int(step), config=json.loads(config_lib.to_json(self.config)))
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iter),
            meta=ocp.args.JsonSave(meta)), force=force)

    def _check_compatible(self, step: int) -> None:
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        saved = {k: meta.get(k) for k in self.fingerprint}
        diffs = _diff(saved, self.fingerprint)
        if diffs:
            raise IncompatibleCheckpointError(
                f"checkpoint {self.directory}/{step} was written by another configuration:\n  " + "\n  ".join(diffs)
                + "\nUse another --workdir, or restore the original settings.")

    def restore_or_init(self, trainer, data_iter) -> Any:
        target = abstract_with_shardings(trainer.abstract_state, trainer.state_shardings)
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                self._check_compatible(step)
            except IncompatibleCheckpointError:
                raise
            except Exception as e:  # unreadable metadata: a partial checkpoint
                logging.warning("checkpoint %d is unreadable (%s); trying the previous one", step, e)
                continue
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), data=grain.checkpoint.CheckpointRestore(data_iter)))
            except Exception as e:  # noqa: BLE001 (any failure of a damaged checkpoint means: use the previous)
                logging.warning("checkpoint %d failed to restore (%s: %s); falling back to the previous one",
                                step, type(e).__name__, e)
                continue
            logging.info("resumed from %s/%d", self.directory, step)
            return restored["state"]
        state = trainer.init_state()
        if self.config.init_from:
            state = self._init_from(self.config.init_from, trainer, state)
        return state

    def _init_from(self, path: str, trainer, fresh):
        """Parameters, puzzle table and buffers from another run's latest checkpoint (or, for HRM-Text, from a
        Hugging Face folder); the optimiser, carry and data position start fresh."""
        if os.path.exists(os.path.join(path, "config.json")):
            return self._init_from_hf(path, trainer, fresh)
        source = ocp.CheckpointManager(os.path.join(os.path.abspath(path), "checkpoints")
                                       if os.path.isdir(os.path.join(path, "checkpoints")) else os.path.abspath(path))
        step = source.latest_step()
        if step is None:
            raise FileNotFoundError(f"config.init_from: no checkpoint found under {path}")
        target = abstract_with_shardings(trainer.abstract_state, trainer.state_shardings)
        table_target, saved_ids = target.puzzle_emb, None
        try:
            meta = source.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            saved_ids = (meta.get("model") or {}).get("num_puzzle_identifiers")
        except Exception:  # noqa: BLE001 (no readable metadata: restore as this run's shapes)
            meta = {}
        if meta.get("model_family", trainer.family.name) != trainer.family.name:
            source.close()
            raise IncompatibleCheckpointError(
                f"config.init_from {path} (step {step}) holds a {meta['model_family']!r} model; this run is "
                f"model.family={trainer.family.name!r}")
        ours_ids = getattr(trainer.family.model_config, "num_puzzle_identifiers", None)
        reset_table = bool(jax.tree.leaves(table_target)) and saved_ids is not None and saved_ids != ours_ids
        if reset_table:  # the stored table has another number of puzzles: restore it as stored, then reset
            table_target = jax.tree.map(lambda a: jax.ShapeDtypeStruct((saved_ids, *a.shape[1:]), a.dtype,
                                                                       sharding=a.sharding), table_target)
        partial = {"params": target.params, "puzzle_emb": table_target, "buffers": target.buffers}
        try:
            restored = source.restore(step, args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(item=partial, partial_restore=True)))["state"]
        except Exception as e:
            raise IncompatibleCheckpointError(f"config.init_from {path} (step {step}) does not fit this model: {e}")
        finally:
            source.close()
        table = restored["puzzle_emb"]
        if reset_table:
            table = _mean_row_table(table, target.puzzle_emb, trainer.state_shardings.puzzle_emb)
            logging.warning("config.init_from %s: its puzzle table has %d identifiers, this run %d: every row "
                            "reset to the mean row (TRM's load_checkpoint, for fine-tuning on new puzzles)",
                            path, saved_ids, ours_ids)
        logging.info("initialised parameters from %s (step %d)", path, step)
        return _with_params(fresh, restored["params"], restored["buffers"], table)

    def _init_from_hf(self, path: str, trainer, fresh):
        """A transformers HRM-Text folder: its config must be the run's model (shapes, cycles, vocabulary)."""
        from flax import nnx  # noqa: PLC0415

        from hrm_jax import hf  # noqa: PLC0415

        if trainer.family.name != "hrm_text":
            raise IncompatibleCheckpointError(f"config.init_from {path} is a Hugging Face folder: it needs "
                                              f"model.family=hrm_text, not {trainer.family.name!r}")
        theirs = dataclasses.asdict(hf.read_config(path))
        ours = dataclasses.asdict(trainer.family.model_config)
        keys = ("vocab_size", "hidden_size", "intermediate_size", "num_layers_per_stack", "num_attention_heads",
                "head_dim", "H_cycles", "L_cycles", "tie_word_embeddings")
        diffs = [f"{k}: folder {theirs[k]!r} vs this run {ours[k]!r}" for k in keys if theirs[k] != ours[k]]
        if diffs:
            raise IncompatibleCheckpointError(f"config.init_from {path} does not fit this model:\n  " +
                                              "\n  ".join(diffs))
        model = hf.from_pretrained(path, dtype=trainer.family.dtype)
        _, params, buffers = nnx.split(model, nnx.Param, ...)
        params = jax.device_put(params, trainer.state_shardings.params)
        buffers = jax.device_put(buffers, trainer.state_shardings.buffers)
        logging.info("initialised parameters from the Hugging Face folder %s", path)
        return _with_params(fresh, params, buffers)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
