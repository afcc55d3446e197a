"""Entry point: `python -m hrm_jax.main --config=configs/X.py[:variant] --workdir=DIR [--config.a.b=v ...]`.

The mode is a config field: `--config.mode=train|eval|export` (eval also runs `config.eval.benchmark` through the
sandbox for code runs; export writes `config.export.format`). Multi-host: `--config.distributed.enabled=True`
calls `jax.distributed.initialize` (auto-detected on SLURM and TPU pods; else coordinator address, process count
and id from the config or the COORDINATOR_ADDRESS / NUM_PROCESSES / PROCESS_ID environment variables).
"""

from __future__ import annotations

import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:variant]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the resolved config.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries:
    """Drops INFO records from Orbax's internals (hundreds per checkpoint); warnings and errors still show."""

    def filter(self, record) -> bool:
        return record.levelno >= 30 or "/orbax/" not in record.pathname


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(_QuietLibraries())
    import jax  # noqa: PLC0415 (after absl parsed flags; distributed init must precede any other jax call)

    from hrm_jax import config as config_lib, distributed  # noqa: PLC0415

    config = _CONFIG.value
    config_lib.validate(config)
    distributed.maybe_initialize(config.distributed)
    if config.train.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(config.train.compilation_cache_dir))
    logging.info("process %d of %d; %d local / %d global devices (%s)", jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count(), jax.devices()[0].device_kind)
    if config.mode == "train":
        from hrm_jax import train  # noqa: PLC0415

        train.train_and_evaluate(config, _WORKDIR.value)
    elif config.mode == "eval":  # one restore (weights only) for the loss / accuracy and the benchmark
        from hrm_jax import evaluation, restore  # noqa: PLC0415

        restored = restore.load_for_inference(restore.inference_source(_WORKDIR.value, config), config)
        evaluation.evaluate_restored(restored, _WORKDIR.value, required=not config.eval.benchmark)
        if config.eval.benchmark:  # pass@k through the sandbox (evals/), after the loss / accuracy evaluation
            from evals.benchmark import evaluate_benchmark  # noqa: PLC0415

            evaluate_benchmark(restored, _WORKDIR.value, config.eval)
    else:  # export (config.validate admits only the three modes)
        from hrm_jax.export import run as export_run  # noqa: PLC0415

        export_run.export_checkpoint(config, _WORKDIR.value)

if __name__ == "__main__":
    app.run(main)
