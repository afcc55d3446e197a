"""Harness check: every MBPP test-split reference and every HumanEval canonical solution passes in the sandbox
(2 workers, the evaluator's own check programs). About 40 s on a 2-core machine (30 s MBPP, 10 s HumanEval)."""
import collections

from evals.runner import EvalSettings, judge
from evals.tasks import humaneval_tasks, mbpp_tasks
from input_pipeline.humaneval import load_humaneval
from input_pipeline.mbpp_data import load_mbpp
from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)


def _failures(tasks):
    verdicts = [v[0] for v in judge(tasks, [[t.reference] for t in tasks], EvalSettings(max_workers=2))]
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
