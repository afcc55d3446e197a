"""MBPP prompt formats: the paper's 3-shot prompt and the marker format with its loss mask."""
import numpy as np
import pytest

from input_pipeline.mbpp_data import load_mbpp
from input_pipeline.prompts import (FEWSHOT_TASK_IDS, extract_fewshot_completion, fewshot_prompt,
                                    instruction_example, instruction_prompt_ids, reference_code,
                                    select_fewshot_exemplars)
from tests.fixtures_tokenizer import tokenizer  # noqa: F401,F811  (pytest fixture)


@pytest.fixture(scope="module")
def exemplars():
    return select_fewshot_exemplars(load_mbpp("prompt"))


def test_fewshot_exemplars_are_tasks_2_3_4(exemplars):
    assert [r["task_id"] for r in exemplars] == [2, 3, 4] == list(FEWSHOT_TASK_IDS)
    with pytest.raises(ValueError, match=r"exemplar task\(s\) \[2, 3, 4\] not among"):
        select_fewshot_exemplars(load_mbpp("test"))


def test_fewshot_prompt_layout(exemplars):
    target = load_mbpp("test")[0]
    prompt = fewshot_prompt(target, exemplars)
    header = "You are an expert Python programmer, and here is your task: "
    assert prompt.count(header) == 4 and prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3
    first = exemplars[0]
    tests = "\n".join(first["test_list"])
    assert prompt.startswith(f"{header}{first['text']} Your code should pass these tests:\n\n{tests}\n"
                             f"[BEGIN]\n{reference_code(first)}\n[DONE]\n")
    target_tests = "\n".join(target["test_list"])
    assert prompt.endswith(f"{header}{target['text']} Your code should pass these tests:\n\n"
                           f"{target_tests}\n[BEGIN]\n")
    assert "\r" not in prompt.split(target["text"])[0]


def test_extract_fewshot_completion():
    assert extract_fewshot_completion("def f():\n    return 1\n[DONE]\nYou are an expert") == \
        "def f():\n    return 1"
    assert extract_fewshot_completion("def f(): pass") == "def f(): pass"


def test_instruction_example_masks_only_code_and_eos(tokenizer):
    record = load_mbpp("train")[0]
    ids, mask = instruction_example(record, tokenizer)
    assert ids.dtype == np.int32 and mask.dtype == np.int32 and ids.shape == mask.shape
    prompt = instruction_prompt_ids(record, tokenizer)
    n = len(prompt)
    assert ids[:n].tolist() == prompt and not mask[:n].any() and mask[n:].all()
    assert ids[-1] == tokenizer.eos_id
    assert tokenizer.decode(ids[n:]) == reference_code(record)
    tests = "\n".join(record["test_list"])
    assert tokenizer.decode(prompt) == f"<PROMPT>{record['text']}<TESTS>{tests}<CODE>"
    assert prompt[0] == tokenizer.special_id("<PROMPT>") and prompt[-1] == tokenizer.special_id("<CODE>")


def test_instruction_examples_for_the_whole_train_split(tokenizer):
    for record in load_mbpp("train"):
        ids, mask = instruction_example(record, tokenizer)
        assert tokenizer.decode(ids[mask == 1]) == reference_code(record)
        assert int(ids.max()) < tokenizer.vocab_size


def test_marker_text_inside_a_field_is_refused(tokenizer):
    record = dict(load_mbpp("train")[0], text="Write <CODE> here")
    with pytest.raises(ValueError, match=r"MBPP task 601: field 'text' contains the special token '<CODE>'"):
        instruction_example(record, tokenizer)
