"""CLI: generate a hard Sudoku dataset in HRM's format.

    python -m input_pipeline.puzzles.sudoku --out DIR --num-train 1000 --num-test 1000 \\
        --num-aug 1000 --min-guesses 30 --seed 0 --workers 2

Writes ``DIR/{train,test}/...`` (HRM format), ``DIR/identifiers.json`` and
``DIR/csv/{train,test}.csv`` (HF source format). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from input_pipeline.puzzles import sudoku_dataset
from input_pipeline.puzzles.progress import Progress

DEFAULT_MIN_GUESSES = 30


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.puzzles.sudoku", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--num-aug", type=int, default=1000, help="augmented variants per train puzzle")
    p.add_argument("--min-guesses", type=int, default=DEFAULT_MIN_GUESSES,
                   help="keep puzzles whose complete search needs at least this many guesses")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    for name in ("num_train", "num_test", "num_aug", "min_guesses"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = Progress(args.num_train + args.num_test, "sudoku puzzles")
    train, test = sudoku_dataset.generate_train_test(
        args.num_train, args.num_test, args.min_guesses, args.seed, args.workers,
        on_result=lambda _: progress.update())
    progress.close()
    print("writing dataset...", file=sys.stderr)
    sudoku_dataset.write_sudoku_dataset(args.out, train, test, args.num_aug, args.seed)
    guesses = [p.generated.guesses for p in train + test]
    if guesses:
        print(f"wrote {len(train)} train ({len(train) * (1 + args.num_aug)} with augmentation) and "
              f"{len(test)} test puzzles to {args.out}; guesses mean {statistics.mean(guesses):.1f} "
              f"min {min(guesses)} max {max(guesses)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
