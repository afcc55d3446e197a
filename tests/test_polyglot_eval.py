"""The polyglot evaluator: prompts, file parsing, two tries with feedback, summary and resume (a fake model),
and `python -m evals.polyglot` end to end on a tiny HRM-Text trained for a step."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from evals import polyglot, polyglot_toolchains as tc
from evals.tasks import FEEDBACK_MARKER
from tests.fixtures_tokenizer import data_dir, session_tokenizer

REPO = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = polyglot.select(["go", "python"], limit=2)


class FakeModel:
    """Answers the reference at once for exercises starting with "a", a syntax error first otherwise (then the
    reference on the retry); records the prompts."""

    def __init__(self):
        self.seen = []

    def __call__(self, prompts, n, temperature, seed):
        self.seen += prompts
        out = []
        for prompt in prompts:
            exercise = next(e for e in EXERCISES if prompt.startswith(polyglot.prompt_text(e)[:-len("<CODE>")]))
            good = exercise.name.startswith("a") or FEEDBACK_MARKER in prompt
            files = exercise.reference if good else {p: "broken(" for p in exercise.solution}
            out.append(["".join(f"{p}\n```\n{t}\n```\n" for p, t in files.items()) + "</s>tail"])
        return out


def test_prompt_holds_instructions_and_stubs():
    exercise = EXERCISES[0]
    text = polyglot.prompt_text(exercise)
    assert exercise.instructions[:200] in text and text.endswith("<CODE>")
    for path in exercise.solution:
        assert f"{path}\n```go\n" in text and exercise.files[path].strip() in text


def test_parse_files_takes_named_blocks_and_a_lone_answer():
    exercise = EXERCISES[0]
    path = exercise.solution[0]
    assert polyglot.parse_files(exercise, f"Here:\n{path}\n```go\npackage x\n```\n</s>junk") == {path: "package x\n"}
    assert polyglot.parse_files(exercise, "```\npackage y\n```") == {path: "package y\n"}
    assert polyglot.parse_files(exercise, "package z") == {path: "package z"}


def test_two_tries_feedback_summary_and_resume(tmp_path):
    for language in ("go", "python"):
        if tc.available(language):
            pytest.skip(tc.available(language))
    model = FakeModel()
    summary = polyglot.evaluate(EXERCISES, model, tmp_path)
    assert summary["overall"]["num_exercises"] == 4
    for language in ("go", "python"):
        row = summary["languages"][language]
        first_try = sum(e.name.startswith("a") for e in EXERCISES if e.language == language) / 2
        assert row["pass@1"] == first_try and row["pass@2"] == 1.0, row
    assert summary["overall"]["status_counts"]["compile_error"] == sum(not e.name.startswith("a") for e in EXERCISES)
    retries = [p for p in model.seen if FEEDBACK_MARKER in p]
    assert retries and all("See the testing errors above." in p for p in retries)
    assert any(".go:1:1: expected 'package'" in p for p in retries)  # gofmt's error text is fed back
    lines = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in lines} == {e.exercise_id for e in EXERCISES}
    assert all(isinstance(r["syntax_ok"], bool) and r["try"] in (1, 2) for r in lines)
    seen = len(model.seen)
    assert polyglot.evaluate(EXERCISES, model, tmp_path)["overall"] == summary["overall"]
    assert len(model.seen) == seen  # resumed: nothing generated again


def test_an_answer_with_no_files_is_not_counted_syntax_valid(tmp_path):
    """The stubs stay when the model writes nothing; they may parse, but that is not the model's syntax."""
    python_only = [e for e in EXERCISES if e.language == "python"]
    assert polyglot.parse_files(python_only[0], "  \n") == {}
    summary = polyglot.evaluate(python_only, lambda prompts, n, temperature, seed: [[""] for _ in prompts], tmp_path)
    row = summary["languages"]["python"]
    assert row["answered_rate"] == 0.0 and row["syntax_valid_rate"] == 0.0 and row["pass@2"] == 0.0, row
    lines = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert lines and all(r["files"] == {} and r["syntax_ok"] is False for r in lines)


def test_a_missing_toolchain_skips_its_language(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "available", lambda language: "go: `go` not found" if language == "go" else None)
    python_only = [e for e in EXERCISES if e.language == "python"]
    summary = polyglot.evaluate(EXERCISES, FakeModel(), tmp_path)
    assert summary["skipped"] == {"go": "go: `go` not found"}
    assert summary["overall"]["num_exercises"] == len(python_only) and list(summary["languages"]) == ["python"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from configs import mbpp
    from hrm_jax import config as config_lib, train

    root = tmp_path_factory.mktemp("polyglot_cli")
    tokenizer = root / "code.model"
    session_tokenizer().save(tokenizer)
    c = mbpp.get_config("tiny")
    for key, value in {"data.tokenizer": str(tokenizer), "data.data_dir": str(data_dir()), "data.seq_len": 96,
                       "optim.lr_warmup_steps": 1, "train.steps": 1, "train.eval_batches": 1}.items():
        section, field = key.split(".")
        c[section][field] = value
    config_lib.validate(c)
    train.train_and_evaluate(c, str(root / "run"))
    return root / "run"


@pytest.mark.slow  # ~2 min on 2 cores: a training step, then two exercises with two tries each
def test_polyglot_cli_end_to_end_with_a_tiny_model(run_dir, tmp_path):
    if tc.available("python") or tc.available("javascript"):
        pytest.skip(tc.available("python") or tc.available("javascript"))
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    out = tmp_path / "polyglot"
    proc = subprocess.run([sys.executable, "-m", "evals.polyglot", f"--workdir={run_dir}",
                           "--languages=python,javascript", "--limit=1", "--tries=2", "--max_new_tokens=8",
                           "--max_prompt_tokens=256", "--batch_size=2", f"--out={out}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["num_exercises"] == 2 and set(summary["languages"]) == {"python", "javascript"}
    assert 0.0 <= summary["overall"]["pass@1"] <= summary["overall"]["pass@2"] <= 1.0
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in lines} == {"python/affine-cipher", "javascript/affine-cipher"}
    assert all(r["status"] != "passed" or r["try"] == 1 for r in lines) and all(r["message"] for r in lines
                                                                                 if r["status"] != "passed")
