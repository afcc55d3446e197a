"""Benchmark: time to generate hard Sudoku train + test puzzles (default 1,000 + 1,000).

    python benchmarks/sudoku_generation.py [--num-train 1000 --num-test 1000 --min-rating 20
        --per-grid 10 --workers 2 --seed 0 --out DIR --num-aug 1000 --tdoku-lib libtdoku.so]

Prints elapsed wall time (numba compilation included), puzzles/s, CPU seconds (this
process and its workers), the rating histogram, mean and median, and the climbing effort.
With ``--out`` it also writes the dataset (timed separately).

``--tdoku-lib`` rates every puzzle again with real tdoku, the solver behind the HRM paper's
Sudoku-Extreme difficulty (~22 guesses on average). tdoku is not a dependency: build it
yourself (https://github.com/t-dillon/tdoku; e.g. ``g++ -O3 -march=native -shared -fPIC
-o libtdoku.so src/solver_dpll_triad_simd.cc src/util.cc``) and pass the library's path.
Each puzzle's tdoku figure is its mean guess count over the same number of random
symmetric variants as our final rating, to a first solution.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from input_pipeline.puzzles import sudoku_dataset, sudoku_kernels  # noqa: E402
from input_pipeline.puzzles.progress import Progress  # noqa: E402
from input_pipeline.puzzles.sudoku import add_generation_args, check_generation_args  # noqa: E402

BIN_EDGES = (0, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100)
TDOKU_VARIANTS = 32


def histogram_lines(values, edges=BIN_EDGES, width: int = 50) -> list[str]:
    """Text histogram of ``values`` over [edge_i, edge_i+1) bins plus an open last bin."""
    bins = list(zip(edges, edges[1:])) + [(edges[-1], None)]
    counts = [sum(1 for v in values if v >= lo and (hi is None or v < hi)) for lo, hi in bins]
    top = max(counts) or 1
    lines = []
    for (lo, hi), n in zip(bins, counts):
        label = f"{lo:>4}-{hi:<4}" if hi is not None else f"{lo:>4}+    "
        lines.append(f"  {label} {n:>6}  {'#' * round(width * n / top)}")
    return lines


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished child processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def tdoku_ratings(library: str, puzzles, variants: int = TDOKU_VARIANTS, seed: int = 0) -> list[float]:
    """Mean tdoku first-solution guess count of each puzzle over random symmetric variants."""
    lib = ctypes.CDLL(library)
    solve = lib.TdokuSolverDpllTriadSimd
    solve.restype = ctypes.c_size_t
    solve.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_char_p,
                      ctypes.POINTER(ctypes.c_size_t)]
    solution = ctypes.create_string_buffer(82)
    guesses = ctypes.c_size_t(0)
    sudoku_kernels.rate(np.zeros(81, np.int64), 1, seed)  # seeds the variant generator
    out = []
    for puzzle in puzzles:
        total = 0
        for _ in range(variants):
            board = sudoku_kernels.random_variant(np.asarray(puzzle, np.int64))
            text = "".join(str(v) if v else "." for v in board).encode()
            if solve(text, 1, 0, solution, ctypes.byref(guesses)) != 1:
                raise RuntimeError(f"tdoku found no solution for {text.decode()}")
            total += guesses.value
        out.append(total / variants)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generation_args(p)
    p.add_argument("--out", default=None, help="also write the dataset here")
    p.add_argument("--num-aug", type=int, default=1000)
    p.add_argument("--tdoku-lib", default=None, help="rate the puzzles with this tdoku build too")
    args = p.parse_args(argv)
    check_generation_args(p, args)

    total = args.num_train + args.num_test
    progress = Progress(total, "sudoku puzzles")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    train, test = sudoku_dataset.generate_train_test(
        args.num_train, args.num_test, args.min_rating, args.seed, args.workers,
        on_progress=progress.update, per_grid=args.per_grid)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    progress.close()

    items = train + test
    ratings = [i.generated.rating for i in items]
    clues = [sum(1 for v in i.generated.puzzle if v) for i in items]
    grids = {i.generated.solution for i in items}
    print(f"puzzles: {len(train)} train + {len(test)} test, min_rating {args.min_rating}, "
          f"per_grid {args.per_grid}, workers {args.workers}, cores {os.cpu_count()}")
    print(f"elapsed: {elapsed:.1f} s   rate: {len(items) / elapsed:.2f} puzzles/s   "
          f"cpu: {cpu:.1f} s ({cpu / max(len(items), 1):.3f} s/puzzle)")
    if items:
        print(f"rating: mean {statistics.mean(ratings):.1f}  median {statistics.median(ratings):.1f}  "
              f"min {min(ratings):.1f}  max {max(ratings):.1f}")
        print(f"clues: mean {statistics.mean(clues):.1f}  min {min(clues)}  max {max(clues)}")
        print(f"grids: {len(grids)} ({len(items) / len(grids):.1f} puzzles each); train and test share "
              f"{len({i.generated.solution for i in train} & {i.generated.solution for i in test})}")
        print(f"distinct canonical forms: {len({i.canonical for i in items})} of {len(items)}")
        print("rating histogram:")
        print("\n".join(histogram_lines(ratings)))
        if args.tdoku_lib:
            theirs = tdoku_ratings(args.tdoku_lib, [i.generated.puzzle for i in items])
            print(f"tdoku ({TDOKU_VARIANTS} variants each): mean {statistics.mean(theirs):.1f}  "
                  f"median {statistics.median(theirs):.1f}  min {min(theirs):.1f}  max {max(theirs):.1f}  "
                  f"corr with ours {np.corrcoef(ratings, theirs)[0, 1]:.3f}  "
                  f"share >= {args.min_rating:g}: {np.mean(np.asarray(theirs) >= args.min_rating):.3f}")
            print("tdoku histogram:")
            print("\n".join(histogram_lines(theirs)))
    if args.out:
        t1 = time.perf_counter()
        sudoku_dataset.write_sudoku_dataset(args.out, train, test, args.num_aug, args.seed)
        print(f"wrote {args.out} (num_aug {args.num_aug}) in {time.perf_counter() - t1:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
