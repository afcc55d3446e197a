"""Hard Sudoku generation: climbs over the minimal puzzles of random grids (compiled in
``sudoku_kernels.hard_puzzles``) to a tdoku-style rating threshold.

Defaults reproduce Sudoku-Extreme's difficulty: at ``min_rating`` 18 the mean rating of the
kept puzzles is about 22 guesses, the HRM paper's figure for Sudoku-Extreme (tdoku, built
separately, agrees; see ``benchmarks/sudoku_generation.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from input_pipeline.puzzles import sudoku_kernels as kernels

DEFAULT_MIN_RATING = 18.0
DEFAULT_PER_GRID = 10
CLIMB_VARIANTS = 4  # variants per rating while climbing (cheap, noisy)
FINAL_VARIANTS = 16  # variants that confirm a puzzle before it is kept


@dataclass(frozen=True)
class GeneratedPuzzle:
    """A puzzle (0 = blank), its unique solution, its rating and the search effort spent
    on its grid (shared by the puzzles of one grid)."""

    puzzle: tuple[int, ...]
    solution: tuple[int, ...]
    rating: float
    climb_steps: int
    restarts: int


def _seed32(rng: random.Random) -> int:
    return rng.getrandbits(32)


def hard_puzzles(
    rng: random.Random,
    min_rating: float,
    per_grid: int = 1,
    max_steps: int = 3000,
    patience: int = 400,
    max_restarts: int = 10_000,
) -> list[GeneratedPuzzle]:
    """Up to ``per_grid`` distinct puzzles of one solution grid, each rated at least
    ``min_rating`` (at least one; RuntimeError after ``max_restarts`` fruitless climbs).

    Puzzles of one grid are neighbours (a few clues apart): keep them in one split.
    """
    if per_grid < 1:
        raise ValueError(f"per_grid must be >= 1, got {per_grid}")
    puzzles, solution, ratings, steps, restarts = kernels.hard_puzzles(
        _seed32(rng), float(min_rating), per_grid, CLIMB_VARIANTS, FINAL_VARIANTS, max_steps,
        patience, max_restarts)
    if len(puzzles) == 0:
        raise RuntimeError(f"no puzzle reached rating {min_rating} in {max_restarts + 1} climbs")
    solution = tuple(int(v) for v in solution)
    return [GeneratedPuzzle(tuple(int(v) for v in p), solution, float(r), int(steps), int(restarts))
            for p, r in zip(puzzles, ratings)]


def blanked_puzzles(rng: random.Random, num_blanks: int, per_grid: int = 1,
                    max_restarts: int = 1000) -> list[GeneratedPuzzle]:
    """Up to ``per_grid`` distinct unique puzzles of one random grid with exactly ``num_blanks``
    blanks (the easy end: not minimal, rated like the rest; 1 to 64 blanks, as a unique
    Sudoku has at least 17 clues). RuntimeError when no puzzle reached that many blanks."""
    if not 1 <= num_blanks <= 64:
        raise ValueError(f"num_blanks must be in 1..64 (a unique Sudoku keeps >= 17 clues), got {num_blanks}")
    if per_grid < 1:
        raise ValueError(f"per_grid must be >= 1, got {per_grid}")
    puzzles, solution, ratings, restarts = kernels.blanked_puzzles(
        _seed32(rng), int(num_blanks), per_grid, FINAL_VARIANTS, max_restarts)
    if len(puzzles) == 0:
        raise RuntimeError(f"no unique puzzle with {num_blanks} blanks in {max_restarts + 1} tries")
    solution = tuple(int(v) for v in solution)
    return [GeneratedPuzzle(tuple(int(v) for v in p), solution, float(r), 0, int(restarts))
            for p, r in zip(puzzles, ratings)]


def hard_puzzle(rng: random.Random, min_rating: float, **kwargs) -> GeneratedPuzzle:
    """One puzzle rated at least ``min_rating``."""
    return hard_puzzles(rng, min_rating, per_grid=1, **kwargs)[0]


def random_minimal_puzzle(rng: random.Random) -> tuple[list[int], list[int]]:
    """A random minimal puzzle and its solution."""
    solution, puzzle = kernels.random_minimal_puzzle(_seed32(rng))
    return [int(v) for v in puzzle], [int(v) for v in solution]


def minimise(puzzle, solution, rng: random.Random) -> list[int]:
    """Removes clues in random order while ``solution`` stays unique; a minimal puzzle."""
    out = kernels.minimise_puzzle(np.asarray(puzzle, np.int64), np.asarray(solution, np.int64),
                                  _seed32(rng))
    return [int(v) for v in out]
