"""The stage runner behind `--config.mode=recipe` (configs/mbpp.py): pretrain -> finetune -> eval -> export ->
report under one workdir, each stage resumable, a finished stage never redone.

Layout: <workdir>/pretrain/ is the pretraining run (its tokenizer and corpus built there); <workdir>/ itself is
the fine-tune run (tokenizer copied to <workdir>/tokenizer/, so eval/export modes on <workdir> find it);
<workdir>/eval/<benchmark>_<split>/, <workdir>/export/, <workdir>/report.md. <workdir>/recipe.json records each
finished stage with its wall time and results. A killed run restarts at the stage it reached (the trainer resumes
from its latest checkpoint, the evaluator skips judged tasks); when every stage is done, a rerun prints only the
summary.

Each stage calls the public entry point of its module: `train.train_and_evaluate`, `evals.benchmark
.evaluate_benchmark`, `export.run.export_checkpoint`, `report.write_report`. This module imports no JAX at import
time (configs/mbpp.py uses `detect_platform` before JAX starts).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import resource
import shutil
import time

import ml_collections

from hrm_jax.progress import format_duration, say

STAGES = ("pretrain", "finetune", "eval", "export", "report")
STATE_FILE = "recipe.json"


# ----- scale ------------------------------------------------------------------------------------------------------
def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent package is absent
        return False


def detect_platform(environ=None) -> tuple[str, str]:
    """('cpu' | 'gpu' | 'pod', reason) from devices, drivers and launcher variables, without starting JAX."""
    env = os.environ if environ is None else environ
    forced = [p.strip() for p in env.get("JAX_PLATFORMS", "").split(",") if p.strip()]
    if forced and set(forced) == {"cpu"}:
        return "cpu", "JAX_PLATFORMS=cpu"
    hosts = max(int(env.get("SLURM_NNODES", "1") or 1), len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",")
                                                               if h.strip()]) or 1,
                int(env.get("NUM_PROCESSES", "1") or 1))
    gpus = len(glob.glob("/dev/nvidia[0-9]*"))
    tpus = len(glob.glob("/dev/accel[0-9]*")) or len(glob.glob("/dev/vfio/[0-9]*"))
    has = lambda *mods: any(_installed(m) for m in mods)  # noqa: E731
    usable_gpus = gpus if has("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_plugins.xla_cuda12") else 0
    usable_tpus = tpus if has("libtpu") else 0
    chips = usable_gpus or usable_tpus
    kind = "GPU" if usable_gpus else "TPU"
    if chips and (hosts > 1 or chips >= 8):
        return "pod", f"{chips} {kind}s per host x {hosts} host(s): code-100m"
    if chips:
        return "gpu", f"{chips} {kind}(s) on one host: code-30m"
    if gpus:
        return "cpu", f"{gpus} NVIDIA device(s) but no CUDA-enabled jaxlib (pip install jax[cuda12]): CPU preset"
    if tpus:
        return "cpu", f"{tpus} TPU device(s) but libtpu is not installed: CPU preset"
    return "cpu", "no GPU or TPU found: the CPU preset (<= 60 min on 2 cores)"


# ----- stage configs ----------------------------------------------------------------------------------------------
def _copy(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    c = config.copy_and_resolve_references()
    c.unlock()
    return c


def _merge(into: ml_collections.ConfigDict, overrides: ml_collections.ConfigDict, prefix: str = "pretrain") -> None:
    for key, value in overrides.items():
        if isinstance(value, ml_collections.ConfigDict):
            if key not in into:
                raise KeyError(f"config.{prefix}.{key}: no such section in the run config")
            _merge(into[key], value, f"{prefix}.{key}")
        else:
            if key not in into:
                raise KeyError(f"config.{prefix}.{key}: no such field in the run config")
            into[key] = value


def pretrain_dir(workdir: str) -> str:
    return os.path.join(workdir, "pretrain")


def pretrain_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The run config with `config.pretrain`'s fields applied (same model; data, optimiser and steps differ)."""
    c = _copy(config)
    _merge(c, config.pretrain)
    c.mode, c.init_from = "train", ""
    c.eval.benchmark = ""
    return c


def finetune_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
    """The run config as a fine-tune from the pretraining run (unless `init_from` names another start, or the
    recipe has no pretrain stage)."""
    c = _copy(config)
    c.mode = "train"
    if not c.init_from and "pretrain" in tuple(config.recipe.stages):
        c.init_from = os.path.join(pretrain_dir(workdir), "checkpoints")  # the folder itself: a run folder's
        # config.json would read as a Hugging Face folder's
    return c


# ----- state ------------------------------------------------------------------------------------------------------
class RecipeState:
    """<workdir>/recipe.json: per stage {done, seconds (summed over attempts), result}."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, STATE_FILE)
        self.data = {"stages": {}}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.data = json.load(f)

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"done": False, "seconds": 0.0})

    def done(self, name: str) -> bool:
        return bool(self.data["stages"].get(name, {}).get("done"))

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, self.path)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


# ----- stages -----------------------------------------------------------------------------------------------------
def _train_stage(c: ml_collections.ConfigDict, run_dir: str) -> dict:
    import jax  # noqa: PLC0415

    from hrm_jax import train  # noqa: PLC0415
    from hrm_jax.preemption import Preempted  # noqa: PLC0415

    state = train.train_and_evaluate(c, run_dir)
    step = int(jax.device_get(state.step))
    if step < c.train.steps:
        raise Preempted(f"SIGTERM: stopped at step {step} of {c.train.steps} with a checkpoint in {run_dir}; "
                        "rerun the same command to resume")
    return {"steps": step, "metrics": os.path.join(run_dir, "metrics.jsonl"),
            "checkpoint": os.path.join(run_dir, "checkpoints", str(step))}


def _copy_tokenizer(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The pretraining run's tokenizer where the fine-tune run (and eval/export on <workdir>) looks for it."""
    if config.data.tokenizer:
        return
    src, dst = os.path.join(pretrain_dir(workdir), "tokenizer"), os.path.join(workdir, "tokenizer")
    if os.path.isdir(src) and not os.path.exists(os.path.join(dst, "code.model")):
        shutil.copytree(src, dst, dirs_exist_ok=True)


def _eval_stage(c: ml_collections.ConfigDict, workdir: str) -> dict:
    from evals.benchmark import evaluate_benchmark  # noqa: PLC0415
    from hrm_jax import preemption  # noqa: PLC0415

    e = c.eval
    out = os.path.join(workdir, "eval", f"{e.benchmark}_{e.split}" if e.benchmark != "humaneval" else "humaneval")
    from hrm_jax import restore  # noqa: PLC0415

    def fn():
        restored = restore.load_for_inference(restore.inference_source(workdir, c), c)
        return evaluate_benchmark(restored, workdir, e, out=out)
    result = preemption.run_interruptible(fn, "the evaluation", f"the judged tasks are kept in {out}/samples.jsonl; rerun the "
                                                  "same command to go on from there")
    summary = result["samples"]
    stage = {"out": out, "pass_at_k": summary["pass_at_k"], "num_tasks": summary["num_tasks"],
             "num_samples": summary["num_samples"]}
    if "refine" in result:  # eval.refine_rounds > 0: pass@1 after the execution-feedback rounds
        stage["refine"] = {k: result["refine"][k] for k in ("rounds", "pass@1_refined", "pass@1_by_round")}
    return stage


def _export_stage(c: ml_collections.ConfigDict, workdir: str) -> dict:
    from hrm_jax.export import run as export_run  # noqa: PLC0415

    path = export_run.export_checkpoint(c, workdir)
    return {"path": str(path), "bytes": os.path.getsize(path) if os.path.isfile(path) else None}


def _report_stage(config: ml_collections.ConfigDict, workdir: str, state: RecipeState) -> dict:
    from hrm_jax import report  # noqa: PLC0415

    path = report.write_report(workdir, state.data, samples=config.recipe.report_samples)
    return {"path": path}


# ----- runner -----------------------------------------------------------------------------------------------------
def summary_lines(workdir: str, state: RecipeState) -> list[str]:
    lines = [f"recipe in {workdir}:"]
    for name, s in state.data["stages"].items():
        mark = "done" if s.get("done") else "not done"
        r = s.get("result") or {}
        detail = ""
        if name == "eval" and "pass_at_k" in r:
            detail = "  " + ", ".join(f"{k} {v:.3f}" for k, v in r["pass_at_k"].items()) + \
                     f" on {r['num_tasks']} tasks ({r['num_samples']} samples)"
        elif name in ("pretrain", "finetune") and "final_loss" in r:
            detail = f"  {r['steps']} steps, train loss {r['final_loss']:.3f}" + (
                f", eval loss {r['eval_loss']:.3f}" if r.get("eval_loss") is not None else "")
        lines.append(f"  {name:<9} {mark:<9} {format_duration(s.get('seconds', 0)):>7}{detail}")
    paths = []
    for name, key in (("finetune", "checkpoint"), ("finetune", "metrics"), ("eval", "out"), ("export", "path"),
                      ("report", "path")):
        value = (state.data["stages"].get(name, {}).get("result") or {}).get(key)
        if value:
            paths.append(f"  {name} {key}: {value}")
    log = os.path.join(workdir, "log.txt")
    return lines + paths + ([f"  log: {log}"] if os.path.exists(log) else [])


def _last_metrics(metrics_path: str) -> dict:
    out: dict = {}
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if "train/loss" in rec:
                    out["final_loss"] = rec["train/loss"]
                if "eval/loss" in rec:
                    out["eval_loss"] = rec["eval/loss"]
    return out


def run(config: ml_collections.ConfigDict, workdir: str) -> RecipeState:
    """Runs the config's stages that are not done yet; prints the summary."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    state = RecipeState(workdir)
    stages = tuple(config.recipe.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"config.recipe.stages: unknown {unknown}; stages are {list(STAGES)}")
    todo = [s for s in stages if not state.done(s)]
    if not todo:
        for line in summary_lines(workdir, state):
            say(line)
        return state
    import jax  # noqa: PLC0415

    backend = jax.default_backend()
    say(f"recipe scale: {config.recipe.scale} ({config.recipe.scale_reason}); JAX backend {backend}, "
        f"{jax.device_count()} device(s); stages to run: {', '.join(todo)}")
    if config.recipe.scale in ("gpu", "pod") and backend == "cpu":
        say("warning: an accelerator scale on the CPU backend will be very slow; use configs/mbpp.py:cpu")
    state.data["scale"] = {"scale": config.recipe.scale, "reason": config.recipe.scale_reason, "backend": backend}
    pre, ft = pretrain_config(config), finetune_config(config, workdir)
    for name in todo:
        entry = state.stage(name)
        say(f"stage {name}: {'resuming' if entry['seconds'] else 'starting'}")
        started = time.monotonic()
        try:
            if name == "pretrain":
                if not os.path.exists(os.path.join(pretrain_dir(workdir), "python_corpus", "manifest.json")):
                    say("pretrain: building the tokenizer and the Python corpus first (minutes; details in "
                        f"{os.path.join(workdir, 'log.txt')})")
                result = _train_stage(pre, pretrain_dir(workdir))
                result |= _last_metrics(result["metrics"])
            elif name == "finetune":
                _copy_tokenizer(config, workdir)
                result = _train_stage(ft, workdir)
                result |= _last_metrics(result["metrics"])
            elif name == "eval":
                result = _eval_stage(ft, workdir)
            elif name == "export":
                result = _export_stage(ft, workdir)
            else:  # the report lists itself as done, with the time of the stages before it
                entry.update(done=True)
                try:
                    result = _report_stage(config, workdir, state)
                except BaseException:
                    entry.update(done=False)
                    raise
        finally:
            entry["seconds"] = entry["seconds"] + time.monotonic() - started
            entry["peak_rss_gib"] = max(entry.get("peak_rss_gib", 0.0), _peak_rss_gib())
            state.save()
        entry.update(done=True, result=result)
        state.save()
        say(f"stage {name}: done in {format_duration(time.monotonic() - started)}")
    for line in summary_lines(workdir, state):
        say(line)
    return state
