"""Evaluate a trained model on MBPP or HumanEval: wrap hrm_jax.generate over a restored model
(`hrm_jax.restore.load_for_inference`) as `complete`, run the sandboxed evaluator (and refinement). The one path
behind `python -m evals.mbpp|evals.humaneval` and `--config.mode=eval` with `--config.eval.benchmark`."""
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


def evaluate_benchmark(restored, workdir: str, eval_config, *, fmt: str = "instruction", seed: int = 0,
                       out: str | None = None, batch_size: int = 8, workers: int = 2) -> dict:
    """Evaluates `restored` (a `restore.Restored`) on `eval_config.benchmark` ("mbpp" or "humaneval") as the
    config's eval node says (split, n, ks, temperature, refine_rounds, limit, max_new_tokens); writes per-task
    JSONL and summaries under `out` (default <workdir>/eval/<benchmark>[_<split>]) and returns
    {"samples": summary[, "refine": refine summary]}."""
    from evals import model_completion, refine, runner  # noqa: PLC0415 (JAX after flag parsing)

    e = eval_config
    if e.benchmark not in ("mbpp", "humaneval"):
        raise ValueError(f"config.eval.benchmark={e.benchmark!r} is not 'mbpp' or 'humaneval'")
    if restored.tokenizer is None:
        raise ValueError(f"{workdir}: a {restored.family.name} model without a tokenizer cannot run a code benchmark")
    name = e.benchmark if e.benchmark == "humaneval" else f"{e.benchmark}_{e.split}"
    out = out or os.path.join(workdir, "eval", name)
    settings = runner.EvalSettings(n=e.n, ks=tuple(int(k) for k in e.ks), temperature=e.temperature, seed=seed,
                                   tasks_per_call=max(1, batch_size // e.n), max_workers=workers)
    tasks = _tasks(restored.config, e.benchmark, e.split, fmt)
    complete = model_completion.make_complete(restored.model, restored.tokenizer, max_new_tokens=e.max_new_tokens,
                                              batch_size=batch_size)
    limit = e.limit or None
    result = {"samples": runner.evaluate(name, tasks, complete, out, settings, limit=limit)}
    if e.refine_rounds > 0:
        result["refine"] = refine.refine(name, tasks, complete, out, e.refine_rounds, settings, limit=limit)
    return result
