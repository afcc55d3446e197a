"""samples.jsonl resume rules, and prompt encoding for the real model."""
import json

import pytest

from evals.model_completion import encode_with_markers
from evals.sample_store import SampleStore, SampleStoreError
from evals.tasks import feedback_prompt, instruction_prompt_text
from input_pipeline.mbpp_data import load_mbpp
from input_pipeline.prompts import instruction_prompt_ids
from tests.fixtures_tokenizer import session_tokenizer


def test_incomplete_tasks_are_dropped_and_bad_lines_named(tmp_path):
    store = SampleStore(tmp_path, {"n": 2})
    store.append("a", [{"status": "passed"}, {"status": "failed"}])
    with open(store.path, "a") as f:
        f.write(json.dumps({"task_id": "b", "sample": 0, "of": 2}) + "\n")  # b's second sample never written
    again = SampleStore(tmp_path, {"n": 2})
    assert again.done("a") and not again.done("b")
    assert [json.loads(x)["task_id"] for x in store.path.read_text().splitlines()] == ["a", "a"]
    with open(store.path, "a") as f:
        f.write('{"task_id": "c"}\n')
    with pytest.raises(SampleStoreError, match=r"samples.jsonl:3: not a sample record"):
        SampleStore(tmp_path, {"n": 2})


def test_prompt_text_encodes_like_training():
    tok = session_tokenizer()
    record = load_mbpp("test")[0]
    prompt = instruction_prompt_text(record)
    assert encode_with_markers(tok, prompt) == instruction_prompt_ids(record, tok)
    ids = encode_with_markers(tok, feedback_prompt(prompt, "def f(): pass", "NameError: x"))
    assert ids.count(tok.special_id("<CODE>")) == 2 and tok.special_id("<FEEDBACK>") in ids
