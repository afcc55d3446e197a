"""Puzzle evaluation of an HRM or TRM run: exact accuracy on the test split with ACT early halting (adaptive) and with
the fixed halt_max_steps segments, and the mean number of segments used.

    python -m evals.puzzles --workdir=runs/sudoku --config=configs/sudoku.py [--max_batches=N] [--out=FILE]
"""
from __future__ import annotations

import json

import jax

from hrm_jax import data as data_lib, evaluation, restore


def evaluate_puzzles(config, workdir: str, max_batches: int = 0) -> dict:
    """{"adaptive": {...}, "fixed": {...}, "step": ...}, each with exact_accuracy, accuracy (per token),
    mean_segments and count, over the test split (the first `max_batches` batches when > 0). The model is
    loaded for inference (`restore.load_for_inference`) and evaluated by the one eval loop (`evaluation`)."""
    if config.model.family not in ("hrm", "trm") or config.data.kind != "puzzle":
        raise ValueError(f"evals.puzzles needs model.family 'hrm' or 'trm' and data.kind='puzzle'; got "
                         f"{config.model.family!r} and {config.data.kind!r}")
    restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
    run_config = restored.config
    result = {"step": restored.step}
    for name, adaptive in (("adaptive", True), ("fixed", False)):
        test_ds, spec = data_lib.build(run_config, "test", jax.process_index(), jax.process_count(),
                                       workdir=workdir, prepare=False)
        m = evaluation.evaluate_model(restored.family, restored.model, iter(test_ds), restored.mesh,
                                      run_config.data.global_batch_size, spec.seq_len, max_batches,
                                      adaptive=adaptive)
        result[name] = {"count": m.get("eval/count", 0.0), "exact_accuracy": m.get("eval/exact_accuracy", 0.0),
                        "accuracy": m.get("eval/accuracy", 0.0), "mean_segments": m.get("eval/steps", 0.0)}
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
