"""Sudoku solving and difficulty: the Python face of the compiled kernels in ``sudoku_kernels``.

A board is a sequence of 81 ints in row-major order, 0 for a blank and 1-9 for a digit.

Difficulty follows the HRM paper: the number of guesses tdoku's search needs. ``guesses``
is that count for one board in its given cell and digit order; ``rating`` averages it over
random symmetric variants, which is what a difficulty filter should use (a single count
swings with the order). On the puzzles this project generates the rating tracks real
tdoku's (checked with ``benchmarks/sudoku_generation.py --tdoku-lib``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from input_pipeline.puzzles import sudoku_kernels as kernels

UNITS: tuple[tuple[int, ...], ...] = tuple(tuple(int(c) for c in u) for u in kernels.UNITS)
PEERS: tuple[tuple[int, ...], ...] = tuple(tuple(int(c) for c in p) for p in kernels.PEERS)


@dataclass
class SearchResult:
    """Outcome of a search: solutions found (up to the limit) and the guesses made."""

    solutions: list[list[int]]
    guesses: int

    @property
    def num_solutions(self) -> int:
        return len(self.solutions)


def board_from_string(text: str) -> list[int]:
    """Parses an 81-character board; '.', '0' and '-' are blanks."""
    text = "".join(text.split())
    if len(text) != 81:
        raise ValueError(f"a Sudoku board needs 81 cells, got {len(text)}")
    return [0 if ch in ".0-" else int(ch) for ch in text]


def board_to_string(board, blank: str = ".") -> str:
    """Writes a board as 81 characters with ``blank`` for empty cells."""
    return "".join(str(int(v)) if v else blank for v in board)


def _as_board(board) -> np.ndarray:
    arr = np.asarray(board, dtype=np.int64).reshape(-1)
    if arr.shape != (81,) or arr.min() < 0 or arr.max() > 9:
        raise ValueError("a Sudoku board is 81 cells holding 0-9")
    return arr


def solve(board, limit: int = 2, excluded: tuple[int, int] | None = None) -> SearchResult:
    """Searches ``board`` for up to ``limit`` solutions; ``excluded=(cell, digit)`` forbids
    one digit in one cell."""
    cand = kernels.candidates(_as_board(board))
    if excluded is not None:
        cell, digit = excluded
        cand[cell] &= ~(1 << (digit - 1))
    out = np.zeros((max(limit, 1), 81), np.int64)
    found, guesses = kernels.search(cand, limit, False, out)
    return SearchResult([list(map(int, row)) for row in out[:found]], int(guesses))


def count_solutions(board, limit: int = 2) -> int:
    """Number of solutions, counted up to ``limit``."""
    return int(kernels.count_solutions(_as_board(board), limit))


def has_unique_solution(board) -> bool:
    """True when ``board`` has exactly one solution."""
    return count_solutions(board, 2) == 1


def guesses(board) -> int:
    """Guesses tdoku-style search makes to reach a first solution, in the board's own order."""
    return int(kernels.first_solution_guesses(_as_board(board)))


def rating(board, variants: int = 32, seed: int = 0) -> float:
    """Difficulty: mean ``guesses`` over ``variants`` random symmetric variants of ``board``."""
    return float(kernels.rate(_as_board(board), variants, seed))


def is_valid_solution(grid) -> bool:
    """True when ``grid`` is a full grid with every unit holding 1-9 once."""
    if len(grid) != 81 or any(not 1 <= int(v) <= 9 for v in grid):
        return False
    return all(len({int(grid[c]) for c in unit}) == 9 for unit in UNITS)


def is_consistent(puzzle, solution) -> bool:
    """True when every given of ``puzzle`` equals the same cell of ``solution``."""
    return all(not p or int(p) == int(s) for p, s in zip(puzzle, solution))
