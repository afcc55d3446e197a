"""Benchmark tasks as the evaluator sees them: an id, a prompt, how to read code out of a generation, the
candidate program a completion makes, and the task's tests as a TestPlan (evals/test_plan.py)."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from evals.test_plan import TestPlan, humaneval_plan, mbpp_plan
from input_pipeline.prompts import CODE_MARKER, PROMPT_MARKER, TESTS_MARKER, fewshot_prompt, reference_code

FEEDBACK_MARKER = "<FEEDBACK>"
MBPP_FORMATS = ("instruction", "fewshot")


@dataclasses.dataclass(frozen=True)
class Task:
    """One problem. `fmt` names the code_extraction format; `program(code)` is the candidate program the
    extracted code makes (the tests are not part of it: `tests` are run against it by evals.judging)."""

    task_id: str
    prompt: str
    fmt: str
    program: Callable[[str], str]
    tests: TestPlan
    reference: str | None = None


def instruction_prompt_text(record: dict) -> str:
    """`<PROMPT> text <TESTS> tests <CODE>` as text (markers are single tokens; see model_completion)."""
    return f"{PROMPT_MARKER}{record['text']}{TESTS_MARKER}{chr(10).join(record['test_list'])}{CODE_MARKER}"


def feedback_prompt(prompt: str, attempt: str, feedback: str) -> str:
    """A refinement prompt: the original prompt and the failed attempt, `<FEEDBACK>` the error, `<CODE>` again."""
    return f"{prompt}{attempt}{FEEDBACK_MARKER}{feedback}{CODE_MARKER}"


def mbpp_tasks(records: Sequence[dict], fmt: str = "instruction",
               exemplars: Sequence[dict] | None = None) -> list[Task]:
    """MBPP records as tasks; "fewshot" needs the three exemplars (tasks 2-4, the "prompt" split)."""
    if fmt not in MBPP_FORMATS:
        raise ValueError(f"unknown MBPP prompt format {fmt!r}; choose one of {list(MBPP_FORMATS)}")
    if fmt == "fewshot" and not exemplars:
        raise ValueError("the fewshot MBPP format needs exemplars (select_fewshot_exemplars of the prompt split)")
    out = []
    for r in records:
        prompt = instruction_prompt_text(r) if fmt == "instruction" else fewshot_prompt(r, exemplars)
        out.append(Task(str(r["task_id"]), prompt, fmt, _as_is, mbpp_plan(r), reference_code(r)))
    return out


def humaneval_tasks(problems: Sequence[dict]) -> list[Task]:
    """HumanEval problems as completion tasks: the prompt is the signature and docstring."""
    return [Task(p["task_id"], p["prompt"], "humaneval", functools.partial(_after_prompt, p["prompt"]),
                 humaneval_plan(p), p["canonical_solution"]) for p in problems]


def _as_is(code: str) -> str:
    return code


def _after_prompt(prompt: str, completion: str) -> str:
    """HumanEval completes the prompt's function: the candidate program is the prompt, then the completion."""
    return prompt + completion + "\n"
