"""Code out of a model's generated text, per prompt format.

  fewshot      the 3-shot MBPP prompt left open after [BEGIN]: the code before the first [DONE].
  instruction  our `<PROMPT> .. <TESTS> .. <CODE>` format: the code before the eos (`</s>`) or any task marker.
  fenced       a Markdown answer: the first ```python (or bare ```) block; unfenced text is taken whole.
  humaneval    a function-body continuation: cut at the first top-level stop string (Chen et al. 2021).
"""
from __future__ import annotations

import re

from input_pipeline.prompts import BEGIN, DONE
from input_pipeline.tokenizer import EOS, TASK_MARKERS

HUMANEVAL_STOPS = ("\nclass ", "\ndef ", "\nif __name__", "\nprint(", "\n#")
INSTRUCTION_STOPS = (EOS,) + TASK_MARKERS
FORMATS = ("fewshot", "instruction", "fenced", "humaneval")

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)


def truncate_at_stops(text: str, stops: tuple[str, ...] = HUMANEVAL_STOPS) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def extract_fewshot(generated: str) -> str:
    """The code before the first [DONE] (a repeated leading [BEGIN] is dropped)."""
    text = generated.lstrip()
    if text.startswith(BEGIN):
        text = text[len(BEGIN):]
    return text.split(DONE, 1)[0].strip("\n")


def extract_instruction(generated: str) -> str:
    """The code before the first `</s>` or task marker (<PROMPT>, <TESTS>, <CODE>, <FEEDBACK>)."""
    return truncate_at_stops(generated, INSTRUCTION_STOPS).strip("\n")


def extract_fenced(generated: str) -> str:
    """The body of the first ``` block (an unclosed one runs to the end); the whole text when none."""
    match = _FENCE.search(generated)
    return match.group(1) if match else generated


def extract_humaneval(generated: str) -> str:
    """The function-body continuation up to the first HUMANEVAL_STOPS string."""
    return truncate_at_stops(generated, HUMANEVAL_STOPS)


_EXTRACTORS = {"fewshot": extract_fewshot, "instruction": extract_instruction, "fenced": extract_fenced,
               "humaneval": extract_humaneval}


def extract_code(generated: str, fmt: str) -> str:
    """Dispatch on the prompt format (one of FORMATS)."""
    try:
        return _EXTRACTORS[fmt](generated)
    except KeyError:
        raise ValueError(f"unknown completion format {fmt!r}; choose one of {list(FORMATS)}") from None
