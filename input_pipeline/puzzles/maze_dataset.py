"""Hard maze datasets in HRM's on-disk format (plus HF-style CSVs).

Encoding follows HRM's ``build_maze_dataset.py``: the characters of "# SGo" become tokens
1-5 (pad 0), vocab 6, seq_len = size^2 (900), ignore_label_id 0, one example per puzzle,
identifier 0. With ``aug`` the train split holds the 8 dihedral transforms of every maze
as one group (HRM's ``--aug``; off by default there and here).
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

import numpy as np

from input_pipeline.puzzles import csv_format, hrm_format
from input_pipeline.puzzles.maze_generator import CHARSET, Maze, random_maze

CSV_SOURCE = "hrm-jax-generated"
NUM_DIHEDRAL = 8


def dihedral_transform(grid: np.ndarray, tid: int) -> np.ndarray:
    """HRM's dihedral transform ``tid`` (0 identity, 1-3 rotations by 90/180/270 degrees,
    4 left-right flip, 5 up-down flip, 6 transpose, 7 anti-transpose)."""
    if tid == 0:
        return grid
    if tid in (1, 2, 3):
        return np.rot90(grid, k=tid)
    if tid == 4:
        return np.fliplr(grid)
    if tid == 5:
        return np.flipud(grid)
    if tid == 6:
        return grid.T
    if tid == 7:
        return np.fliplr(np.rot90(grid, k=1))
    raise ValueError(f"dihedral transform id must be 0-7, got {tid}")


_CHAR_TO_TOKEN = np.zeros(256, np.uint8)
_CHAR_TO_TOKEN[np.frombuffer(CHARSET.encode(), np.uint8)] = np.arange(1, len(CHARSET) + 1)


def encode_maze(text: str, size: int) -> np.ndarray:
    """A maze string as a [size, size] uint8 token grid ('#'=1, ' '=2, S=3, G=4, o=5)."""
    if len(text) != size * size or set(text) - set(CHARSET):
        raise ValueError(f"a {size}x{size} maze needs {size * size} characters from {CHARSET!r}")
    return _CHAR_TO_TOKEN[np.frombuffer(text.encode(), np.uint8)].reshape(size, size)


def decode_maze(tokens: np.ndarray) -> str:
    """Tokens back to the maze string."""
    return "".join(CHARSET[int(t) - 1] for t in np.asarray(tokens).reshape(-1))


def canonical_maze(text: str, size: int) -> str:
    """The smallest of the 8 dihedral images of a maze string (dedupes mirrored mazes)."""
    grid = np.frombuffer(text.encode(), np.uint8).reshape(size, size)
    return min(dihedral_transform(grid, t).tobytes() for t in range(NUM_DIHEDRAL)).decode()


def _generate_task(args) -> Maze:
    seed, index, size, min_path_length = args
    return random_maze(np.random.default_rng([seed, index]), size, min_path_length)


def generate_train_test(num_train: int, num_test: int, seed: int, size: int = 30,
                        min_path_length: int = 110, workers: int = 1, on_result=None):
    """Distinct mazes (up to the 8 dihedral transforms), train taking the lowest indices."""
    wanted = num_train + num_test
    seen: set[str] = set()
    kept: list[Maze] = []
    next_index = 0
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        while len(kept) < wanted:
            count = wanted - len(kept)
            tasks = [(seed, i, size, min_path_length) for i in range(next_index, next_index + count)]
            next_index += count
            results = pool.imap(_generate_task, tasks, chunksize=4) if pool else map(_generate_task, tasks)
            for maze in results:
                if on_result is not None:
                    on_result(maze)
                key = canonical_maze(maze.question, size)
                if key not in seen:
                    seen.add(key)
                    kept.append(maze)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return kept[:num_train], kept[num_train:wanted]


def maze_metadata(total_groups: int, size: int) -> hrm_format.PuzzleDatasetMetadata:
    """The metadata HRM's maze builder writes."""
    return hrm_format.PuzzleDatasetMetadata(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=len(CHARSET) + 1,
        seq_len=size * size,
        num_puzzle_identifiers=1,
        total_groups=total_groups,
        mean_puzzle_examples=1.0,
        sets=["all"],
    )


def maze_arrays(mazes: list[Maze], size: int, aug: bool) -> hrm_format.PuzzleArrays:
    """HRM arrays; with ``aug`` each maze contributes its 8 dihedral transforms as one group."""
    transforms = range(NUM_DIHEDRAL) if aug else range(1)
    inputs, labels = [], []
    for maze in mazes:
        q, a = encode_maze(maze.question, size), encode_maze(maze.answer, size)
        for tid in transforms:
            inputs.append(dihedral_transform(q, tid).reshape(-1))
            labels.append(dihedral_transform(a, tid).reshape(-1))
    empty = np.zeros((0, size * size), np.uint8)
    return hrm_format.single_example_puzzles(np.stack(inputs) if inputs else empty,
                                             np.stack(labels) if labels else empty,
                                             [len(transforms)] * len(mazes))


def write_maze_dataset(out: str, train: list[Maze], test: list[Maze], size: int, aug: bool) -> None:
    """Writes the HRM-format dataset under ``out`` and the source CSVs under ``out/csv``."""
    for split, mazes, split_aug in (("train", train, aug), ("test", test, False)):
        arrays = maze_arrays(mazes, size, split_aug)
        hrm_format.write_split(out, split, maze_metadata(arrays.num_groups, size), {"all": arrays})
        rows = (csv_format.PuzzleRow(CSV_SOURCE, m.question, m.answer, m.path_length) for m in mazes)
        csv_format.write_puzzle_csv(os.path.join(out, "csv", f"{split}.csv"), rows)
    hrm_format.write_identifiers(out)


@dataclass(frozen=True)
class MazeStats:
    """Path-length summary of a set of mazes."""

    count: int
    mean_path_length: float
    min_path_length: int
    max_path_length: int

    @staticmethod
    def of(mazes: list[Maze]) -> "MazeStats":
        lengths = [m.path_length for m in mazes] or [0]
        return MazeStats(len(mazes), float(np.mean(lengths)), min(lengths), max(lengths))
