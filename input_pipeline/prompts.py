"""MBPP prompt formats: the paper's 3-shot text prompt, and the zero-shot marker format used for fine-tuning.

Reference code is written with "\\n" line ends (MBPP's code mixes in "\\r\\n").
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from input_pipeline.tokenizer import Tokenizer

# Austin et al. (2021) prompt with tasks 2, 3 and 4 as the three shots.
FEWSHOT_TASK_IDS = (2, 3, 4)
BEGIN, DONE = "[BEGIN]", "[DONE]"

PROMPT_MARKER, TESTS_MARKER, CODE_MARKER = "<PROMPT>", "<TESTS>", "<CODE>"


def reference_code(record: dict) -> str:
    """The record's reference solution with "\\n" line ends."""
    return record["code"].replace("\r\n", "\n")


def _task_header(record: dict) -> str:
    tests = "\n".join(record["test_list"])
    return (f"You are an expert Python programmer, and here is your task: {record['text']} "
            f"Your code should pass these tests:\n\n{tests}\n{BEGIN}\n")


def select_fewshot_exemplars(records: Sequence[dict]) -> list[dict]:
    """Tasks 2, 3, 4 from `records` (e.g. the "prompt" split), in that order."""
    by_id = {r["task_id"]: r for r in records}
    missing = [t for t in FEWSHOT_TASK_IDS if t not in by_id]
    if missing:
        raise ValueError(f"few-shot exemplar task(s) {missing} not among the given records; "
                         "pass the 'prompt' split")
    return [by_id[t] for t in FEWSHOT_TASK_IDS]


def fewshot_prompt(record: dict, exemplars: Sequence[dict]) -> str:
    """The shots (each closed with [DONE]) followed by `record`'s task, left open after [BEGIN]."""
    shots = [_task_header(ex) + reference_code(ex) + f"\n{DONE}\n" for ex in exemplars]
    return "".join(shots) + _task_header(record)


def extract_fewshot_completion(generated: str) -> str:
    """The code a model wrote after the open [BEGIN]: everything before the first [DONE]."""
    return generated.split(DONE, 1)[0].strip("\n")


def instruction_prompt_ids(record: dict, tokenizer: Tokenizer) -> list[int]:
    """`<PROMPT> text <TESTS> tests <CODE>` as ids: the model's input when generating the code."""
    ids: list[int] = []
    for marker, field, text in ((PROMPT_MARKER, "text", record["text"]),
                                (TESTS_MARKER, "test_list", "\n".join(record["test_list"]))):
        ids.append(tokenizer.special_id(marker))
        ids.extend(_encode_plain(tokenizer, text, record, field))
    ids.append(tokenizer.special_id(CODE_MARKER))
    return ids


def instruction_example(record: dict, tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(ids, loss_mask) of `<PROMPT> text <TESTS> tests <CODE> code <eos>`; the mask is 1 on code and eos.

    Both are int32 arrays of the same length.
    """
    prompt = instruction_prompt_ids(record, tokenizer)
    target = _encode_plain(tokenizer, reference_code(record), record, "code") + [tokenizer.eos_id]
    ids = np.asarray(prompt + target, dtype=np.int32)
    mask = np.concatenate([np.zeros(len(prompt), np.int32), np.ones(len(target), np.int32)])
    return ids, mask


def _encode_plain(tokenizer: Tokenizer, text: str, record: dict, field: str) -> list[int]:
    """Encodes a data field, refusing text that would encode to a special token (e.g. a literal "<CODE>")."""
    ids = tokenizer.encode(text)
    special = {i: name for name, i in tokenizer.special_token_ids.items()}
    clash = next((special[i] for i in ids if i in special), None)
    if clash is not None:
        raise ValueError(f"MBPP task {record.get('task_id')}: field {field!r} contains the special token "
                         f"{clash!r}, which would break the prompt structure")
    return ids
