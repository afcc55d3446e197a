"""Command line of `python -m evals.polyglot`: restore a run (hrm_jax.restore.load_for_inference), wrap
hrm_jax.generate as `complete` (evals/model_completion.py), run evals.polyglot.evaluate, print the summary.

    python -m evals.polyglot --workdir=RUN [--config=configs/mbpp.py:tiny] [--languages=go,rust] [--limit=N]
        [--tries=2] [--out=DIR] [--max_new_tokens=512] [--batch_size=4] [--workers=1]
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from hrm_jax import runtime

_CONFIG = config_flags.DEFINE_config_file("config", None, "Optional: the run's config (runtime fields only).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run directory holding the checkpoint.")
_LANGUAGES = flags.DEFINE_list("languages", ["cpp", "go", "java", "javascript", "python", "rust"],
                               "Languages to run.")
_LIMIT = flags.DEFINE_integer("limit", None, "Only the first N exercises of each language.")
_TRIES = flags.DEFINE_integer("tries", 2, "Tries per exercise (the second sees the test output).")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.0, "Sampling temperature; 0 is greedy.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default <workdir>/eval/polyglot).")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 512, "Tokens generated per answer at most.")
_MAX_PROMPT = flags.DEFINE_integer("max_prompt_tokens", 1536, "A longer prompt keeps its end.")
_BATCH = flags.DEFINE_integer("batch_size", 4, "Rows per generate call (also exercises per call).")
_WORKERS = flags.DEFINE_integer("workers", 1, "Sandboxed test runs at once (compilers are heavy).")
flags.mark_flags_as_required(["workdir"])


def run() -> dict:
    from evals import model_completion, polyglot  # noqa: PLC0415 (JAX after flag parsing)
    from hrm_jax import restore  # noqa: PLC0415

    config = _CONFIG.value
    restored = restore.load_for_inference(restore.inference_source(_WORKDIR.value, config), config)
    if restored.tokenizer is None:
        raise ValueError(f"{_WORKDIR.value}: a {restored.family.name} model without a tokenizer cannot run a code "
                         "benchmark")
    complete = model_completion.make_complete(restored.model, restored.tokenizer, max_new_tokens=_MAX_NEW.value,
                                              batch_size=_BATCH.value, max_prompt_tokens=_MAX_PROMPT.value)
    settings = polyglot.PolyglotSettings(tries=_TRIES.value, temperature=_TEMPERATURE.value, seed=_SEED.value,
                                         exercises_per_call=_BATCH.value, max_workers=_WORKERS.value)
    exercises = polyglot.select(_LANGUAGES.value, _LIMIT.value)
    out = _OUT.value or os.path.join(_WORKDIR.value, "eval", "polyglot")
    summary = polyglot.evaluate(exercises, complete, out, settings)
    print(json.dumps(summary, indent=2), file=sys.stdout)
    return summary


def _main(argv) -> None:
    del argv
    runtime.start(_WORKDIR.value, capture_stdout=False)
    from hrm_jax.preemption import Preempted, run_interruptible  # noqa: PLC0415

    try:
        run_interruptible(run, "the evaluation", "the judged exercises are kept in the output folder's "
                          "samples.jsonl; rerun the same command to go on from there")
    except Preempted as e:
        runtime.exit_stopped(str(e))
    except Exception as e:  # noqa: BLE001 (one line on the console, the traceback in the log)
        sys.exit(runtime.fail(e))


def main() -> None:
    app.run(_main, flags_parser=runtime.parse_flags)
