"""The one eval loop: a family's `eval_metrics` over test batches, jitted once, merged across batches as clu.metrics
Averages. The trainer evaluates its (EMA) weights with it during training; `--config.mode=eval` and evals/puzzles
evaluate a restored model (`hrm_jax/restore.py`) with it, with adaptive or fixed ACT halting."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from clu import metrics as clu_metrics
from flax import nnx

from hrm_jax import families, parallel
from hrm_jax.model.layers import PuzzleEmbedding

STATE_FILTERS = (nnx.Param, PuzzleEmbedding, ...)  # how models are split: params, puzzle table, buffers


def _as_averages(m: dict[str, np.ndarray]) -> dict[str, clu_metrics.Average]:
    """One eval batch's metric sums as clu Averages: per-sequence metrics over `count` (the original's eval/*
    numbers), token metrics over `tokens`."""
    out = {}
    for k, v in m.items():
        if k == "correct_tokens":
            out["token_accuracy"] = clu_metrics.Average(total=v, count=m["tokens"])
        elif k == "correct_fill_cells":
            out["fill_accuracy"] = clu_metrics.Average(total=v, count=m["fill_cells"])
        elif k == "fill_cells":
            continue
        elif k == "loss_sum":
            out["loss"] = clu_metrics.Average(total=v, count=m["tokens"])
        elif k not in ("count", "tokens"):
            out[k] = clu_metrics.Average(total=v, count=m["count"])
    return out


class Evaluator:
    """`family.eval_metrics` over global batches of `global_batch` x `seq_len` on `mesh`, for a model given as
    its graphdef and the states `nnx.split(model, *STATE_FILTERS)` returns."""

    def __init__(self, family, graphdef, mesh: jax.sharding.Mesh, global_batch: int, seq_len: int):
        self.family, self.graphdef, self.mesh = family, graphdef, mesh
        self.example_batch = families.example_batch(family.batch_keys, global_batch, seq_len)
        self._step = jax.jit(self._metrics, out_shardings=parallel.replicated(mesh))

    def _metrics(self, states, batch):
        with nnx.logical_axis_rules(parallel.LOGICAL_AXIS_RULES):
            return self.family.eval_metrics(nnx.merge(self.graphdef, *states), batch)

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return parallel.global_batch_from_local({k: np.asarray(local_batch[k]) for k in self.example_batch},
                                                self.mesh)

    def batch_metrics(self, states, local_batch) -> dict[str, np.ndarray]:
        with jax.set_mesh(self.mesh):
            return jax.device_get(self._step(states, self.put_batch(local_batch)))

    def __call__(self, states, batches, max_batches: int = 0) -> dict[str, float]:
        """`eval/<metric>` over `batches` (the first `max_batches` when > 0), plus eval/count and eval/tokens."""
        averages: dict[str, clu_metrics.Average] = {}
        counts = {"count": 0.0, "tokens": 0.0}
        for i, batch in enumerate(batches):
            if max_batches and i >= max_batches:
                break
            m = self.batch_metrics(states, batch)
            for k, avg in _as_averages(m).items():
                averages[k] = averages[k].merge(avg) if k in averages else avg
            for k in counts:
                counts[k] += float(m.get(k, 0.0))
        out = {f"eval/{k}": float(avg.compute()) for k, avg in averages.items()}
        if "eval/loss" in out:
            out["eval/perplexity"] = float(np.exp(min(out["eval/loss"], 50.0)))
        return out | {f"eval/{k}": v for k, v in counts.items() if v}


def evaluate_model(family, model, batches, mesh: jax.sharding.Mesh, global_batch: int, seq_len: int,
                   max_batches: int = 0, adaptive: bool | None = None) -> dict[str, float]:
    """`Evaluator` over one model; `adaptive` (HRM families) overrides the family's ACT halting for this call:
    True halts each sample when its Q head says so, False runs the fixed halt_max_steps segments."""
    if adaptive is not None:
        family = with_halting(family, adaptive)
    graphdef, *states = nnx.split(model, *STATE_FILTERS)
    return Evaluator(family, graphdef, mesh, global_batch, seq_len)(tuple(states), batches, max_batches)


def with_halting(family, adaptive: bool) -> Any:
    if not hasattr(family, "eval_adaptive"):
        raise ValueError(f"model.family={family.name!r} has no ACT halting to choose (adaptive={adaptive})")
    return dataclasses.replace(family, eval_adaptive=adaptive)


def evaluate_restored(restored, workdir: str, *, required: bool = True) -> dict[str, float]:
    """`--config.mode=eval`: the loss / accuracy of a restored model (`restore.load_for_inference`) on its run's
    test split, built without preparing anything (no tokenizer training, no corpus build); written to
    metrics.jsonl and `<workdir>/eval.json`. When the test data is gone and `required` is False (a benchmark
    follows), a one-line warning says so and {} is returned."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415

    from absl import logging  # noqa: PLC0415

    from hrm_jax import data as data_lib, metrics as metrics_lib  # noqa: PLC0415

    config = restored.config
    start = time.time()
    try:
        test_ds, spec = data_lib.build(config, "test", jax.process_index(), jax.process_count(), workdir=workdir,
                                       prepare=False, tokenizer=restored.tokenizer)
    except FileNotFoundError as e:
        if required:
            raise
        logging.warning("loss / accuracy evaluation skipped: %s", e)
        return {}
    out = evaluate_model(restored.family, restored.model, iter(test_ds), restored.mesh,
                         config.data.global_batch_size, spec.seq_len, config.train.eval_batches)
    out["eval/seconds"] = time.time() - start
    if jax.process_index() == 0:
        writer = metrics_lib.MetricWriter(workdir)
        writer.write_scalars(restored.step, out)
        writer.close()
        with open(os.path.join(workdir, "eval.json"), "w", encoding="utf-8") as f:
            json.dump({"step": restored.step, **out}, f, indent=2)
    return out

