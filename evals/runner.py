"""The generation evaluator: sample completions per task, extract code, judge it in the sandbox, write
`<out>/samples.jsonl` (resumable) and `<out>/summary.json` (pass@k, greedy pass@1, syntax-valid rate, statuses).

`complete(prompts, n, temperature, seed) -> [[n generations] per prompt]` is the model; the real one wraps
hrm_jax.generate (evals/model_completion.py), tests pass a fake.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from evals.code_extraction import extract_code
from evals.pass_at_k import mean_pass_at_k
from evals.progress import Progress
from evals.sample_store import SampleStore
from evals.judging import judge_many
from evals.sandbox import SandboxLimits
from evals.syntax import check_syntax
from evals.tasks import Task
from evals.verdict import Status, Verdict

Complete = Callable[[list[str], int, float, int], list[list[str]]]


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How many samples per task (`n`), at what temperature (0 = greedy, needs n == 1), which pass@k to report.

    Tasks go to `complete` `tasks_per_call` at a time, seeded `seed` + the index of the call's first task.
    """

    n: int = 1
    ks: tuple[int, ...] = (1,)
    temperature: float = 0.0
    seed: int = 0
    tasks_per_call: int = 8
    max_workers: int = 2
    limits: SandboxLimits = SandboxLimits()
    message_chars: int = 500

    def __post_init__(self):
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        if self.n < 1 or self.tasks_per_call < 1:
            raise ValueError(f"need n >= 1 and tasks_per_call >= 1, got n={self.n}, "
                             f"tasks_per_call={self.tasks_per_call}")
        if not self.ks or any(not 1 <= k <= self.n for k in self.ks):
            raise ValueError(f"every k must satisfy 1 <= k <= n={self.n}; got ks={self.ks}")
        if self.temperature < 0 or (self.temperature == 0 and self.n != 1):
            raise ValueError(f"temperature 0 (greedy) gives n identical samples: use n=1 or a temperature > 0; "
                             f"got n={self.n}, temperature={self.temperature}")

    @property
    def greedy(self) -> bool:
        return self.n == 1 and self.temperature == 0

    def identity(self) -> dict:
        """What the samples depend on (a resumed run must match it)."""
        return {"n": self.n, "temperature": self.temperature, "seed": self.seed}


def sample_record(code: str, verdict: Verdict, message_chars: int) -> dict:
    """One samples.jsonl entry (without task_id/sample/of, which the store adds)."""
    syntax = check_syntax(code)
    return {"completion": code, "status": verdict.status.value, "error_type": verdict.error_type,
            "message": verdict.message[-message_chars:] if message_chars else "", "syntax_ok": syntax.ok,
            "duration_s": round(verdict.duration_s, 3)}


def judge(tasks: Sequence[Task], codes: Sequence[Sequence[str]], settings: EvalSettings) -> list[list[Verdict]]:
    """Sandbox verdicts for each task's codes (all judged in one judge_many: values compared outside)."""
    items = [(task.program(code), task.tests) for task, task_codes in zip(tasks, codes) for code in task_codes]
    flat = iter(judge_many(items, settings.max_workers, settings.limits))
    return [[next(flat) for _ in task_codes] for task_codes in codes]


def generate_codes(tasks: Sequence[Task], complete: Complete, n: int, temperature: float, seed: int,
                   prompts: Sequence[str] | None = None) -> list[list[str]]:
    """`complete` on the tasks' prompts (or `prompts`), then each generation's code by the task's format."""
    prompts = [t.prompt for t in tasks] if prompts is None else list(prompts)
    generations = complete(prompts, n, temperature, seed)
    if len(generations) != len(tasks) or any(len(g) != n for g in generations):
        raise ValueError(f"complete() returned {[len(g) for g in generations]} generations for {len(tasks)} "
                         f"prompts; expected {n} each")
    return [[extract_code(g, t.fmt) for g in gens] for t, gens in zip(tasks, generations)]


def summarize(name: str, records: Sequence[Sequence[dict]], settings: EvalSettings, elapsed_s: float) -> dict:
    """summary.json's content from each task's sample records."""
    flat = [r for task in records for r in task]
    counts = [(len(task), sum(r["status"] == Status.PASSED for r in task)) for task in records]
    summary = {"benchmark": name, "num_tasks": len(records), "num_samples": len(flat), "n": settings.n,
               "temperature": settings.temperature, "seed": settings.seed,
               "pass_at_k": {f"pass@{k}": mean_pass_at_k(counts, k) if counts else 0.0 for k in settings.ks},
               "syntax_valid_rate": sum(r["syntax_ok"] for r in flat) / len(flat) if flat else 0.0,
               "status_counts": dict(collections.Counter(r["status"] for r in flat)),
               "elapsed_s": round(elapsed_s, 3)}
    if settings.greedy:
        summary["greedy_pass@1"] = summary["pass_at_k"]["pass@1"]
    return summary


def evaluate(name: str, tasks: Sequence[Task], complete: Complete, out_dir: str | pathlib.Path,
             settings: EvalSettings = EvalSettings(), *, limit: int | None = None,
             stream: TextIO | None = None) -> dict:
    """Runs the first `limit` tasks (all by default), skipping those already complete in samples.jsonl; writes
    and returns the summary over those tasks."""
    started = time.monotonic()
    tasks = list(tasks)[:limit] if limit else list(tasks)
    store = SampleStore(out_dir, {"benchmark": name, **settings.identity()})
    todo = [(i, t) for i, t in enumerate(tasks) if not store.done(t.task_id)]
    progress = Progress(name, len(tasks), len(tasks) - len(todo), stream)

    def tally():
        judged = [r for t in tasks if store.done(t.task_id) for r in store.tasks[t.task_id]]
        return sum(store.done(t.task_id) for t in tasks), sum(r["status"] == "passed" for r in judged), len(judged)

    for start in range(0, len(todo), settings.tasks_per_call):
        chunk = todo[start:start + settings.tasks_per_call]
        chunk_tasks = [t for _, t in chunk]
        codes = generate_codes(chunk_tasks, complete, settings.n, settings.temperature, settings.seed + chunk[0][0])
        for task, task_codes, verdicts in zip(chunk_tasks, codes, judge(chunk_tasks, codes, settings)):
            store.append(task.task_id, [sample_record(c, v, settings.message_chars)
                                        for c, v in zip(task_codes, verdicts)])
        progress.update(*tally())
    progress.close()
    summary = summarize(name, [store.tasks[t.task_id] for t in tasks], settings, time.monotonic() - started)
    (pathlib.Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
