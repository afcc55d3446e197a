"""Harness check: every MBPP test-split reference and every HumanEval canonical solution passes through the
evaluator's own judging (2 workers): values returned by the sandbox, compared outside it; HumanEval's 7 script
tests in a judge sandbox. Each test prints its time (pytest -s); see benchmarks/sandbox_overhead.py."""
import collections
import time

from evals.runner import EvalSettings, judge
from evals.tasks import humaneval_tasks, mbpp_tasks
from input_pipeline.humaneval import load_humaneval
from input_pipeline.mbpp_data import load_mbpp
from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)


def _failures(tasks):
    started = time.perf_counter()
    verdicts = [v[0] for v in judge(tasks, [[t.reference] for t in tasks], EvalSettings(max_workers=2))]
    print(f"\n{len(tasks)} reference solutions judged in {time.perf_counter() - started:.1f}s")
    failures = {t.task_id: f"{v.status} {v.error_type}: {v.message[-300:]}" for t, v in zip(tasks, verdicts)
                if not v.passed}
    return collections.Counter(v.status for v in verdicts), failures


def test_mbpp_references_pass_500_of_500():
    tasks = mbpp_tasks(load_mbpp("test"))
    assert [int(t.task_id) for t in tasks] == list(range(11, 511))
    counts, failures = _failures(tasks)
    assert failures == {} and counts == {"passed": 500}


def test_humaneval_canonical_solutions_pass_164_of_164():
    counts, failures = _failures(humaneval_tasks(load_humaneval()))
    assert failures == {} and counts == {"passed": 164}
