"""`python -m evals.polyglot --workdir=RUN [--languages=go,rust] [--limit=N] [--tries=2]`: the Aider Polyglot
benchmark (225 Exercism exercises in C++, Go, Java, JavaScript, Python and Rust) for a restored model.

As the public harness does: the prompt is the exercise's instructions and its stub files; the model answers
with whole files (a path line, then a fenced block), which are written over the stubs; the exercise's own tests
run in the sandbox (evals/polyglot_sandbox.py); on failure a second try is given the test output (or, when the
files do not parse, the language's syntax validator's error: evals/syntax.check_files). pass@1 is solved on
the first try, pass@2 within two, per language and overall.

Writes <out>/samples.jsonl (one line per exercise and try, resumable like evals.mbpp) and <out>/summary.json;
<out> defaults to <workdir>/eval/polyglot. A language whose toolchain is missing is skipped with its reason; the
summary lists the exercises whose reference solution cannot pass here (evals/polyglot_reference.KNOWN_FAILURES).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from evals import polyglot_toolchains as tc
from evals.code_extraction import extract_instruction
from evals.polyglot_exercises import Exercise, load_exercises
from evals.polyglot_reference import KNOWN_FAILURES
from evals.polyglot_sandbox import run_tests
from evals.progress import Progress
from evals.sample_store import SampleStore
from evals.syntax import check_files, files_feedback
from evals.tasks import feedback_prompt
from evals.verdict import MESSAGE_CHARS, Status, Verdict
from input_pipeline.prompts import CODE_MARKER, PROMPT_MARKER

Complete = Callable[[list[str], int, float, int], list[list[str]]]
FENCE_LANGUAGE = {"cpp": "cpp", "go": "go", "java": "java", "javascript": "javascript", "python": "python",
                  "rust": "rust"}
FEEDBACK_CHARS = 1500


@dataclasses.dataclass(frozen=True)
class PolyglotSettings:
    tries: int = 2
    temperature: float = 0.0
    seed: int = 0
    exercises_per_call: int = 4
    max_workers: int = 1
    message_chars: int = 500

    def __post_init__(self):
        if self.tries < 1 or self.exercises_per_call < 1 or self.max_workers < 1:
            raise ValueError(f"need tries, exercises_per_call and max_workers >= 1; got {self}")

    def identity(self) -> dict:
        return {"tries": self.tries, "temperature": self.temperature, "seed": self.seed}


def _file_block(exercise: Exercise, path: str, text: str) -> str:
    return f"{path}\n```{FENCE_LANGUAGE[exercise.language]}\n{text.rstrip()}\n```\n"


def prompt_text(exercise: Exercise) -> str:
    """The first try's prompt: instructions, what to do, the stub files (markers as model_completion encodes)."""
    names = ", ".join(exercise.solution)
    stubs = "".join(_file_block(exercise, p, exercise.files.get(p, "")) for p in exercise.solution)
    return (f"{PROMPT_MARKER}# {exercise.language} exercise: {exercise.name}\n\n{exercise.instructions}\n\n"
            f"Use the above instructions to modify the supplied files: {names}\n"
            "Don't change the names of existing functions or classes, as they may be referenced from other code "
            "like unit tests, etc.\nOnly use standard libraries, don't suggest installing any packages.\n"
            "Reply with each file whole: its path on a line of its own, then its content in a fenced block.\n\n"
            f"{stubs}{CODE_MARKER}")


def retry_feedback(exercise: Exercise, errors: str) -> str:
    """The second try's message: the (truncated) test or validator output, then the harness's instruction."""
    return (f"{errors.strip()[-FEEDBACK_CHARS:]}\n\nSee the testing errors above.\nThe tests are correct, don't "
            f"try and change them.\nFix the code in {', '.join(exercise.solution)} to resolve the errors.\n")


_BLOCK = re.compile(r"(?:^|\n)(?:[ \t]*([^\n`]*?)[ \t]*\n)?```[\w+#-]*[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def parse_files(exercise: Exercise, generated: str) -> dict:
    """The model's files: each fenced block whose preceding line names a solution file (by path or base name).

    With one solution file, an unnamed block (or, without any block, the whole answer) is that file. Files the
    answer does not give keep their stubs (returned here only when given)."""
    text = extract_instruction(generated)
    by_name = {p: p for p in exercise.solution} | {p.rsplit("/", 1)[-1]: p for p in exercise.solution}
    files, unnamed = {}, []
    for name, body in _BLOCK.findall(text):
        name = name.strip().strip("*`#: ").strip()
        if name in by_name:
            files.setdefault(by_name[name], body + "\n")
        else:
            unnamed.append(body + "\n")
    if not files and len(exercise.solution) == 1 and (unnamed or text.strip()):
        files[exercise.solution[0]] = unnamed[0] if unnamed else text
    return files


def _judge(exercise: Exercise, answer: dict) -> tuple[Verdict, bool, str]:
    """(verdict, syntax_ok, the feedback a retry gets) for one answer."""
    files = {**exercise.files, **answer}
    try:
        syntax = check_files(exercise.language, {p: files[p] for p in exercise.solution})
    except tc.ToolchainMissing:
        raise
    except Exception as e:  # noqa: BLE001 (a validator failure must not end the evaluation)
        syntax = None
        print(f"syntax validator failed on {exercise.exercise_id}: {e}", file=sys.stderr)
    try:
        verdict = run_tests(exercise.language, exercise.name, files, exercise.tests)
    except tc.ToolchainMissing:
        raise
    except Exception as e:  # noqa: BLE001
        verdict = Verdict(Status.ERROR, "SandboxError", f"{type(e).__name__}: {e}"[:MESSAGE_CHARS])
    if syntax is not None and not syntax.ok:
        feedback = files_feedback(syntax, FEEDBACK_CHARS)
    else:
        feedback = verdict.message
    # An answer that wrote no solution file leaves the stubs in place: they may parse, but the model wrote nothing.
    return verdict, bool(answer) and syntax is not None and syntax.ok, feedback


def _record(answer: dict, verdict: Verdict, syntax_ok: bool, attempt: int, settings: PolyglotSettings) -> dict:
    return {"try": attempt, "files": answer, "status": verdict.status.value, "error_type": verdict.error_type,
            "message": verdict.message[-settings.message_chars:] if settings.message_chars else "",
            "syntax_ok": syntax_ok, "duration_s": round(verdict.duration_s, 3)}


def summarize(exercises: Sequence[Exercise], store: SampleStore, tries: int, skipped: dict, elapsed_s: float) -> dict:
    def rates(items):
        histories = [store.tasks[e.exercise_id] for e in items if store.done(e.exercise_id)]
        n = len(histories)
        flat = [r for h in histories for r in h]
        row = {"num_exercises": n}
        for k in range(1, tries + 1):
            row[f"pass@{k}"] = sum(any(r["status"] == "passed" for r in h if r["try"] <= k) for h in histories) / n \
                if n else 0.0
        row["syntax_valid_rate"] = sum(r["syntax_ok"] for r in flat) / len(flat) if flat else 0.0
        row["answered_rate"] = sum(bool(r["files"]) for r in flat) / len(flat) if flat else 0.0  # wrote a file
        row["status_counts"] = dict(collections.Counter(r["status"] for r in flat))
        return row

    languages = sorted({e.language for e in exercises})
    unsolvable = sorted(e.exercise_id for e in exercises if e.exercise_id in KNOWN_FAILURES)
    return {"benchmark": "polyglot", "tries": tries, "overall": rates(exercises),
            "languages": {lang: rates([e for e in exercises if e.language == lang]) for lang in languages},
            "skipped": skipped, "reference_fails_here": unsolvable, "elapsed_s": round(elapsed_s, 3)}


def evaluate(exercises: Sequence[Exercise], complete: Complete, out_dir: str | pathlib.Path,
             settings: PolyglotSettings = PolyglotSettings(), *, stream=None) -> dict:
    """Runs the exercises not yet in <out_dir>/samples.jsonl (languages without a toolchain skipped, with their
    reason in the summary); writes and returns the summary over all of `exercises` that ran."""
    started = time.monotonic()
    skipped = {}
    for language in sorted({e.language for e in exercises}):
        reason = tc.available(language)
        if reason:
            skipped[language] = reason
            print(f"polyglot: skipping {reason}", file=stream or sys.stderr)
    exercises = [e for e in exercises if e.language not in skipped]
    store = SampleStore(out_dir, {"benchmark": "polyglot", **settings.identity()})
    todo = [e for e in exercises if not store.done(e.exercise_id)]
    progress = Progress("polyglot", len(exercises), len(exercises) - len(todo), stream)
    pool = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="polyglot")
    try:
        for start in range(0, len(todo), settings.exercises_per_call):
            chunk = todo[start:start + settings.exercises_per_call]
            history = {e.exercise_id: [] for e in chunk}
            active, prompts = list(chunk), [prompt_text(e) for e in chunk]
            for attempt in range(1, settings.tries + 1):
                generations = complete(prompts, 1, settings.temperature, settings.seed + start + attempt * 100_003)
                if len(generations) != len(active) or any(len(g) != 1 for g in generations):
                    raise ValueError(f"complete() returned {[len(g) for g in generations]} generations for "
                                     f"{len(active)} prompts; expected 1 each")
                answers = [parse_files(e, g[0]) for e, g in zip(active, generations)]
                judged = list(pool.map(lambda pair: _judge(*pair), zip(active, answers)))
                still, next_prompts = [], []
                for exercise, prompt, generation, answer, (verdict, syntax_ok, feedback) in zip(
                        active, prompts, generations, answers, judged):
                    history[exercise.exercise_id].append(_record(answer, verdict, syntax_ok, attempt, settings))
                    if not verdict.passed:
                        still.append(exercise)
                        next_prompts.append(feedback_prompt(prompt, extract_instruction(generation[0]),
                                                            retry_feedback(exercise, feedback)))
                active, prompts = still, next_prompts
                if not active:
                    break
            for exercise in chunk:
                store.append(exercise.exercise_id, history[exercise.exercise_id])
            done = [e for e in exercises if store.done(e.exercise_id)]
            progress.update(len(done), sum(any(r["status"] == "passed" for r in store.tasks[e.exercise_id])
                                           for e in done), len(done))
    finally:
        pool.shutdown()
        progress.close()
    summary = summarize(exercises, store, settings.tries, skipped, time.monotonic() - started)
    (pathlib.Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def select(languages: Sequence[str], limit: int | None = None, data_dir: str | None = None) -> list[Exercise]:
    """The exercises of `languages`, the first `limit` of each (all when None)."""
    exercises = load_exercises(languages, data_dir)
    if not limit:
        return exercises
    kept, counts = [], collections.Counter()
    for exercise in exercises:
        counts[exercise.language] += 1
        if counts[exercise.language] <= limit:
            kept.append(exercise)
    return kept


if __name__ == "__main__":
    from evals import polyglot_cli

    polyglot_cli.main()
