"""The study: HRM vs TRM vs the transformer baseline under equal training FLOPs, on puzzles (and code), resumable.

    python -m benchmarks.study --suite=cpu --out=benchmarks/study_cpu --list        # the declared runs, budgets, commands
    python -m benchmarks.study --suite=cpu --out=benchmarks/study_cpu               # run what is not finished, then report
    python -m benchmarks.study --suite=cpu --out=benchmarks/study_cpu --only='sudoku_easy*'   # a subset (fnmatch on names)
    python -m benchmarks.study --suite=cpu --out=benchmarks/study_cpu --report-only # RESULTS.md + figures from the run folders
    python -m benchmarks.study --suite=toy --out=/tmp/study_toy           # seconds per run: the end-to-end test's

Every run is a subprocess of the main command (`python -m hrm_jax.main --config=... --workdir=DIR/runs/<name>
--config.a.b=v ...`) in its own folder; its own files (metrics.jsonl, checkpoints/, config.json, and for code runs
recipe.json / eval/) are what the report reads. `DIR/runs/<name>/study.json` records the plan (command, FLOPs per
step, parameters) and each stage's wall time, commit and machine. A finished run is skipped; an unfinished one is
rerun with the same command, and the main command resumes it from its latest checkpoint (SIGTERM to this runner is
passed to the run, which checkpoints and stops; rerun to go on).

Budget: each task names the steps of its reference family (HRM); the training FLOPs of that run are the budget, and
every other family on the task trains `round(budget / its FLOPs per step)` steps (FLOPs per step from the family's
own `flops_per_token`, as the trainer's MFU uses). Puzzle runs are then evaluated in this process
(`puzzle_evals`): adaptive vs fixed halting through `evals.puzzles`, and accuracy against test-time segments
(`test_time_depth`). The report is `benchmarks/study_report.py`.

The model-field overrides the study uses are in one table, `MODEL_OVERRIDES` (the config layout of `model.*` may
move; adapt that table only). Everything else is a config file + variant (`configs/*.py:variant`), data fields and
the schedule.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import fnmatch
import importlib.util
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
STATE_FILE = "study.json"

# ----- the one table of model-field overrides (config layout: one node per family, model.hrm.*, model.trm.*, ...)
# Families not listed take their config variant's model as it is.
MODEL_OVERRIDES: dict[str, dict] = {
    "hrm": {},  # configs/sudoku.py:tiny's HRM: hidden 64, 2 heads, 1 H + 1 L layer, 2 x 2 cycles, 4 ACT segments
    "trm_mlp": {},  # configs/trm_sudoku.py:tiny: TRM-MLP (mlp_t), hidden 64, 2 layers, T=2, n=2, 4 segments
    "trm_att": {},  # configs/trm_sudoku.py:att_tiny: TRM-Att (RoPE attention), same sizes
    "tf_params": {"model.family": "transformer", "model.transformer.size_by": "params"},
    "tf_flops": {"model.family": "transformer", "model.transformer.size_by": "flops"},
    # code (configs/mbpp.py:cpu, a causal LM of each family at ~1M parameters)
    "code_hrm_text": {},  # mbpp.py:cpu's HRM-Text: hidden 128, 1 block per stack, 2 x 2 cycles
    "code_hrm": {"model.family": "hrm", "model.hrm.causal": True, "model.hrm.puzzle_emb_ndim": 0,
                 "model.hrm.hidden_size": 128, "model.hrm.num_heads": 2, "model.hrm.H_layers": 1,
                 "model.hrm.L_layers": 1, "model.hrm.halt_max_steps": 1},
    "code_trm": {"model.family": "trm", "model.trm.causal": True, "model.trm.puzzle_emb_ndim": 0,
                 "model.trm.hidden_size": 128, "model.trm.num_heads": 2, "model.trm.L_layers": 1,
                 "model.trm.H_cycles": 2, "model.trm.L_cycles": 2, "model.trm.halt_max_steps": 1},
    "code_tf_params": {"model.family": "transformer", "model.transformer.size_by": "params"},
}

# The field each ACT family's training segment count is read from (the test-time-depth sweep's 1x).
HALT_MAX_STEPS_FIELD = {"hrm": "model.hrm.halt_max_steps", "trm": "model.trm.halt_max_steps"}

# family -> the config file and variant it starts from (puzzle tasks; data fields come from the task)
PUZZLE_FAMILY_CONFIG = {
    "hrm": "configs/sudoku.py:tiny",
    "trm_mlp": "configs/trm_sudoku.py:tiny",
    "trm_att": "configs/trm_sudoku.py:att_tiny",
    "tf_params": "configs/sudoku.py:tiny",
    "tf_flops": "configs/sudoku.py:tiny",
}
FAMILY_LABEL = {"hrm": "HRM", "trm_mlp": "TRM-MLP", "trm_att": "TRM-Att", "tf_params": "Transformer (= params)",
                "tf_flops": "Transformer (= FLOPs)", "code_hrm_text": "HRM-Text", "code_hrm": "HRM (causal)",
                "code_trm": "TRM (causal)", "code_tf_params": "Transformer (= params)"}
ACT_FAMILIES = ("hrm", "trm_mlp", "trm_att")  # evals.puzzles: adaptive vs fixed halting, test-time depth
CODE_CONFIG = "configs/mbpp.py:cpu"
CODE_REFINE_ROUNDS = 2  # execution-feedback rounds after a failed greedy attempt (evals.refine)
DEPTH_MULTIPLIERS = (1, 2, 3, 4)  # test-time segments as multiples of the training halt_max_steps


@dataclasses.dataclass(frozen=True)
class Task:
    """A task: its data (shared by its runs, generated once into DIR/data/<name>), its FLOPs budget as the
    reference family's steps, and how it is evaluated."""

    name: str
    kind: str  # "puzzle" | "code"
    note: str  # what the data is (difficulty, sizes), for RESULTS.md
    data: dict  # data.* fields (puzzles: the generator's settings)
    budget_steps: int  # the reference family's steps: its training FLOPs are every family's budget
    families: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    reference: str = "hrm"
    eval_batches: int = 0  # 0 = the whole test split
    curve_points: int = 8  # evaluations along training (the learning curve)
    depth_multipliers: tuple[int, ...] = DEPTH_MULTIPLIERS  # test-time segments / training halt_max_steps
    schedule: dict = dataclasses.field(default_factory=dict)  # other fields (e.g. train.log_every)
    gpu_only: bool = False  # declared for an accelerator; not run on this machine


@dataclasses.dataclass(frozen=True)
class Run:
    task: Task
    family: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task.name}--{self.family}--s{self.seed}"

    @property
    def config_spec(self) -> str:
        if self.task.kind == "code":
            return CODE_CONFIG
        return PUZZLE_FAMILY_CONFIG.get(self.family, self.task.schedule.get("config", ""))


def _sudoku(num_train, num_test, num_aug, min_rating) -> dict:
    return {"data.generate": "sudoku", "data.generate_num_train": num_train, "data.generate_num_test": num_test,
            "data.generate_num_aug": num_aug, "data.generate_min_rating": min_rating, "data.global_batch_size": 32}


def _sudoku_blanks(num_blanks, num_train, num_test, num_aug) -> dict:
    return {**_sudoku(num_train, num_test, num_aug, 0.0), "data.generate_num_blanks": num_blanks}


def _maze(size, min_path, num_train, num_test) -> dict:
    return {"data.generate": "maze", "data.generate_maze_size": size, "data.generate_min_path_length": min_path,
            "data.generate_num_train": num_train, "data.generate_num_test": num_test, "data.global_batch_size": 32}


PUZZLE_FAMILIES = ("hrm", "trm_att", "trm_mlp", "tf_params", "tf_flops")
CODE_FAMILIES = ("code_hrm_text", "code_hrm", "code_trm", "code_tf_params")

SUITES: dict[str, tuple[Task, ...]] = {
    # The CPU suite (2-core machine): 23 runs. budget_steps: HRM steps (the tiny HRM at batch 32 runs 0.18 s/step
    # on an idle 2-core machine, ~0.3 s/step under load); the other families get the same training FLOPs. Sudoku
    # difficulty is a ladder, because minimal puzzles were out of reach. Pilots of the tiny HRM (1,000 train x 8
    # augmentations, 200 test, commit of this suite): minimal puzzles rated >= 1, 400 steps: exact 0, cell 0.41;
    # 30 blanks, 2,400 steps: exact 0, cell 0.778 (~0.40 on the blanks); 10 blanks, 1,500 steps: exact 0 (0.005 at
    # step 900), cell 0.948 (~0.58 on the blanks). So the headline is blanked grids (data.generate_num_blanks).
    # Expected: ~19 puzzle runs x ~4-10 min + 4 code recipes x ~18 min, about 3 h (an estimate, not a measured
    # total); --budget-scale trims it.
    "cpu": (
        Task("sudoku_easy", "puzzle", "generated Sudoku, 10 blanks per puzzle (71 givens; tdoku-style rating 0: "
             "propagation alone solves every one), 1,000 train puzzles x 8 augmentations, 200 test puzzles",
             _sudoku_blanks(10, 1000, 200, 8), budget_steps=2000, families=PUZZLE_FAMILIES, seeds=(0, 1),
             eval_batches=0),
        Task("sudoku_30", "puzzle", "generated Sudoku, 30 blanks per puzzle (51 givens; rating 0), 1,000 train x 8 "
             "augmentations, 200 test", _sudoku_blanks(30, 1000, 200, 8), budget_steps=2000,
             families=("hrm", "trm_mlp", "tf_params"), eval_batches=0),
        Task("sudoku_hard", "puzzle", "generated Sudoku-Extreme-like, rating >= 18 guesses (Sudoku-Extreme's mean "
             "~22), 1,000 train x 8 augmentations, 200 test", _sudoku(1000, 200, 8, 18.0),
             budget_steps=1000, families=("hrm", "trm_mlp", "tf_params"), eval_batches=0),
        Task("maze_12", "puzzle", "12x12 mazes, shortest path >= 20, 1,000 train, 200 test (no augmentation)",
             _maze(12, 20, 1000, 200), budget_steps=700, families=("hrm", "trm_att", "tf_params"), eval_batches=0),
        Task("code", "code", "embedded Python corpus (stdlib subset) pretraining, then MBPP train fine-tune; "
             "greedy pass@1 on the first 50 MBPP test tasks", {}, budget_steps=250, families=CODE_FAMILIES,
             reference="code_hrm_text", curve_points=2),
    ),
    # Paper scale, for an accelerator: the configs' own recipes (their steps; no FLOPs matching). Not run here.
    "gpu": (
        Task("sudoku_extreme_1k", "puzzle", "Sudoku-Extreme-like 1k (1,000 x 1,000 aug, rating >= 18, 1,000 test); "
             "HRM Sudoku-1k recipe and TRM's MLP / attention recipes", {
                 "data.generate": "sudoku", "data.generate_num_train": 1000, "data.generate_num_test": 1000,
                 "data.generate_num_aug": 1000, "data.generate_min_rating": 18.0}, budget_steps=0,
             families=("gpu_hrm", "gpu_trm_mlp", "gpu_trm_att"), gpu_only=True),
        Task("maze_30x30_hard_1k", "puzzle", "Maze-Hard 30x30, shortest path > 110, 1,000 train / 1,000 test", {
            "data.generate": "maze", "data.generate_maze_size": 30, "data.generate_min_path_length": 110},
            budget_steps=0, families=("gpu_hrm_maze", "gpu_trm_maze"), gpu_only=True),
    ),
    # Seconds per run: the end-to-end test's suite (the CPU suite's models, a toy budget).
    "toy": (
        Task("toy_sudoku", "puzzle", "toy: 16 Sudoku (rating >= 1) x 2 augmentations, 16 test",
             {**_sudoku(16, 16, 2, 1.0), "data.global_batch_size": 16}, budget_steps=8,
             families=("hrm", "tf_params"), eval_batches=1, curve_points=2, depth_multipliers=(1, 2)),
    ),
}
GPU_FAMILY_CONFIG = {"gpu_hrm": "configs/sudoku.py", "gpu_trm_mlp": "configs/trm_sudoku.py",
                     "gpu_trm_att": "configs/trm_sudoku.py:att", "gpu_hrm_maze": "configs/maze.py",
                     "gpu_trm_maze": "configs/maze.py"}
PUZZLE_FAMILY_CONFIG.update(GPU_FAMILY_CONFIG)
MODEL_OVERRIDES.update({"gpu_hrm": {}, "gpu_trm_mlp": {}, "gpu_trm_att": {}, "gpu_hrm_maze": {},
                        "gpu_trm_maze": {"model.family": "trm"}})
FAMILY_LABEL.update({"gpu_hrm": "HRM", "gpu_trm_mlp": "TRM-MLP", "gpu_trm_att": "TRM-Att", "gpu_hrm_maze": "HRM",
                     "gpu_trm_maze": "TRM-Att"})


def suite_runs(suite: str, only: str = "") -> list[Run]:
    if suite not in SUITES:
        raise SystemExit(f"--suite: {suite!r} is not one of {sorted(SUITES)}")
    runs = [Run(t, f, s) for t in SUITES[suite] for f in t.families for s in t.seeds]
    patterns = [p for p in only.split(",") if p]
    return [r for r in runs if not patterns or any(fnmatch.fnmatch(r.name, p) for p in patterns)]


# ----- configs and commands -----------------------------------------------------------------------------------------
def load_config(spec: str):
    """configs/x.py[:variant] -> its get_config(variant), as the main command's config flag loads it."""
    path, _, variant = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location(f"study_config_{abs(hash(spec))}", REPO / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant) if variant else module.get_config()


def _data_dir(out: str, task: Task) -> str:
    return os.path.join(os.path.abspath(out), "data", task.name)


def run_dir(out: str, run: Run) -> str:
    return os.path.join(os.path.abspath(out), "runs", run.name)


def base_overrides(out: str, run: Run) -> dict:
    """Every field the run sets on its config, except the step count (which follows from the budget)."""
    o = dict(MODEL_OVERRIDES[run.family])
    o["seed"] = run.seed
    if run.task.kind == "puzzle":
        o.update(run.task.data)
        o["data.path"] = _data_dir(out, run.task)  # generated there by the first run of the task
        o["train.eval_batches"] = run.task.eval_batches
    else:
        o["recipe.stages"] = ("pretrain", "finetune", "eval", "report")
        o["eval.refine_rounds"] = CODE_REFINE_ROUNDS
    o.update({k: v for k, v in run.task.schedule.items() if k != "config"})
    return o


def apply_overrides(config, overrides: dict):
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config


def _flag_value(v) -> str:
    """A config override as the main command's flag parser reads it: a tuple as a Python literal (its strings
    quoted: ml_collections reads `(a,b)` as the one string '(a,b)'), anything else as its text."""
    if isinstance(v, (tuple, list)):
        return repr(tuple(v))
    return str(v)


def command(run: Run, workdir: str, overrides: dict) -> list[str]:
    return [sys.executable, "-m", "hrm_jax.main", f"--config={run.config_spec}", f"--workdir={workdir}",
            *[f"--config.{k}={_flag_value(v)}" for k, v in overrides.items()]]


def _data_meta(config) -> dict:
    """The dataset's shape without building it (FLOPs and parameters depend only on these)."""
    d = config.data
    if d.kind in ("python_corpus", "mbpp"):
        return {"vocab_size": d.tokenizer_vocab_size, "seq_len": d.seq_len, "pad_token_id": 0, "bos_token_id": 1,
                "eos_token_id": 2, "num_puzzle_identifiers": 1}
    if d.generate == "maze":
        return {"vocab_size": 6, "seq_len": d.generate_maze_size ** 2, "num_puzzle_identifiers": 1}
    return {"vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1}


_MEASURED: dict[str, dict] = {}


def measure(config) -> dict:
    """Parameters and training FLOPs per step of the config's family (the trainer's own counts; memoized)."""
    from hrm_jax import families  # noqa: PLC0415

    key = config.to_json()
    if key in _MEASURED:
        return _MEASURED[key]

    if config.get("recipe") is not None and "pretrain" in tuple(config.recipe.stages):
        from hrm_jax import recipe  # noqa: PLC0415

        config = recipe.pretrain_config(config)
    meta = _data_meta(config)
    family = families.build_family(config, meta)
    tokens = config.data.global_batch_size * meta["seq_len"]
    _MEASURED[key] = {"params": int(family.num_params()), "flops_per_step": float(family.flops_per_token() * tokens),
                      "tokens_per_step": int(tokens), "model_family": family.name}
    return _MEASURED[key]


BUDGET_SCALE = [1.0]  # --budget-scale: a shortened (or longer) budget for every task, recorded in each plan


def plan(out: str, run: Run) -> dict:
    """The run's overrides, step count, command and counts: steps = budget FLOPs / this family's FLOPs per step."""
    from hrm_jax import config as config_lib  # noqa: PLC0415

    overrides = base_overrides(out, run)
    config = apply_overrides(load_config(run.config_spec), overrides)
    config_lib.validate(config)  # a bad override fails here, in one line, before anything trains
    m = measure(config)
    steps_key = "pretrain.train.steps" if run.task.kind == "code" else "train.steps"
    if run.task.budget_steps:
        ref = Run(run.task, run.task.reference, run.seed)
        ref_m = m if ref == run else measure(apply_overrides(load_config(ref.config_spec), base_overrides(out, ref)))
        budget = max(1, round(run.task.budget_steps * BUDGET_SCALE[0])) * ref_m["flops_per_step"]
        steps = max(1, round(budget / m["flops_per_step"]))
        overrides[steps_key] = steps
        every = max(1, steps // run.task.curve_points)
        if run.task.kind == "puzzle":
            overrides["train.eval_every"] = every
            overrides["train.checkpoint_every"] = every
            overrides["train.log_every"] = max(1, min(50, steps // 20))
        else:
            overrides["pretrain.train.eval_every"] = every
            overrides["pretrain.train.checkpoint_every"] = max(1, min(100, every))
    else:
        budget, steps = None, int(config.train.steps)
        # the config's own schedule (paper scale)
    workdir = run_dir(out, run)
    return {"name": run.name, "task": run.task.name, "family": run.family, "seed": run.seed,
            "config": run.config_spec, "overrides": {k: _flag_value(v) if isinstance(v, tuple) else v
                                                     for k, v in overrides.items()},
            "steps": steps, "budget_flops": budget, "budget_scale": BUDGET_SCALE[0],
            "train_flops": steps * m["flops_per_step"], **m,
            "command": command(run, workdir, overrides), "workdir": workdir}


# ----- provenance ---------------------------------------------------------------------------------------------------
def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load {load:.1f}"


# ----- state --------------------------------------------------------------------------------------------------------
class RunState:
    """<workdir>/study.json: {plan, stages: {train|eval: {done, seconds, attempts, commit, machine}}, evals}."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, STATE_FILE)
        self.data: dict = {"stages": {}}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.data = json.load(f)

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"done": False, "seconds": 0.0, "attempts": 0})

    def done(self, name: str) -> bool:
        return bool(self.data["stages"].get(name, {}).get("done"))

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, self.path)


def stages_of(run: Run) -> tuple[str, ...]:
    """Puzzles: train, then halting and depth evals; code: the recipe (pretrain, fine-tune, pass@1 with
    refinement), then the fine-tuned model's held-out loss on MBPP test solutions."""
    return ("train", "eval") if run.task.kind == "puzzle" else ("train", "heldout")


def latest_checkpoint(workdir: str) -> int | None:
    folder = os.path.join(workdir, "checkpoints")
    steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []
    return max(steps) if steps else None


def train_finished(run: Run, workdir: str, steps: int) -> bool:
    if run.task.kind == "code":
        path = os.path.join(workdir, "recipe.json")
        if not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as f:
            stages = json.load(f).get("stages", {})
        return all(stages.get(s, {}).get("done") for s in ("pretrain", "finetune", "eval"))
    return (latest_checkpoint(workdir) or 0) >= steps


# ----- stages -------------------------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


_CHILD: list[subprocess.Popen] = []
_STOP: list[bool] = []


def _on_sigterm(signum, frame) -> None:
    del frame
    _STOP.append(True)
    for child in _CHILD:
        if child.poll() is None:
            child.send_signal(signum)


def train_stage(run: Run, p: dict) -> None:
    """The main command in a subprocess (it resumes from the run folder's checkpoint); console to console.txt."""
    os.makedirs(p["workdir"], exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(os.path.join(p["workdir"], "console.txt"), "a", encoding="utf-8") as console:
        child = subprocess.Popen(p["command"], cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT)
        _CHILD.append(child)
        try:
            rc = child.wait()
        finally:
            _CHILD.remove(child)
    if _STOP:
        raise Interrupted(f"{run.name}: stopped (SIGTERM) with its checkpoint; rerun to resume")
    if rc != 0 or not train_finished(run, p["workdir"], p["steps"]):
        raise RuntimeError(f"{run.name}: the main command exited {rc} before finishing; see "
                           f"{p['workdir']}/console.txt and log.txt")


def _run_config(p: dict):
    return apply_overrides(load_config(p["config"]), {k: _parse_tuple(v) for k, v in p["overrides"].items()})


def _parse_tuple(v):
    """A plan's tuple override back to the tuple: a Python literal, or an older plan's unquoted `(a,b)`."""
    if isinstance(v, str) and v.startswith("(") and v.endswith(")"):
        try:
            return tuple(ast.literal_eval(v))
        except (ValueError, SyntaxError):
            return tuple(x for x in v[1:-1].split(",") if x)
    return v


def test_time_depth(config, workdir: str, max_batches: int, multipliers=DEPTH_MULTIPLIERS) -> dict:
    """Exact / cell accuracy with a fixed number of test-time segments, `multipliers` x the training halt_max_steps.

    The one place that asks for fixed segments: through `evals.puzzles.evaluate_puzzles` when it takes a segment
    count (a keyword named in SEGMENT_KNOBS); otherwise the restored model's halt_max_steps is replaced for this
    evaluation only (`act.act_infer` runs exactly halt_max_steps segments when not adaptive)."""
    import inspect  # noqa: PLC0415

    from evals import puzzles  # noqa: PLC0415

    node = config
    for part in HALT_MAX_STEPS_FIELD[config.model.family].split("."):
        node = node[part]
    base = int(node)
    knob = next((k for k in SEGMENT_KNOBS if k in inspect.signature(puzzles.evaluate_puzzles).parameters), None)
    rows = []
    for m in multipliers:
        segments = m * base
        if knob:
            r = puzzles.evaluate_puzzles(config, workdir, max_batches, **{knob: segments})["fixed"]
        else:
            r = _fixed_segments_eval(config, workdir, max_batches, segments)
        rows.append({"multiplier": m, "segments": segments, **r})
    return {"train_segments": base, "via": f"evals.puzzles({knob}=...)" if knob else "halt_max_steps replaced",
            "rows": rows}


SEGMENT_KNOBS = ("segments", "fixed_segments", "num_segments", "max_segments", "test_segments")


def _fixed_segments_eval(config, workdir: str, max_batches: int, segments: int) -> dict:
    import jax  # noqa: PLC0415

    from hrm_jax import data as data_lib, evaluation, restore  # noqa: PLC0415

    restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
    model = restored.model
    model.config = dataclasses.replace(model.config, halt_max_steps=segments)
    test_ds, spec = data_lib.build(restored.config, "test", jax.process_index(), jax.process_count(),
                                   workdir=workdir, prepare=False)
    m = evaluation.evaluate_model(restored.family, model, iter(test_ds), restored.mesh,
                                  restored.config.data.global_batch_size, spec.seq_len, max_batches, adaptive=False)
    return {"count": m.get("eval/count", 0.0), "exact_accuracy": m.get("eval/exact_accuracy", 0.0),
            "accuracy": m.get("eval/accuracy", 0.0), "fill_accuracy": m.get("eval/fill_accuracy", 0.0),
            "mean_segments": m.get("eval/steps", 0.0)}


def puzzle_evals(run: Run, p: dict) -> dict:
    """Adaptive vs fixed halting (evals.puzzles) and the test-time-depth sweep, for the ACT families."""
    if run.family not in ACT_FAMILIES:
        return {}
    config = _run_config(p)
    from evals import puzzles  # noqa: PLC0415

    return {"halting": puzzles.evaluate_puzzles(config, p["workdir"], run.task.eval_batches),
            "depth": test_time_depth(config, p["workdir"], run.task.eval_batches, run.task.depth_multipliers)}


def code_heldout(p: dict) -> dict:
    """The fine-tuned model's loss on every MBPP test task in its fine-tuning format (the loss on the code and
    </s>, as trained), and those targets' tokens per byte of code under the run's tokenizer, for bits per byte.
    The recipe's own eval loss is on MBPP's validation split; this one is on the split pass@1 is measured on."""
    from absl import logging as absl_logging  # noqa: PLC0415

    from hrm_jax import evaluation, restore  # noqa: PLC0415
    from input_pipeline import lm_pipeline, mbpp_data, prompts  # noqa: PLC0415

    absl_logging.set_verbosity(absl_logging.ERROR)  # Orbax's "read only" notice is not the study's console
    config = _run_config(p)
    restored = restore.load_for_inference(p["workdir"], config)
    c, tok = restored.config, restored.tokenizer
    data_dir = c.data.data_dir or None
    records = mbpp_data.load_mbpp("test", data_dir=data_dir)
    batches = lm_pipeline.mbpp_batches(tok, records=records, training=False, seq_len=c.data.seq_len,
                                       batch_size=c.data.global_batch_size, seed=c.seed, process_index=0,
                                       process_count=1, packing=c.data.packing, num_workers=0)
    m = evaluation.evaluate_model(restored.family, restored.model, iter(batches), restored.mesh,
                                  c.data.global_batch_size, c.data.seq_len)
    target_tokens = sum(int(prompts.instruction_example(r, tok)[1].sum()) for r in records)
    code_bytes = sum(len(prompts.reference_code(r).encode("utf-8")) for r in records)
    return {"mbpp_test": {"tasks": len(records), "loss": m["eval/loss"], "loss_tokens": m["eval/tokens"],
                          "target_tokens": target_tokens, "code_bytes": code_bytes, "step": restored.step}}


def execute(out: str, run: Run, log=print) -> str:
    """Runs what is not done of one run; returns 'done' (already), 'ran' or raises."""
    workdir = run_dir(out, run)
    state = RunState(workdir)
    todo = [s for s in stages_of(run) if not state.done(s)]
    if not todo:
        return "done"
    p = state.data.get("plan") or plan(out, run)
    state.data["plan"] = p
    state.save()
    for name in todo:
        entry = state.stage(name)
        resume = latest_checkpoint(workdir)
        if name == "train":
            log(f"{run.name}: train {f'resuming from step {resume}' if resume else 'starting'} ({p['steps']} "
                f"steps; console: {workdir}/console.txt)")
        else:
            log(f"{run.name}: {name}")
        entry["attempts"] += 1
        entry.update(commit=commit(), machine=machine())
        started = time.monotonic()
        try:
            if name == "train":
                train_stage(run, p)
            elif name == "heldout":
                state.data["evals"] = code_heldout(p)
            else:
                state.data["evals"] = puzzle_evals(run, p)
        finally:
            entry["seconds"] += time.monotonic() - started
            state.save()
        entry["done"] = True
        state.save()
        log(f"{run.name}: {name} done ({entry['seconds']:.0f} s over {entry['attempts']} attempt(s))")
    return "ran"


# ----- CLI ----------------------------------------------------------------------------------------------------------
def list_runs(out: str, runs: list[Run]) -> list[str]:
    lines = []
    for run in runs:
        state = RunState(run_dir(out, run))
        status = "done" if all(state.done(s) for s in stages_of(run)) else (
            "partial" if latest_checkpoint(run_dir(out, run)) else "todo")
        if run.task.gpu_only:
            status = "gpu only: not run here"
        p = state.data.get("plan") or plan(out, run)
        lines.append(f"{run.name:<40} {status:<24} params {p['params']:>10,}  steps {p['steps']:>7,}  "
                     f"train {p['train_flops'] / 1e12:8.3f} TFLOP")
        lines.append("    python " + " ".join(p["command"][1:]))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default="cpu", choices=sorted(SUITES))
    ap.add_argument("--out", required=True, help="the study folder (runs/, data/, RESULTS.md, figures/)")
    ap.add_argument("--only", default="", help="run names matching these fnmatch patterns (comma-separated)")
    ap.add_argument("--list", action="store_true", help="print the declared runs, their budgets and commands")
    ap.add_argument("--report-only", action="store_true", help="only (re)write RESULTS.md and the figures")
    ap.add_argument("--budget-scale", type=float, default=1.0,
                    help="multiply every task's budget (e.g. 0.4: a shortened run; use its own --out)")
    args = ap.parse_args(argv)
    BUDGET_SCALE[0] = args.budget_scale
    runs = suite_runs(args.suite, args.only)
    if not runs:
        raise SystemExit(f"--only={args.only!r}: no run of suite {args.suite!r} matches")
    if args.list:
        print("\n".join(list_runs(args.out, runs)))
        return 0
    from benchmarks import study_report  # noqa: PLC0415

    if not args.report_only:
        if any(r.task.gpu_only for r in runs):
            import jax  # noqa: PLC0415

            if jax.default_backend() == "cpu":
                raise SystemExit(f"--suite={args.suite}: paper-scale runs need an accelerator (JAX backend is cpu)")
        signal.signal(signal.SIGTERM, _on_sigterm)
        started = time.monotonic()
        for i, run in enumerate(runs, 1):
            if _STOP:
                print("stopped (SIGTERM); rerun to go on", flush=True)
                return 0
            try:
                status = execute(args.out, run, log=lambda s, i=i: print(f"[{i}/{len(runs)}] {s}", flush=True))
            except Interrupted as e:
                print(f"stopped: {e}", flush=True)
                return 0
            if status == "done":
                print(f"[{i}/{len(runs)}] {run.name}: finished before, skipped", flush=True)
        print(f"suite {args.suite}: {len(runs)} run(s) finished ({(time.monotonic() - started) / 60:.1f} min now)")
    path = study_report.write(args.out, args.suite, runs, args.only)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
