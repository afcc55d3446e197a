"""The evaluator and refinement loop with fake models, through the real sandbox."""
import io
import json

import pytest

from evals.refine import execution_feedback, refine
from evals.runner import EvalSettings, evaluate
from evals.sample_store import SampleStoreError
from evals.sandbox import SandboxLimits
from evals.tasks import FEEDBACK_MARKER, mbpp_tasks
from evals.verdict import Status, Verdict
from input_pipeline.mbpp_data import load_mbpp
from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)

RECORDS = load_mbpp("test")[:6]
TASKS = mbpp_tasks(RECORDS)
BY_PROMPT = {t.prompt: t for t in TASKS}


class FakeModel:
    """Answers the reference for even task ids, a wrong function otherwise; records every prompt it saw."""

    def __init__(self):
        self.seen = []

    def __call__(self, prompts, n, temperature, seed):
        self.seen += prompts
        out = []
        for p in prompts:
            task = BY_PROMPT[p]
            good = int(task.task_id) % 2 == 0
            out.append([(task.reference if good or i == 0 and n > 1 else "def f(:\n") + "</s>junk"
                        for i in range(n)])
        return out


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_greedy_run_writes_samples_and_summary(tmp_path):
    stream = io.StringIO()
    summary = evaluate("mbpp", TASKS, FakeModel(), tmp_path, EvalSettings(tasks_per_call=4), stream=stream)
    lines = _lines(tmp_path / "samples.jsonl")
    assert [r["task_id"] for r in lines] == [t.task_id for t in TASKS]
    even = [int(t.task_id) % 2 == 0 for t in TASKS]
    assert [r["status"] == "passed" for r in lines] == even
    assert all(r["completion"] == t.reference for r, t, e in zip(lines, TASKS, even) if e)  # </s> cut off
    assert [r["syntax_ok"] for r in lines] == even
    bad = next(r for r in lines if r["status"] != "passed")
    assert bad["status"] == "error" and bad["error_type"] == "SyntaxError" and bad["message"]
    assert summary["pass_at_k"]["pass@1"] == summary["greedy_pass@1"] == sum(even) / len(TASKS)
    assert summary["syntax_valid_rate"] == sum(even) / len(TASKS)
    assert summary["status_counts"] == {"passed": sum(even), "error": len(TASKS) - sum(even)}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert "6/6 tasks" in stream.getvalue() and "ETA" in stream.getvalue()


def test_pass_at_k_with_samples(tmp_path):
    settings = EvalSettings(n=3, ks=(1, 2), temperature=0.8, tasks_per_call=6)
    summary = evaluate("mbpp", TASKS[:2], FakeModel(), tmp_path, settings, stream=io.StringIO())
    # one task 3/3 correct, the other 1/3: pass@1 = (1 + 1/3) / 2, pass@2 = (1 + 2/3) / 2
    assert summary["pass_at_k"]["pass@1"] == pytest.approx(2 / 3)
    assert summary["pass_at_k"]["pass@2"] == pytest.approx(5 / 6)
    assert "greedy_pass@1" not in summary and summary["num_samples"] == 6


def test_resume_skips_completed_tasks(tmp_path):
    first = FakeModel()
    evaluate("mbpp", TASKS, first, tmp_path, EvalSettings(tasks_per_call=2), limit=3, stream=io.StringIO())
    assert len(first.seen) == 3
    with open(tmp_path / "samples.jsonl", "a") as f:  # an interrupted write: torn line of task 4
        f.write('{"task_id": "' + TASKS[3].task_id + '", "sam')
    second = FakeModel()
    summary = evaluate("mbpp", TASKS, second, tmp_path, EvalSettings(tasks_per_call=2), stream=io.StringIO())
    assert second.seen == [t.prompt for t in TASKS[3:]]  # the first three were not regenerated
    assert [r["task_id"] for r in _lines(tmp_path / "samples.jsonl")] == [t.task_id for t in TASKS]
    assert summary["num_tasks"] == 6
    with pytest.raises(SampleStoreError, match="samples.settings.json: setting 'seed' was 0, now 1"):
        evaluate("mbpp", TASKS, FakeModel(), tmp_path, EvalSettings(seed=1), stream=io.StringIO())


def test_settings_are_checked():
    with pytest.raises(ValueError, match="temperature 0"):
        EvalSettings(n=2, ks=(1,))
    with pytest.raises(ValueError, match="1 <= k <= n"):
        EvalSettings(n=2, ks=(3,), temperature=1.0)


def test_wrong_completion_fails_and_hanging_one_times_out(tmp_path):
    task = TASKS[0]
    hang = "def _spin():\n    while True:\n        pass\n_spin()\n"

    def model(prompts, n, temperature, seed):
        return [["def " + task.reference.split("def ", 1)[1].split("(")[0] + "(*a):\n    return None\n", hang]]

    settings = EvalSettings(n=2, ks=(1,), temperature=1.0, limits=SandboxLimits(cpu_seconds=1, wall_seconds=2))
    summary = evaluate("mbpp", [task], model, tmp_path, settings, stream=io.StringIO())
    statuses = [r["status"] for r in _lines(tmp_path / "samples.jsonl")]
    assert statuses == ["failed", "timeout"] and summary["pass_at_k"]["pass@1"] == 0.0


class FixingModel:
    """Writes broken code first; answers correctly only after a <FEEDBACK> that shows the error."""

    def __init__(self):
        self.feedback = []

    def __call__(self, prompts, n, temperature, seed):
        out = []
        for p in prompts:
            base = p.split("def f", 1)[0].split(FEEDBACK_MARKER)[0] if FEEDBACK_MARKER in p else p
            task = next(t for t in TASKS if base.startswith(t.prompt))
            if FEEDBACK_MARKER in p:
                self.feedback.append(p.split(FEEDBACK_MARKER, 1)[1])
                out.append([task.reference])
            elif int(task.task_id) % 3 == 0:
                out.append(["def f(:\n    pass"])
            else:
                out.append(["def f():\n    return 0\n"])
        return out


def test_refinement_fixes_code_only_with_feedback(tmp_path):
    model = FixingModel()
    summary = refine("mbpp", TASKS, model, tmp_path, rounds=2, settings=EvalSettings(tasks_per_call=4),
                     stream=io.StringIO())
    assert summary["pass@1"] == 0.0 and summary["pass@1_refined"] == 1.0
    assert summary["pass@1_by_round"] == [0.0, 1.0, 1.0] and summary["mean_rounds_used"] == 1.0
    assert len(model.feedback) == len(TASKS)
    assert any(fb.startswith("SyntaxError: ") and "line 1" in fb for fb in model.feedback)  # syntax feedback
    assert any("NameError" in fb for fb in model.feedback)  # execution feedback (f is not the task's name)
    lines = _lines(tmp_path / "refine.jsonl")
    assert [r["round"] for r in lines] == [0, 1] * len(TASKS) and all("feedback" in r for r in lines[::2])
    zero = refine("mbpp", TASKS, FixingModel(), tmp_path / "zero", rounds=0, stream=io.StringIO())
    assert zero["pass@1"] == zero["pass@1_refined"] == 0.0


def test_execution_feedback_is_truncated_to_the_tail():
    verdict = Verdict(Status.FAILED, "AssertionError", "x" * 1000 + "assert f(1) == 2")
    text = execution_feedback("def f(x):\n    return x\n", verdict, max_chars=100)
    assert len(text) == 100 and text.startswith("AssertionError: ") and text.endswith("assert f(1) == 2")
