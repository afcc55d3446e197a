"""Shared command line of `python -m evals.mbpp` and `python -m evals.humaneval`: restore a run, wrap
hrm_jax.generate as `complete`, run the evaluator (and refinement when --refine_rounds > 0).

    python -m evals.mbpp --workdir=runs/mbpp --config=configs/mbpp.py [--split=test] [--n=1 --k=1 --temperature=0]
        [--refine_rounds=R] [--limit=N] [--out=DIR] [--config.data.tokenizer=...]
"""
from __future__ import annotations

import json
import sys

from absl import app, flags
from ml_collections import config_flags

from hrm_jax import runtime

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's config file (configs/*.py[:variant]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run directory holding the checkpoint.")
_SPLIT = flags.DEFINE_string("split", "test", "MBPP split (prompt, test, validation, train).")
_FORMAT = flags.DEFINE_enum("format", "instruction", ["instruction", "fewshot"], "MBPP prompt format.")
_N = flags.DEFINE_integer("n", 1, "Samples per task.")
_K = flags.DEFINE_list("k", ["1"], "pass@k to report (each <= n).")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.0, "Sampling temperature; 0 is greedy (n must be 1).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_REFINE = flags.DEFINE_integer("refine_rounds", 0, "Feedback rounds after a failed first attempt (n=1).")
_LIMIT = flags.DEFINE_integer("limit", None, "Evaluate only the first N tasks.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default <workdir>/eval/<benchmark>[_<split>]).")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 256, "Tokens generated per sample at most.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Rows per generate call.")
_WORKERS = flags.DEFINE_integer("workers", 2, "Sandbox processes at once.")
flags.mark_flags_as_required(["config", "workdir"])


def run(benchmark: str) -> dict:
    """Evaluates the flags' run on `benchmark`, printing and returning the summaries."""
    runtime.start(_WORKDIR.value, capture_stdout=False)  # library output into <workdir>/log.txt
    from evals.benchmark import evaluate_benchmark  # noqa: PLC0415 (JAX after flag parsing)
    from hrm_jax import restore  # noqa: PLC0415

    config = _CONFIG.value
    e = config.eval
    e.benchmark, e.split, e.n, e.ks = benchmark, _SPLIT.value, _N.value, tuple(int(k) for k in _K.value)
    e.temperature, e.refine_rounds, e.limit, e.max_new_tokens = (_TEMPERATURE.value, _REFINE.value,
                                                                 _LIMIT.value or 0, _MAX_NEW.value)
    restored = restore.load_for_inference(restore.inference_source(_WORKDIR.value, config), config)
    result = evaluate_benchmark(restored, _WORKDIR.value, e, fmt=_FORMAT.value, seed=_SEED.value, out=_OUT.value,
                                batch_size=_BATCH.value, workers=_WORKERS.value)
    print(json.dumps(result, indent=2), file=sys.stdout)
    return result


def _main(benchmark: str, argv) -> None:
    del argv
    runtime.start(_WORKDIR.value, capture_stdout=False)
    from hrm_jax.preemption import Preempted  # noqa: PLC0415

    from hrm_jax.preemption import run_interruptible  # noqa: PLC0415

    try:
        run_interruptible(lambda: run(benchmark), "the evaluation", "the judged tasks are kept in the output "
                          "folder's samples.jsonl; rerun the same command to go on from there")
    except Preempted as e:
        runtime.exit_stopped(str(e))
    except Exception as e:  # noqa: BLE001 (one line on the console, the traceback in the log)
        sys.exit(runtime.fail(e))


def main(benchmark: str) -> None:
    app.run(lambda argv: _main(benchmark, argv), flags_parser=runtime.parse_flags)
