"""Evaluate a trained run on MBPP or HumanEval: restore it, wrap hrm_jax.generate as `complete`, run the sandboxed
evaluator (and refinement). The one path behind `python -m evals.mbpp|evals.humaneval` and `--config.mode=eval`
with `--config.eval.benchmark`."""
from __future__ import annotations

import os


def _tasks(config, benchmark: str, split: str, fmt: str):
    from evals import tasks as tasks_lib  # noqa: PLC0415

    if benchmark == "humaneval":
        from input_pipeline.humaneval import load_humaneval  # noqa: PLC0415
        return tasks_lib.humaneval_tasks(load_humaneval())
    from input_pipeline import mbpp_data, prompts  # noqa: PLC0415
    data_dir = config.data.get("data_dir") or None
    exemplars = None
    if fmt == "fewshot":
        exemplars = prompts.select_fewshot_exemplars(mbpp_data.load_mbpp("prompt", data_dir=data_dir))
    return tasks_lib.mbpp_tasks(mbpp_data.load_mbpp(split, data_dir=data_dir), fmt, exemplars)


def evaluate_benchmark(config, workdir: str, benchmark: str, *, split: str = "test", fmt: str = "instruction",
                       n: int = 1, ks=(1,), temperature: float = 0.0, seed: int = 0, refine_rounds: int = 0,
                       limit: int | None = None, out: str | None = None, max_new_tokens: int = 256,
                       batch_size: int = 8, workers: int = 2) -> dict:
    """Restores the run in `workdir` and evaluates it on `benchmark` ("mbpp" or "humaneval"); returns
    {"samples": summary[, "refine": refine summary]}. The one path behind the CLIs and `--config.mode=eval`."""
    from evals import model_completion, refine, runner  # noqa: PLC0415 (JAX after flag parsing)

    name = benchmark if benchmark == "humaneval" else f"{benchmark}_{split}"
    out = out or os.path.join(workdir, "eval", name)
    settings = runner.EvalSettings(n=n, ks=tuple(int(k) for k in ks), temperature=temperature, seed=seed,
                                   tasks_per_call=max(1, batch_size // n), max_workers=workers)
    tasks = _tasks(config, benchmark, split, fmt)
    model, tokenizer = model_completion.restore_model(config, workdir)
    complete = model_completion.make_complete(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size)
    result = {"samples": runner.evaluate(name, tasks, complete, out, settings, limit=limit)}
    if refine_rounds > 0:
        result["refine"] = refine.refine(name, tasks, complete, out, refine_rounds, settings, limit=limit)
    return result
