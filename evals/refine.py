"""Refinement with execution feedback: generate, run the tests, and on failure show the model its attempt and
the (truncated) error after `<FEEDBACK>`, then regenerate; up to `rounds` extra rounds per task.

Writes `<out>/refine.jsonl` (one line per task and round: resumable like samples.jsonl) and
`<out>/refine_summary.json` with pass@1 before refinement, after it, and after each round.
"""
from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence
from typing import TextIO

from evals.progress import Progress
from evals.runner import Complete, EvalSettings, generate_codes, judge, sample_record
from evals.sample_store import SampleStore
from evals.syntax import check_files, check_syntax, files_feedback, syntax_feedback
from evals.tasks import Task, feedback_prompt
from evals.verdict import Verdict

FEEDBACK_CHARS = 400
_SUFFIX = {"cpp": ".cpp", "go": ".go", "java": ".java", "javascript": ".js", "rust": ".rs"}


def execution_feedback(code: str, verdict: Verdict, max_chars: int = FEEDBACK_CHARS, *, language: str = "python",
                       filename: str | None = None) -> str:
    """What the model is told about a failed attempt: the syntax error when the code does not compile (for
    another language, its validator's error text: evals.syntax.check_files on `filename`), else the error type
    and the end of the sandbox message (where a traceback names the failing line)."""
    if language == "python":
        syntax = check_syntax(code)
        if not syntax.ok:
            return syntax_feedback(syntax, max_chars)
    else:
        syntax = check_files(language, {filename or f"solution{_SUFFIX[language]}": code})
        if not syntax.ok:
            return files_feedback(syntax, max_chars)
    head = f"{verdict.error_type or verdict.status.value}: "
    message = verdict.message.strip()
    return head + message[-max(max_chars - len(head), 0):]


def refine(name: str, tasks: Sequence[Task], complete: Complete, out_dir: str | pathlib.Path, rounds: int,
           settings: EvalSettings = EvalSettings(), *, limit: int | None = None,
           stream: TextIO | None = None) -> dict:
    """One sample per task (settings.n must be 1), refined up to `rounds` times while it fails."""
    if settings.n != 1 or rounds < 0:
        raise ValueError(f"refinement takes n=1 and rounds >= 0; got n={settings.n}, rounds={rounds}")
    started = time.monotonic()
    tasks = list(tasks)[:limit] if limit else list(tasks)
    store = SampleStore(out_dir, {"benchmark": name, "rounds": rounds, **settings.identity()},
                        filename="refine.jsonl")
    todo = [(i, t) for i, t in enumerate(tasks) if not store.done(t.task_id)]
    progress = Progress(f"{name} refine", len(tasks), len(tasks) - len(todo), stream)
    for start in range(0, len(todo), settings.tasks_per_call):
        chunk = todo[start:start + settings.tasks_per_call]
        history: dict[str, list[dict]] = {t.task_id: [] for _, t in chunk}
        active = [t for _, t in chunk]
        prompts = [t.prompt for t in active]
        for r in range(rounds + 1):
            codes = [c[0] for c in generate_codes(active, complete, 1, settings.temperature,
                                                  settings.seed + chunk[0][0] + r * len(tasks), prompts)]
            verdicts = [v[0] for v in judge(active, [[c] for c in codes], settings)]
            still, next_prompts = [], []
            for task, code, verdict in zip(active, codes, verdicts):
                record = sample_record(code, verdict, settings.message_chars) | {"round": r}
                history[task.task_id].append(record)
                if not verdict.passed:
                    record["feedback"] = execution_feedback(code, verdict)
                    still.append(task)
                    next_prompts.append(feedback_prompt(task.prompt, code, record["feedback"]))
            active, prompts = still, next_prompts
            if not active:
                break
        for _, task in chunk:
            store.append(task.task_id, history[task.task_id])
        done = [store.tasks[t.task_id] for t in tasks if store.done(t.task_id)]
        progress.update(len(done), sum(h[-1]["status"] == "passed" for h in done), len(done))
    progress.close()
    summary = summarize_refinement(name, [store.tasks[t.task_id] for t in tasks], rounds,
                                   time.monotonic() - started)
    (pathlib.Path(out_dir) / "refine_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def summarize_refinement(name: str, histories: Sequence[Sequence[dict]], rounds: int, elapsed_s: float) -> dict:
    """pass@1 without refinement (round 0), with it (any round), and cumulatively after each round."""
    n = len(histories)

    def solved_by(r):
        return sum(any(rec["status"] == "passed" for rec in h if rec["round"] <= r) for h in histories)

    by_round = [solved_by(r) / n if n else 0.0 for r in range(rounds + 1)]
    return {"benchmark": name, "num_tasks": n, "rounds": rounds,
            "pass@1": by_round[0], "pass@1_refined": by_round[-1], "pass@1_by_round": by_round,
            "mean_rounds_used": sum(len(h) - 1 for h in histories) / n if n else 0.0,
            "elapsed_s": round(elapsed_s, 3)}
