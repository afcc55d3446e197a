"""Benchmark tasks as the evaluator sees them: an id, a prompt, how to read code out of a generation, and
how to build the program that checks the code."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from input_pipeline.humaneval import humaneval_check_program
from input_pipeline.mbpp_data import mbpp_check_program
from input_pipeline.prompts import CODE_MARKER, PROMPT_MARKER, TESTS_MARKER, fewshot_prompt, reference_code

FEEDBACK_MARKER = "<FEEDBACK>"
MBPP_FORMATS = ("instruction", "fewshot")


@dataclasses.dataclass(frozen=True)
class Task:
    """One problem. `fmt` names the code_extraction format; `check_program(code)` is the program to run."""

    task_id: str
    prompt: str
    fmt: str
    check_program: Callable[[str], str]
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
        out.append(Task(str(r["task_id"]), prompt, fmt, functools.partial(mbpp_check_program, r),
                        reference_code(r)))
    return out


def humaneval_tasks(problems: Sequence[dict]) -> list[Task]:
    """HumanEval problems as completion tasks: the prompt is the signature and docstring."""
    return [Task(p["task_id"], p["prompt"], "humaneval", functools.partial(humaneval_check_program, p),
                 p["canonical_solution"]) for p in problems]
