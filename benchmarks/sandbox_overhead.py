"""Benchmark: what the code sandbox costs per program, and the reference-solution harness check's time.

    python benchmarks/sandbox_overhead.py [--trivial 20] [--tasks 50] [--workers 2] [--full] [--json OUT]

Prints, on this machine:
  trivial_s       mean wall time of one sandboxed run of an empty candidate (one worker, sequential): the
                  fixed per-task overhead (process start, namespaces, mounts, limits, verdict).
  mbpp_task_s     mean wall time per MBPP test-split reference solution judged through evals.runner.judge
                  with one worker (`--tasks` of them): overhead plus the tests themselves.
  harness_s       with --full: all 500 MBPP test references and 164 HumanEval canonical solutions judged
                  with `--workers` workers, as tests/test_evals_harness.py does, and how many passed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evals.runner import EvalSettings, judge  # noqa: E402
from evals.tasks import humaneval_tasks, mbpp_tasks  # noqa: E402
from input_pipeline.humaneval import load_humaneval  # noqa: E402
from input_pipeline.mbpp_data import load_mbpp  # noqa: E402


def _timed_judge(tasks, codes, workers: int) -> tuple[float, list]:
    started = time.perf_counter()
    verdicts = judge(tasks, codes, EvalSettings(max_workers=workers))
    return time.perf_counter() - started, [v for vs in verdicts for v in vs]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=20, help="empty-candidate runs to average")
    parser.add_argument("--tasks", type=int, default=50, help="MBPP reference solutions to time one by one")
    parser.add_argument("--workers", type=int, default=2, help="workers for the --full harness check")
    parser.add_argument("--full", action="store_true", help="also time the 500 + 164 reference harness check")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    mbpp = mbpp_tasks(load_mbpp("test"))
    trivial_task = mbpp[0]
    times = []
    for _ in range(args.trivial):  # the reference itself: the smallest real candidate (its tests are 3 calls)
        elapsed, _ = _timed_judge([trivial_task], [[trivial_task.reference]], 1)
        times.append(elapsed)
    out = {"trivial_s_mean": statistics.mean(times), "trivial_s_median": statistics.median(times)}
    subset = mbpp[:args.tasks]
    elapsed, verdicts = _timed_judge(subset, [[t.reference] for t in subset], 1)
    out.update(mbpp_task_s=elapsed / len(subset), mbpp_subset_passed=sum(v.passed for v in verdicts),
               mbpp_subset=len(subset))
    if args.full:
        he = humaneval_tasks(load_humaneval())
        m_s, m_v = _timed_judge(mbpp, [[t.reference] for t in mbpp], args.workers)
        h_s, h_v = _timed_judge(he, [[t.reference] for t in he], args.workers)
        out.update(harness_mbpp_s=m_s, harness_mbpp_passed=sum(v.passed for v in m_v),
                   harness_humaneval_s=h_s, harness_humaneval_passed=sum(v.passed for v in h_v))
    for key, value in out.items():
        print(f"{key:26s} {value:.3f}" if isinstance(value, float) else f"{key:26s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
