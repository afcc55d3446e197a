"""Benchmark: time to generate hard Sudoku train + test puzzles (default 1,000 + 1,000).

    python benchmarks/sudoku_generation.py [--num-train 1000 --num-test 1000 --min-guesses 30
                                            --workers 2 --seed 0 --out DIR --num-aug 1000]

Prints elapsed wall time, puzzles/s, CPU seconds (this process and its workers), the
guess-count histogram and mean, and the climbing effort. With ``--out`` it also writes the
dataset (timed separately). The guess count is our complete-search branch count with
singles propagation; see input_pipeline/puzzles/sudoku_solver.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from input_pipeline.puzzles import sudoku_dataset  # noqa: E402
from input_pipeline.puzzles.progress import Progress  # noqa: E402
from input_pipeline.puzzles.sudoku import DEFAULT_MIN_GUESSES  # noqa: E402

BIN_EDGES = (0, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200)


def histogram_lines(values, edges=BIN_EDGES, width: int = 50) -> list[str]:
    """Text histogram of ``values`` over [edge_i, edge_i+1) bins plus an open last bin."""
    bins = list(zip(edges, edges[1:])) + [(edges[-1], None)]
    counts = [sum(1 for v in values if v >= lo and (hi is None or v < hi)) for lo, hi in bins]
    top = max(counts) or 1
    lines = []
    for (lo, hi), n in zip(bins, counts):
        label = f"{lo:>4}-{hi - 1:<4}" if hi is not None else f"{lo:>4}+    "
        lines.append(f"  {label} {n:>6}  {'#' * round(width * n / top)}")
    return lines


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished child processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--min-guesses", type=int, default=DEFAULT_MIN_GUESSES)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the dataset here")
    p.add_argument("--num-aug", type=int, default=1000)
    args = p.parse_args(argv)

    total = args.num_train + args.num_test
    progress = Progress(total, "sudoku puzzles")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    train, test = sudoku_dataset.generate_train_test(
        args.num_train, args.num_test, args.min_guesses, args.seed, args.workers,
        on_result=lambda _: progress.update())
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    progress.close()

    items = train + test
    guesses = [i.generated.guesses for i in items]
    clues = [sum(1 for v in i.generated.puzzle if v) for i in items]
    print(f"puzzles: {len(train)} train + {len(test)} test, min_guesses {args.min_guesses}, "
          f"workers {args.workers}, cores {os.cpu_count()}")
    print(f"elapsed: {elapsed:.1f} s   rate: {len(items) / elapsed:.2f} puzzles/s   "
          f"cpu: {cpu:.1f} s ({cpu / max(len(items), 1):.3f} s/puzzle)")
    if items:
        print(f"guesses: mean {statistics.mean(guesses):.1f}  median {statistics.median(guesses)}  "
              f"min {min(guesses)}  max {max(guesses)}")
        print(f"clues: mean {statistics.mean(clues):.1f}  min {min(clues)}  max {max(clues)}")
        print(f"climb: mean {statistics.mean(i.generated.climb_steps for i in items):.0f} steps, "
              f"{statistics.mean(i.generated.restarts for i in items):.2f} restarts per puzzle")
        print(f"distinct canonical forms: {len({i.canonical for i in items})} of {len(items)}")
        print("guess histogram:")
        print("\n".join(histogram_lines(guesses)))
    if args.out:
        t1 = time.perf_counter()
        sudoku_dataset.write_sudoku_dataset(args.out, train, test, args.num_aug, args.seed)
        print(f"wrote {args.out} (num_aug {args.num_aug}) in {time.perf_counter() - t1:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
