"""Hard Sudoku generation: random full grid, clue removal to a minimal puzzle, hill-climbing.

Every puzzle here has a unique solution. A climb fixes one solution grid and walks over
its minimal puzzles: each step moves one or two clues (removes them, adds solution cells
elsewhere, adds more until the puzzle is unique again, re-minimises) and keeps the result
when its guess count does not drop. ``hard_puzzle`` climbs until the count reaches
``min_guesses``.

Speed comes from unavoidable sets: every alternative solution the searches meet differs
from the grid on a set of cells of which any unique puzzle must hold at least one. A clue
that is the only clue inside some known set is necessary without a search.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations

from input_pipeline.puzzles import sudoku_solver as solver


@dataclass(frozen=True)
class GeneratedPuzzle:
    """A puzzle (0 = blank), its unique solution, its guess count and the search effort spent."""

    puzzle: tuple[int, ...]
    solution: tuple[int, ...]
    guesses: int
    climb_steps: int
    restarts: int


def random_full_grid(rng: random.Random) -> list[int]:
    """A full grid filled by backtracking with a random digit order."""
    return solver.solve([0] * 81, limit=1, shuffle=rng.shuffle).solutions[0]


def _cells_mask(cells) -> int:
    mask = 0
    for c in cells:
        mask |= 1 << c
    return mask


class SolutionGrid:
    """One solution grid and the unavoidable sets of it found so far (as 81-bit cell masks).

    The sets are kept minimal under inclusion (a superset adds nothing) and few: at most
    ``max_sets``, smallest first, since small sets are the ones that decide clues.
    """

    def __init__(self, solution, max_sets: int = 300):
        self.solution = list(solution)
        self.max_sets = max_sets
        self.unavoidable: list[int] = []

    def add_unavoidable(self, diff: int) -> None:
        """Adds one unavoidable set unless a known one lies inside it."""
        for ua in self.unavoidable:
            if ua & diff == ua:
                return
        kept = [ua for ua in self.unavoidable if ua & diff != diff]
        kept.append(diff)
        if len(kept) > self.max_sets:
            kept.sort(key=int.bit_count)
            del kept[self.max_sets :]
        self.unavoidable = kept

    def record_alternative(self, other) -> int:
        """Stores the cells where ``other`` (another valid grid) differs; returns that mask."""
        diff = _cells_mask(i for i in range(81) if other[i] != self.solution[i])
        self.add_unavoidable(diff)
        return diff

    def seed_from_digit_pairs(self, limit: int = 40) -> None:
        """Finds the small unavoidable sets: re-solves the grid with the cells of each pair
        of digits blanked and records every alternative filling."""
        for a, b in combinations(range(1, 10), 2):
            puzzle = [0 if v in (a, b) else v for v in self.solution]
            for other in solver.solve(puzzle, limit=limit).solutions:
                if other != self.solution:
                    self.record_alternative(other)

    def known_necessary(self, clue_mask: int) -> int:
        """Mask of clues that are the single clue inside some known unavoidable set."""
        necessary = 0
        for ua in self.unavoidable:
            hit = ua & clue_mask
            if not hit & (hit - 1):
                necessary |= hit
        return necessary

    def first_unhit(self, clue_mask: int) -> int:
        """A known unavoidable set that holds no clue, or 0 when all are hit."""
        for ua in self.unavoidable:
            if not ua & clue_mask:
                return ua
        return 0

    def alternative_without(self, clues: list[int], cell: int):
        """Another solution of ``clues`` minus ``cell`` that differs at ``cell``, or None."""
        digit = clues[cell]
        clues[cell] = 0
        try:
            found = solver.solve(clues, limit=1, excluded=(cell, self.solution[cell])).solutions
        finally:
            clues[cell] = digit
        return found[0] if found else None

    def minimise(self, puzzle, rng: random.Random) -> list[int]:
        """Removes clues in random order while this grid stays the unique solution."""
        clues = list(puzzle)
        cells = [i for i in range(81) if clues[i]]
        rng.shuffle(cells)
        mask = _cells_mask(cells)
        necessary = self.known_necessary(mask)
        for cell in cells:
            if necessary >> cell & 1:
                continue
            other = self.alternative_without(clues, cell)
            if other is None:
                clues[cell] = 0
                mask &= ~(1 << cell)
                necessary = self.known_necessary(mask)
            else:
                self.record_alternative(other)
        return clues

    def make_unique(self, clues: list[int], rng: random.Random, max_additions: int = 20):
        """Adds cells of this grid to ``clues`` (which it must satisfy) until it is the only
        solution; returns the clues, or None after ``max_additions``."""
        clues = list(clues)
        for _ in range(max_additions):
            unhit = self.first_unhit(_cells_mask(i for i in range(81) if clues[i]))
            if not unhit:
                found = solver.solve(clues, limit=2, shuffle=rng.shuffle).solutions
                others = [s for s in found if s != self.solution]
                if not others:
                    return clues
                unhit = self.record_alternative(others[0])
            cell = rng.choice([i for i in range(81) if unhit >> i & 1])
            clues[cell] = self.solution[cell]
        return None


def minimise(puzzle, solution, rng: random.Random) -> list[int]:
    """Removes clues in random order while ``solution`` stays unique; a minimal puzzle."""
    return SolutionGrid(solution).minimise(puzzle, rng)


def random_minimal_puzzle(rng: random.Random) -> tuple[list[int], list[int]]:
    """A random minimal puzzle and its solution."""
    solution = random_full_grid(rng)
    return minimise(solution, solution, rng), solution


def climb_step(grid: SolutionGrid, clues: list[int], rng: random.Random, p_single: float = 0.3):
    """One hill-climbing proposal on ``grid``: (minimal unique puzzle, guess count) or None.

    Moves one clue with probability ``p_single``, otherwise two.
    """
    new = list(clues)
    filled = [i for i in range(81) if new[i]]
    empty = [i for i in range(81) if not new[i]]
    k = 1 if rng.random() < p_single else 2
    for cell in rng.sample(filled, k):
        new[cell] = 0
    for cell in rng.sample(empty, k):
        new[cell] = grid.solution[cell]
    new = grid.make_unique(new, rng)
    if new is None:
        return None
    new = grid.minimise(new, rng)
    return new, solver.guesses(new)


def hard_puzzle(
    rng: random.Random,
    min_guesses: int,
    max_steps: int = 400,
    patience: int = 80,
    max_restarts: int = 10_000,
) -> GeneratedPuzzle:
    """Climbs until a puzzle needs at least ``min_guesses`` guesses.

    Each climb starts from a random minimal puzzle of a fresh grid and restarts after
    ``max_steps`` proposals, or after ``patience`` proposals without a new best. Raises
    RuntimeError after ``max_restarts`` fruitless climbs.
    """
    steps_total = 0
    for restarts in range(max_restarts + 1):
        solution = random_full_grid(rng)
        grid = SolutionGrid(solution)
        grid.seed_from_digit_pairs()
        clues = grid.minimise(solution, rng)
        score = solver.guesses(clues)
        best, since_best = score, 0
        for _ in range(max_steps):
            if score >= min_guesses:
                break
            steps_total += 1
            proposal = climb_step(grid, clues, rng)
            if proposal is not None and proposal[1] >= score:
                clues, score = proposal
            if score > best:
                best, since_best = score, 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
        if score >= min_guesses:
            return GeneratedPuzzle(tuple(clues), tuple(solution), score, steps_total, restarts)
    raise RuntimeError(f"no puzzle reached {min_guesses} guesses in {max_restarts + 1} climbs")
