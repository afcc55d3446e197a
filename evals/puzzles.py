"""Puzzle evaluation of an HRM run: exact accuracy on the test split with ACT early halting (adaptive) and with
the fixed halt_max_steps segments, and the mean number of segments used.

    python -m evals.puzzles --workdir=runs/sudoku --config=configs/sudoku.py [--max_batches=N] [--out=FILE]
"""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
from flax import nnx

from hrm_jax import data as data_lib, parallel, train


def _eval_fn(trainer: train.Trainer, adaptive: bool):
    family = dataclasses.replace(trainer.family, eval_adaptive=adaptive)

    @jax.jit
    def step(state, batch):
        with nnx.logical_axis_rules(parallel.LOGICAL_AXIS_RULES):
            return family.eval_metrics(trainer.model(state), batch)

    return step


def evaluate_puzzles(config, workdir: str, max_batches: int = 0) -> dict:
    """{"adaptive": {...}, "fixed": {...}, "step": ...}, each with exact_accuracy, accuracy (per token),
    mean_segments and count, over the test split (the first `max_batches` batches when > 0)."""
    if config.model.family != "hrm" or config.data.kind != "puzzle":
        raise ValueError(f"evals.puzzles needs model.family='hrm' and data.kind='puzzle'; got "
                         f"{config.model.family!r} and {config.data.kind!r}")
    run, state = train.restore_trained(config, workdir)
    trainer = run.trainer
    result = {"step": int(jax.device_get(state.step))}
    for name, adaptive in (("adaptive", True), ("fixed", False)):
        step = _eval_fn(trainer, adaptive)
        totals: dict[str, float] = {}
        test_ds, _ = data_lib.build(config, "test", jax.process_index(), jax.process_count(), workdir=workdir)
        for i, batch in enumerate(test_ds):
            if max_batches and i >= max_batches:
                break
            with jax.set_mesh(trainer.mesh):
                m = jax.device_get(step(state, train.put_batch(trainer, batch)))
            for k, v in m.items():
                totals[k] = totals.get(k, 0.0) + float(np.asarray(v))
        count = max(totals.get("count", 0.0), 1.0)
        result[name] = {"count": totals.get("count", 0.0), "exact_accuracy": totals.get("exact_accuracy", 0.0) / count,
                        "accuracy": totals.get("accuracy", 0.0) / count,
                        "mean_segments": totals.get("steps", 0.0) / count}
    return result


def main(argv) -> None:
    del argv
    from absl import flags  # noqa: PLC0415

    from hrm_jax import runtime  # noqa: PLC0415

    runtime.start(flags.FLAGS.workdir, capture_stdout=False)  # library output into <workdir>/log.txt
    out = evaluate_puzzles(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.max_batches)
    text = json.dumps(out, indent=2)
    if flags.FLAGS.out:
        with open(flags.FLAGS.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "The run's config file (configs/*.py[:variant]).")
    flags.DEFINE_string("workdir", None, "The run directory holding the checkpoint.")
    flags.DEFINE_integer("max_batches", 0, "Evaluate only the first N test batches (0: all).")
    flags.DEFINE_string("out", None, "Also write the result here as JSON.")
    flags.mark_flags_as_required(["config", "workdir"])
    from hrm_jax import runtime

    app.run(main, flags_parser=runtime.parse_flags)
