"""A trained model for inference: `load_for_inference(workdir | checkpoints folder | HF folder)`.

From a checkpoint, the family is rebuilt from what the checkpoint stores (its resolved config and fingerprint),
so no training pipeline, corpus or dataset is needed; only the weights (the EMA when the run kept one), the puzzle
table and the buffers are read, straight to their shardings on the target mesh: never the optimiser moments or the
ACT carry. The tokenizer is the run's own, checked against the fingerprint the checkpoint recorded. A Hugging Face
HRM-Text folder gives its model and the folder's tokenizer. evals/, export/ and `--config.mode=eval|export` load
models only through here; nothing outside training imports the Trainer.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from flax import nnx

from hrm_jax import checkpoint as ckpt_lib
from hrm_jax import config as config_lib
from hrm_jax import families, parallel
from hrm_jax.evaluation import STATE_FILTERS

# Fields of the caller's config that are about running, not about the trained model: they replace the stored ones.
RUNTIME_NODES = ("mode", "mesh", "eval", "export", "distributed")
RUNTIME_MODEL_FIELDS = ("attention_impl",)


class Restored(NamedTuple):
    family: Any  # the family (families.py) rebuilt from the checkpoint
    model: nnx.Module  # weights on the target mesh (EMA weights when the run kept an EMA)
    tokenizer: Any  # the run's tokenizer (input_pipeline.tokenizer.Tokenizer), None for puzzle runs
    step: int  # the checkpoint step (0 for a Hugging Face folder)
    config: ml_collections.ConfigDict  # the run's stored config with the caller's runtime fields
    mesh: jax.sharding.Mesh  # where the weights live


# Top-level nodes the recipe config (configs/mbpp.py) adds for its stage runner (hrm_jax/recipe.py); a stored
# config may carry them, and loading the model ignores them.
RECIPE_NODES = ("recipe", "pretrain", "srl")


def migrate_flat_model(stored: dict) -> dict:
    """A stored config of the flat `model.*` layout (checkpoints written before `model.hrm` / `model.hrm_text`)
    in today's layout, the same model: HRM's fields move to `model.hrm` (the transformer's shared ones are
    copied to `model.transformer`), `hrm_text_preset` / `hrm_text_init` / `remat` to `model.hrm_text`, and a
    loss the family ignored (HRM-Text, the causal transformer) becomes "". Other configs are returned as is."""
    model = stored.get("model")
    if not isinstance(model, dict) or "hrm_text_preset" not in model:
        return stored
    model = dict(model)
    hrm = {k: model.pop(k) for k in config_lib.FLAT_HRM_FIELDS if k in model}
    hrm_text = dict(model.pop("hrm_text", None) or {})
    hrm_text.update({new: model.pop(old) for old, new in config_lib.FLAT_HRM_TEXT_FIELDS.items() if old in model})
    transformer = dict(model.pop("transformer", None) or {})
    transformer.update({k: hrm[k] for k in config_lib.FLAT_TRANSFORMER_FIELDS if k in hrm})
    code = (stored.get("data") or {}).get("kind") in config_lib.CODE_DATA_KINDS
    if model.get("family") == "hrm_text" or (model.get("family") == "transformer" and code):
        model["loss_type"] = ""
    model.update(hrm=hrm, hrm_text=hrm_text, transformer=transformer)
    logging.info("the checkpoint's config has the flat model.* layout: read as model.hrm / model.hrm_text")
    return dict(stored, model=model)


def config_from_dict(stored: dict, base: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
    """A checkpoint's stored config (JSON) as a ConfigDict of this code's schema (a flat-layout one migrated,
    `migrate_flat_model`); a key this schema lacks is an error naming it (the checkpoint predates or postdates a
    config change)."""
    config = base if base is not None else config_lib.base_config()
    stored = migrate_flat_model(stored)

    def fill(node: ml_collections.ConfigDict, values: dict, prefix: str) -> None:
        for key, value in values.items():
            if not prefix and key in RECIPE_NODES and key not in node:
                continue  # the recipe's stage settings (configs/mbpp.py), not part of the trained model's run
            if key not in node:
                raise ckpt_lib.IncompatibleCheckpointError(
                    f"the checkpoint's config has config.{prefix}{key}, which this code does not know")
            if isinstance(node[key], ml_collections.ConfigDict) and isinstance(value, dict):
                fill(node[key], value, f"{prefix}{key}.")
            else:
                node[key] = tuple(value) if isinstance(value, list) else value

    fill(config, stored, "")
    return config


def _with_runtime(stored: ml_collections.ConfigDict, caller: ml_collections.ConfigDict | None):
    if caller is None:
        return stored
    for node in RUNTIME_NODES:
        if node in caller and node in stored:
            stored[node] = caller[node]
    for key in RUNTIME_MODEL_FIELDS:
        if key in caller.model and key in stored.model:
            stored.model[key] = caller.model[key]
    return stored


def load_tokenizer_for(config: ml_collections.ConfigDict, workdir: str, data_meta: dict):
    """The code run's tokenizer (`data.tokenizer` or `<workdir>/tokenizer/code.model`), verified against the
    fingerprint the checkpoint recorded; None for runs without one (puzzles)."""
    if config.data.kind not in config_lib.CODE_DATA_KINDS:
        return None
    from hrm_jax import data as data_lib  # noqa: PLC0415
    from input_pipeline import tokenizer as tok_lib  # noqa: PLC0415

    path = data_lib.tokenizer_path(config, workdir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"the run's tokenizer {path} is missing (config.data.tokenizer, else "
                                "<workdir>/tokenizer/code.model); pass --config.data.tokenizer=PATH")
    tokenizer = tok_lib.load_tokenizer(path)
    if data_meta.get("tokenizer_fingerprint"):
        tok_lib.verify_fingerprint(tokenizer, data_meta["tokenizer_fingerprint"], path)
    return tokenizer


def inference_source(workdir: str, config: ml_collections.ConfigDict | None) -> str:
    """What eval / export load: the workdir's checkpoint, else `config.init_from` (another run, an HF folder)."""
    if ckpt_lib.is_checkpoint_folder(workdir) or config is None or not config.init_from:
        return workdir
    logging.info("%s has no checkpoint: loading config.init_from %s", workdir, config.init_from)
    return config.init_from


def load_for_inference(path: str, config: ml_collections.ConfigDict | None = None, *,
                       mesh: jax.sharding.Mesh | None = None, step: int | None = None) -> Restored:
    """The model at `path`: a run's workdir or checkpoints folder (its newest readable step, or `step`), or a
    Hugging Face HRM-Text folder. `config` (optional) supplies only runtime fields (mesh, eval, export, attention
    implementation); the model itself is what the checkpoint says."""
    path = os.fspath(path)
    if not ckpt_lib.is_checkpoint_folder(path):
        if os.path.exists(os.path.join(path, "config.json")):
            return _from_hf(path, config, mesh)
        raise FileNotFoundError(f"{path}: no checkpoint (train first with --config.mode=train) and no Hugging Face "
                                "folder (config.json)")
    manager = ckpt_lib.CheckpointManager(ckpt_lib.checkpoints_dir(path), read_only=True)
    try:
        steps = manager.all_steps() if step is None else [step]
        if not steps:
            raise FileNotFoundError(f"{manager.directory}: no checkpoint (train first with --config.mode=train)")
        failures = []
        for s in reversed(steps):
            try:
                return _from_checkpoint(manager, s, path, config, mesh)
            except ckpt_lib.DamagedCheckpointError as e:
                logging.warning("%s; trying the previous one", e)
                failures.append(str(e))
        raise ckpt_lib.DamagedCheckpointError(steps[-1], manager.directory,
                                              "no step restores: " + "; ".join(failures))
    finally:
        manager.close()


def _model_fingerprint(fingerprint: dict) -> dict:
    """What must match between a checkpoint and the model its stored config rebuilds: the family and its model
    config, less the runtime fields the caller may change (the attention implementation)."""
    model = {k: v for k, v in (fingerprint.get("model") or {}).items() if k not in RUNTIME_MODEL_FIELDS}
    return {"model_family": fingerprint.get("model_family"), "model": model}


def _from_checkpoint(manager, step: int, workdir: str, caller, mesh) -> Restored:
    meta = manager.read_meta(step)
    if "config" not in meta or "data" not in meta:  # readable, but written before checkpoints stored them
        raise ckpt_lib.IncompatibleCheckpointError(
            f"checkpoint {manager.step_dir(step)} stores no config / data spec (written by an older version): "
            "its model cannot be rebuilt for inference")
    config = _with_runtime(config_from_dict(meta["config"]), caller)
    family = families.build_family(config, meta["data"])
    rebuilt = ckpt_lib.run_fingerprint(config, family, meta["data"])
    diffs = ckpt_lib.diff(_model_fingerprint(meta), _model_fingerprint(rebuilt))
    if diffs:
        raise ckpt_lib.IncompatibleCheckpointError(
            f"checkpoint {manager.step_dir(step)}: its stored config no longer builds the model it holds:\n  "
            + "\n  ".join(diffs))
    mesh = mesh or parallel.make_mesh(config.mesh.shape)
    abstract = nnx.eval_shape(lambda: family.build(nnx.Rngs(0)))
    graphdef, params, table, buffers = nnx.split(abstract, *STATE_FILTERS)

    def target(state):
        return ckpt_lib.abstract_with_shardings(state, parallel.state_shardings(state, mesh))

    weights = "ema_params" if meta.get("ema") else "params"
    restored = manager.restore_arrays(step, {weights: target(params), "puzzle_emb": target(table),
                                             "buffers": target(buffers)})
    model = nnx.merge(graphdef, restored[weights], restored["puzzle_emb"], restored["buffers"])
    if config.eval.get("generation_segments", 0):  # decode-time depth of a causal HRM / TRM (test-time compute)
        from hrm_jax import test_time  # noqa: PLC0415
        model = test_time.with_generation_segments(model, config.eval.generation_segments)
    tokenizer = load_tokenizer_for(config, workdir, meta["data"])
    logging.info("loaded %s for inference from %s (step %d, %s weights)", family.name, manager.step_dir(step),
                 step, "EMA" if meta.get("ema") else "trained")
    return Restored(family, model, tokenizer, step, config, mesh)


def _from_hf(path: str, caller, mesh) -> Restored:
    from hrm_jax import hf  # noqa: PLC0415
    from input_pipeline import tokenizer as tok_lib  # noqa: PLC0415

    config = _with_runtime(config_lib.base_config(), caller) if caller is None else caller
    dtype = jnp.dtype(config.model.forward_dtype)
    model = hf.from_pretrained(path, dtype=dtype)
    family = families.HrmTextFamily(model.config, dtype=dtype, attention_impl=config.model.attention_impl or None)
    mesh = mesh or parallel.make_mesh(config.mesh.shape)
    graphdef, *states = nnx.split(model, *STATE_FILTERS)
    states = [jax.device_put(s, parallel.state_shardings(s, mesh)) for s in states]
    model = nnx.merge(graphdef, *states)
    tokenizer = tok_lib.load_tokenizer(path) if os.path.exists(os.path.join(path, "tokenizer.json")) else None
    return Restored(family, model, tokenizer, 0, config, mesh)
