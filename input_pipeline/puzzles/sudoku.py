"""CLI: generate a hard Sudoku dataset in HRM's format.

    python -m input_pipeline.puzzles.sudoku --out DIR --num-train 1000 --num-test 1000 \\
        --num-aug 1000 --min-rating 20 --per-grid 10 --seed 0 --workers 2

Writes ``DIR/{train,test}/...`` (HRM format), ``DIR/identifiers.json`` and
``DIR/csv/{train,test}.csv`` (HF source format). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from input_pipeline.puzzles import sudoku_dataset
from input_pipeline.puzzles.progress import Progress
from input_pipeline.puzzles.sudoku_generator import DEFAULT_MIN_RATING, DEFAULT_PER_GRID


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """The generation flags shared by this CLI and the generation benchmark."""
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--min-rating", type=float, default=DEFAULT_MIN_RATING,
                   help="keep puzzles whose tdoku-style rating (mean guesses) is at least this")
    p.add_argument("--num-blanks", type=int, default=0,
                   help="> 0: puzzles with exactly this many blanks (unique, not minimal: the easy end) "
                        "instead of the rating climb; --min-rating is then not used")
    p.add_argument("--per-grid", type=int, default=DEFAULT_PER_GRID,
                   help="puzzles kept per solution grid (neighbours, always in one split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)


def check_generation_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("num_train", "num_test", "min_rating"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.num_blanks and not 1 <= args.num_blanks <= 64:
        p.error("--num-blanks must be in 1..64 (a unique Sudoku keeps at least 17 clues)")
    for name in ("per_grid", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.puzzles.sudoku", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--num-aug", type=int, default=1000, help="augmented variants per train puzzle")
    add_generation_args(p)
    args = p.parse_args(argv)
    check_generation_args(p, args)
    if args.num_aug < 0:
        p.error("--num-aug must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = Progress(args.num_train + args.num_test, "sudoku puzzles")
    train, test = sudoku_dataset.generate_train_test(
        args.num_train, args.num_test, args.min_rating, args.seed, args.workers,
        on_progress=progress.update, per_grid=args.per_grid, num_blanks=args.num_blanks)
    progress.close()
    print("writing dataset...", file=sys.stderr)
    sudoku_dataset.write_sudoku_dataset(args.out, train, test, args.num_aug, args.seed)
    ratings = [p.generated.rating for p in train + test]
    if ratings:
        print(f"wrote {len(train)} train ({len(train) * (1 + args.num_aug)} with augmentation) and "
              f"{len(test)} test puzzles to {args.out}; rating mean {statistics.mean(ratings):.1f} "
              f"min {min(ratings):.1f} max {max(ratings):.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
