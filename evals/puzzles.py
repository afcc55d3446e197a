"""Puzzle evaluation of an HRM or TRM run: exact accuracy on the test split with ACT early halting (adaptive) and with
the fixed halt_max_steps segments, and the mean number of segments used; with test-time settings
(`--config.eval.test_time.*`, hrm_jax/test_time.py) also a `test_time` entry: more segments, noise, K trajectories
per puzzle selected by q_halt / majority vote, and the oracle upper bound.

    python -m evals.puzzles --workdir=runs/sudoku --config=configs/sudoku.py [--max_batches=N] [--out=FILE]
    python -m evals.puzzles --workdir=runs/sudoku --config=configs/sudoku.py --config.eval.test_time.trajectories=16 \
        --config.eval.test_time.noise_scale=0.1 --config.eval.test_time.segments_multiple=2
"""
from __future__ import annotations

import dataclasses
import json

import jax

from hrm_jax import data as data_lib, evaluation, families, restore, test_time


def check_puzzle_run(config) -> None:
    if config.model.family not in ("hrm", "trm") or config.data.kind != "puzzle":
        raise ValueError(f"evals.puzzles needs model.family 'hrm' or 'trm' and data.kind='puzzle'; got "
                         f"{config.model.family!r} and {config.data.kind!r}")


def evaluate_family(restored, family, workdir: str, max_batches: int = 0, *, global_batch: int = 0) -> dict:
    """One pass of `family` over the restored run's test split -> the `evaluate_puzzles` entry: count,
    exact_accuracy, accuracy (per cell), fill_accuracy (per cell to fill in), mean_segments; with test-time settings also every selection rule's
    `<rule>_exact_accuracy` / `<rule>_accuracy` and `segments_per_puzzle` (summed over the K trajectories)."""
    run_config = restored.config
    if global_batch:
        run_config = run_config.copy_and_resolve_references()
        run_config.data.global_batch_size = global_batch
    test_ds, spec = data_lib.build(run_config, "test", jax.process_index(), jax.process_count(), workdir=workdir,
                                   prepare=False)
    m = evaluation.evaluate_model(family, restored.model, iter(test_ds), restored.mesh,
                                  run_config.data.global_batch_size, spec.seq_len, max_batches)
    out = {"count": m.get("eval/count", 0.0), "exact_accuracy": m.get("eval/exact_accuracy", 0.0),
           "accuracy": m.get("eval/accuracy", 0.0), "fill_accuracy": m.get("eval/fill_accuracy", 0.0),
           "mean_segments": m.get("eval/steps", 0.0)}
    if family.test_time is not None:
        for rule in test_time.SELECTIONS:
            for metric in ("exact_accuracy", "accuracy"):
                out[f"{rule}_{metric}"] = m.get(f"eval/by_{rule}_{metric}", 0.0)
        out["segments_per_puzzle"] = m.get("eval/segments_total", 0.0)
        out["settings"] = dataclasses.asdict(family.test_time) | {"adaptive": family.eval_adaptive}
    return out


def evaluate_puzzles(config, workdir: str, max_batches: int = 0) -> dict:
    """{"adaptive": {...}, "fixed": {...}, "step": ...}, each with exact_accuracy, accuracy (per token),
    mean_segments and count, over the test split (the first `max_batches` batches when > 0), plus "test_time"
    (`evaluate_family`, adaptive halting as `eval.adaptive`) when `config.eval.test_time` asks for more than the
    plain evaluation. The model is loaded for inference (`restore.load_for_inference`) and evaluated by the one
    eval loop (`evaluation`)."""
    check_puzzle_run(config)
    restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
    result = {"step": restored.step}
    plain = families.with_test_time(restored.family, None)
    for name, adaptive in (("adaptive", True), ("fixed", False)):
        result[name] = evaluate_family(restored, evaluation.with_halting(plain, adaptive), workdir, max_batches)
    if restored.family.test_time is not None:
        result["test_time"] = evaluate_family(restored, restored.family, workdir, max_batches)
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

    app.run(lambda argv: runtime.run_or_fail(main, argv), flags_parser=runtime.parse_flags)
