"""Entry point: `python -m hrm_jax.main --config=configs/X.py[:variant] --workdir=DIR [--config.a.b=v ...]`.

The mode is a config field: `--config.mode=train|eval|export|recipe|srl` (eval also runs `config.eval.benchmark`
through the sandbox for code runs; export writes `config.export.format`; recipe runs a config's stages,
`hrm_jax.recipe`). Multi-host: `--config.distributed.enabled=True` calls `jax.distributed.initialize`
(auto-detected on SLURM and TPU pods; else coordinator address, process count and id from the config or the
COORDINATOR_ADDRESS / NUM_PROCESSES / PROCESS_ID environment variables).

The console shows progress and status lines; library output (Orbax, SentencePiece, JAX's probes) and tracebacks
go to `<workdir>/log.txt` (`hrm_jax.runtime`). Errors are one line; SIGTERM exits 0 after checkpointing.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from hrm_jax import runtime

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:variant]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the resolved config.")
flags.mark_flags_as_required(["config", "workdir"])


def run(config, workdir: str, overrides=()) -> None:
    """Run `config.mode`; `overrides` are the dotted field names set on the command line (validate refuses
    those of a family node the chosen family ignores)."""
    import jax  # noqa: PLC0415 (after absl parsed flags; distributed init must precede any other jax call)

    from hrm_jax import config as config_lib, distributed  # noqa: PLC0415

    config_lib.validate(config, overrides)
    distributed.maybe_initialize(config.distributed)
    if config.train.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(config.train.compilation_cache_dir))
    if jax.process_count() > 1:  # single-process runs say their devices in their first lines
        from absl import logging  # noqa: PLC0415

        logging.info("process %d of %d; %d local / %d global devices (%s)", jax.process_index(),
                     jax.process_count(), jax.local_device_count(), jax.device_count(), jax.devices()[0].device_kind)
    if config.mode == "recipe":
        from hrm_jax import recipe  # noqa: PLC0415

        recipe.run(config, workdir)
    elif config.mode == "train":
        from hrm_jax import train  # noqa: PLC0415

        train.train_and_evaluate(config, workdir)
    elif config.mode == "srl":  # configs/edit_srl.py: reward-driven updates from a Stage 1 checkpoint
        from hrm_jax import srl  # noqa: PLC0415

        srl.train_srl(config, workdir)
    elif config.mode == "eval":  # one restore (weights only) for the loss / accuracy and the benchmark
        from hrm_jax import evaluation, restore  # noqa: PLC0415

        restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
        evaluation.evaluate_restored(restored, workdir, required=not config.eval.benchmark)
        if config.eval.benchmark:  # pass@k through the sandbox (evals/), after the loss / accuracy evaluation
            from evals.benchmark import evaluate_benchmark  # noqa: PLC0415

            evaluate_benchmark(restored, workdir, config.eval)
    else:  # export (config.validate admits only these modes)
        from hrm_jax.export import run as export_run  # noqa: PLC0415

        export_run.export_checkpoint(config, workdir)


def main(argv):
    del argv
    runtime.start(_WORKDIR.value)
    from hrm_jax.preemption import Preempted  # noqa: PLC0415

    try:
        run(_CONFIG.value, _WORKDIR.value, tuple(config_flags.get_override_values(flags.FLAGS["config"])))
    except Preempted as e:
        runtime.exit_stopped(str(e))
    except KeyboardInterrupt:
        sys.exit(runtime.fail(KeyboardInterrupt("interrupted (Ctrl-C); rerun the same command to resume"),
                              prefix="stopped"))
    except Exception as e:  # noqa: BLE001 (one line on the console, the traceback in the log)
        sys.exit(runtime.fail(e))

if __name__ == "__main__":
    app.run(main, flags_parser=runtime.parse_flags)
