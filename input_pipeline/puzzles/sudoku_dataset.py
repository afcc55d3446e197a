"""Hard Sudoku datasets: parallel generation, a train/test split disjoint up to symmetry,
and output in HRM's on-disk format (plus HF-style CSVs).

Encoding and layout follow HRM's ``build_sudoku_dataset.py``: token = digit + 1 (pad 0,
blank 1, digits 2-10), vocab 11, seq_len 81, ignore_label_id 0, one example per puzzle,
identifier 0; on the train split each original is followed by ``num_aug`` random symmetric
variants and forms one group with them (test is unaugmented, one puzzle per group).
Inputs and labels are stored as uint8 (the original writes uint8, or int64 when it
augments; its loader casts everything to int32).
"""

from __future__ import annotations

import multiprocessing
import os
import random
from dataclasses import dataclass

import numpy as np

from input_pipeline.puzzles import csv_format, hrm_format, sudoku_symmetry
from input_pipeline.puzzles.sudoku_generator import GeneratedPuzzle, blanked_puzzles, hard_puzzles
from input_pipeline.puzzles.sudoku_solver import board_to_string

CSV_SOURCE = "hrm-jax-generated"


@dataclass(frozen=True)
class CanonicalPuzzle:
    """A generated puzzle with the canonical form of its symmetry class."""

    generated: GeneratedPuzzle
    canonical: str


def task_seed(seed: int, index: int) -> int:
    """The independent random seed of puzzle ``index`` in a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(2, np.uint64)[0])


def generate_one(seed: int, index: int, min_rating: float, per_grid: int = 1,
                 num_blanks: int = 0) -> list[CanonicalPuzzle]:
    """The puzzles of task ``index`` (one solution grid): deterministic in its arguments. ``num_blanks`` > 0:
    puzzles with that many blanks (``blanked_puzzles``) instead of the rating climb (``min_rating`` unused)."""
    rng = random.Random(task_seed(seed, index))
    puzzles = (blanked_puzzles(rng, num_blanks, per_grid) if num_blanks
               else hard_puzzles(rng, min_rating, per_grid))
    return [CanonicalPuzzle(p, sudoku_symmetry.canonical_form(p.puzzle)) for p in puzzles]


def _generate_task(args) -> list[CanonicalPuzzle]:
    return generate_one(*args)


def generate_puzzles(indices, min_rating: float, seed: int, workers: int = 1, on_result=None,
                     per_grid: int = 1, num_blanks: int = 0) -> list[list[CanonicalPuzzle]]:
    """The puzzles of the given tasks, one list per task in index order (whatever
    ``workers``); calls ``on_result(puzzles)`` as each task's list arrives."""
    tasks = [(seed, i, min_rating, per_grid, num_blanks) for i in indices]
    results = []
    if workers <= 1:
        iterator = map(_generate_task, tasks)
        pool = None
    else:
        # compile (or load) the kernels once here, so workers load them from numba's cache
        hard_puzzles(random.Random(0), 0.0)
        pool = multiprocessing.get_context("spawn").Pool(workers)
        iterator = pool.imap(_generate_task, tasks, chunksize=1)
    try:
        for result in iterator:
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return results


def generate_train_test(
    num_train: int, num_test: int, min_rating: float, seed: int, workers: int = 1, on_progress=None,
    per_grid: int = 1, num_blanks: int = 0,
) -> tuple[list[CanonicalPuzzle], list[CanonicalPuzzle]]:
    """``num_train`` + ``num_test`` puzzles whose canonical forms are all distinct (so no test
    puzzle is a symmetric variant of a train puzzle). Train takes the lowest task indices;
    each grid's puzzles go to one split only (the rest of the grid that fills train is
    dropped), so the splits share no solution grid. ``on_progress(n)`` hears of ``n`` more
    puzzles as tasks finish."""
    seen: set[str] = set()
    splits: list[list[CanonicalPuzzle]] = [[], []]
    delivered = [0, 0]  # puzzles generated, and reported to ``on_progress`` (capped at the total)

    def progress(task):
        delivered[0] += len(task)
        now = min(delivered[0], num_train + num_test)
        if on_progress is not None and now > delivered[1]:
            on_progress(now - delivered[1])
        delivered[1] = now

    wanted = [num_train, num_test]
    next_index = 0
    split = 0
    while split < 2:
        if len(splits[split]) >= wanted[split]:
            split += 1
            continue
        missing = wanted[split] - len(splits[split])
        count = -(-missing // per_grid)  # tasks that can fill the gap
        if split == 0:  # enough tasks for test too, so parallel workers stay busy
            count += -(-num_test // per_grid)
        batch = generate_puzzles(range(next_index, next_index + count), min_rating, seed,
                                 workers, progress, per_grid, num_blanks)
        next_index += count
        for task in batch:
            while split < 2 and len(splits[split]) >= wanted[split]:
                split += 1
            if split == 2:
                break
            fresh = [item for item in task if item.canonical not in seen]
            seen.update(item.canonical for item in fresh)
            splits[split].extend(fresh[:wanted[split] - len(splits[split])])
    return splits[0], splits[1]


def sudoku_metadata(total_groups: int) -> hrm_format.PuzzleDatasetMetadata:
    """The metadata HRM's Sudoku builder writes."""
    return hrm_format.PuzzleDatasetMetadata(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=11,
        seq_len=81,
        num_puzzle_identifiers=1,
        total_groups=total_groups,
        mean_puzzle_examples=1.0,
        sets=["all"],
    )


def encode_boards(boards) -> np.ndarray:
    """Boards of digits (0 = blank) as tokens: digit + 1, uint8 [n, 81]."""
    boards = np.asarray(boards, dtype=np.int64).reshape(-1, 81)
    if boards.size and (boards.min() < 0 or boards.max() > 9):
        raise ValueError("Sudoku cells must hold 0-9")
    return (boards + 1).astype(np.uint8)


def decode_boards(tokens) -> np.ndarray:
    """Tokens back to digits (0 = blank), int64 [n, 81]."""
    return np.asarray(tokens, dtype=np.int64).reshape(-1, 81) - 1


def sudoku_arrays(puzzles, solutions, num_aug: int, rng: np.random.Generator) -> hrm_format.PuzzleArrays:
    """HRM arrays: per original, the original then ``num_aug`` random symmetric variants,
    each its own one-example puzzle, together one group."""
    inputs = [np.zeros((0, 81), np.uint8)]
    labels = [np.zeros((0, 81), np.uint8)]
    for puzzle, solution in zip(puzzles, solutions):
        inputs.append(encode_boards([puzzle]))
        labels.append(encode_boards([solution]))
        if num_aug:
            aug_inputs, aug_labels = sudoku_symmetry.augment(puzzle, solution, rng, num_aug)
            inputs.append(encode_boards(aug_inputs))
            labels.append(encode_boards(aug_labels))
    return hrm_format.single_example_puzzles(np.concatenate(inputs), np.concatenate(labels),
                                             [1 + num_aug] * len(puzzles))


def csv_rows(items: list[CanonicalPuzzle]):
    """HF-style CSV rows (blanks '.', rating = the rating rounded to an integer guess count)."""
    for item in items:
        g = item.generated
        yield csv_format.PuzzleRow(CSV_SOURCE, board_to_string(g.puzzle, "."),
                                   board_to_string(g.solution), round(g.rating))


def write_sudoku_dataset(out: str, train: list[CanonicalPuzzle], test: list[CanonicalPuzzle],
                         num_aug: int, seed: int) -> None:
    """Writes the HRM-format dataset under ``out`` and the source CSVs under ``out/csv``."""
    rng = np.random.default_rng([seed, 1])
    for split, items, aug in (("train", train, num_aug), ("test", test, 0)):
        arrays = sudoku_arrays([i.generated.puzzle for i in items],
                               [i.generated.solution for i in items], aug, rng)
        hrm_format.write_split(out, split, sudoku_metadata(arrays.num_groups), {"all": arrays})
        csv_format.write_puzzle_csv(os.path.join(out, "csv", f"{split}.csv"), csv_rows(items))
    hrm_format.write_identifiers(out)
