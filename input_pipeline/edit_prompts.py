"""The one prompt format of the code-edit stages, and their tokenized examples.

    <PROMPT>{instruction}<CODE>{pre-code}<INTENT:REFACTOR>{target}</s>

The prompt ends with `<INTENT:REFACTOR>`, which opens the answer. Stage 0 ("edit_sft"): the target is the
post-code. Stage 1 ("edit_actions"): the target is the action, `<action>\\n{rule_yaml}</action>`
(`codemods.actions.action_text`). The loss mask is 1 on the target and `</s>` only.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from input_pipeline.codemods import actions as actions_lib
from input_pipeline.codemods.records import NormalizedRecord
from input_pipeline.tokenizer import Tokenizer

PROMPT_MARKER, CODE_MARKER, ANSWER_MARKER = "<PROMPT>", "<CODE>", "<INTENT:REFACTOR>"
STAGES = {"edit_sft": "post", "edit_actions": "action"}


def prompt_ids(record: NormalizedRecord, tokenizer: Tokenizer) -> list[int]:
    """`<PROMPT> instruction <CODE> pre <INTENT:REFACTOR>` as ids: the model's input when answering."""
    return ([tokenizer.special_id(PROMPT_MARKER)] + _plain(tokenizer, record.instruction, record, "instruction")
            + [tokenizer.special_id(CODE_MARKER)] + _plain(tokenizer, record.pre, record, "pre")
            + [tokenizer.special_id(ANSWER_MARKER)])


def target_text(record: NormalizedRecord, stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown edit stage {stage!r}; one of {sorted(STAGES)}")
    return record.post if STAGES[stage] == "post" else actions_lib.action_text(record.action)


def edit_example(record: NormalizedRecord, tokenizer: Tokenizer, stage: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, loss_mask) of prompt + target + </s>; the mask is 1 on the target and </s>."""
    prompt = prompt_ids(record, tokenizer)
    target = _plain(tokenizer, target_text(record, stage), record, "target") + [tokenizer.eos_id]
    ids = np.asarray(prompt + target, np.int32)
    mask = np.concatenate([np.zeros(len(prompt), np.int32), np.ones(len(target), np.int32)])
    return ids, mask


def fitting(records: Sequence[NormalizedRecord], tokenizer: Tokenizer, stage: str, seq_len: int,
            max_new_tokens: int = 0) -> list[NormalizedRecord]:
    """The records whose whole example fits `seq_len` tokens (and whose target fits `max_new_tokens`, if > 0)."""
    out = []
    for r in records:
        try:
            ids, mask = edit_example(r, tokenizer, stage)
        except ValueError:
            continue
        if len(ids) <= seq_len and (max_new_tokens <= 0 or int(mask.sum()) <= max_new_tokens):
            out.append(r)
    return out


def _plain(tokenizer: Tokenizer, text: str, record: NormalizedRecord, field: str) -> list[int]:
    ids = tokenizer.encode(text)
    special = {i: name for name, i in tokenizer.special_token_ids.items()}
    clash = next((special[i] for i in ids if i in special), None)
    if clash is not None:
        raise ValueError(f"codemod record {record.id}: {field} contains the special token {clash!r}")
    return ids
