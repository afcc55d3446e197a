"""CLI: generate a hard 30x30 maze dataset in HRM's format.

    python -m input_pipeline.puzzles.maze --out DIR --num-train 1000 --num-test 1000 \\
        --min-path-length 110 --seed 0 --workers 2 [--aug]

Writes ``DIR/{train,test}/...`` (HRM format), ``DIR/identifiers.json`` and
``DIR/csv/{train,test}.csv`` (HF source format). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from input_pipeline.puzzles import maze_dataset
from input_pipeline.puzzles.progress import Progress


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.puzzles.maze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--size", type=int, default=30)
    p.add_argument("--min-path-length", type=int, default=110,
                   help="keep mazes whose shortest path is longer than this many steps")
    p.add_argument("--aug", action="store_true", help="8 dihedral variants per train maze")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if min(args.num_train, args.num_test, args.min_path_length) < 0:
        p.error("counts and --min-path-length must be >= 0")
    if args.size < 2 or args.workers < 1:
        p.error("--size must be >= 2 and --workers >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = Progress(args.num_train + args.num_test, "mazes")
    train, test = maze_dataset.generate_train_test(
        args.num_train, args.num_test, args.seed, args.size, args.min_path_length, args.workers,
        on_result=lambda _: progress.update())
    progress.close()
    maze_dataset.write_maze_dataset(args.out, train, test, args.size, args.aug)
    stats = maze_dataset.MazeStats.of(train + test)
    print(f"wrote {len(train)} train and {len(test)} test mazes to {args.out}; path length "
          f"mean {stats.mean_path_length:.1f} min {stats.min_path_length} max {stats.max_path_length}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
