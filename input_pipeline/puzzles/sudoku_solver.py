"""Bitmask Sudoku solver: singles propagation plus depth-first search.

A board is a sequence of 81 ints in row-major order, 0 for a blank and 1-9 for a digit.
Internally each cell holds a 9-bit candidate mask (bit d-1 set when digit d is possible).

Propagation applies naked singles (a cell with one candidate) and hidden singles (a digit
with one place in a row, column or box) to a fixpoint. Search branches on the unsolved
cell with the fewest candidates (first such cell on ties). The difficulty measure,
``guesses``, is the number of branch points in the complete search that proves
uniqueness: it is tdoku's backtrack count in spirit, with singles-only propagation, so it
reads higher than tdoku's for the same puzzle.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

ALL_DIGITS = 0x1FF

UNITS: tuple[tuple[int, ...], ...] = tuple(
    [tuple(r * 9 + c for c in range(9)) for r in range(9)]
    + [tuple(r * 9 + c for r in range(9)) for c in range(9)]
    + [
        tuple((br * 3 + r) * 9 + bc * 3 + c for r in range(3) for c in range(3))
        for br in range(3)
        for bc in range(3)
    ]
)
PEERS: tuple[tuple[int, ...], ...] = tuple(
    tuple(sorted({p for u in UNITS if cell in u for p in u} - {cell})) for cell in range(81)
)
ALL_UNITS = (1 << 27) - 1
_CELL_UNITS_MASK = tuple(
    sum(1 << u for u, unit in enumerate(UNITS) if cell in unit) for cell in range(81)
)
_CELL_UNIT_INDICES = tuple(
    tuple(u for u, unit in enumerate(UNITS) if cell in unit) for cell in range(81)
)
_UNIT_GETTERS = tuple(operator.itemgetter(*unit) for unit in UNITS)
_POPCOUNT = tuple(bin(m).count("1") for m in range(512))
_BIT_DIGIT = {1 << (d - 1): d for d in range(1, 10)}


@dataclass
class SearchResult:
    """Outcome of a search: solutions found (up to the limit) and branch points visited."""

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


def _propagate(cand: list[int], queue: list[int], dirty: int = ALL_UNITS) -> bool:
    """Applies naked and hidden singles in place; False on a contradiction.

    ``queue`` holds cells that became single and whose digit must leave their peers;
    ``dirty`` is a bitmask of the units whose cells changed since they were last scanned
    for hidden singles (a unit whose cells did not change cannot yield a new one).
    """
    peers = PEERS
    cell_units = _CELL_UNITS_MASK
    getters = _UNIT_GETTERS
    units = UNITS
    while True:
        while queue:
            cell = queue.pop()
            bit = cand[cell]
            for p in peers[cell]:
                pm = cand[p]
                if pm & bit:
                    pm ^= bit
                    if not pm:
                        return False
                    cand[p] = pm
                    dirty |= cell_units[p]
                    if not pm & (pm - 1):
                        queue.append(p)
        if not dirty:
            return True
        pending, dirty = dirty, 0
        while pending:
            low = pending & -pending
            pending ^= low
            u = low.bit_length() - 1
            values = getters[u](cand)
            once = twice = 0
            for m in values:
                twice |= once & m
                once |= m
            if once != ALL_DIGITS:
                return False
            only = once & ~twice
            if only:
                i = 0
                for m in values:
                    h = m & only
                    if h and h != m:
                        if h & (h - 1):
                            return False
                        c = units[u][i]
                        cand[c] = h
                        queue.append(c)
                        dirty |= cell_units[c]
                    i += 1
        if not queue and not dirty:
            return True


def _initial_candidates(board, excluded: tuple[int, int] | None = None) -> list[int] | None:
    """Candidate masks after propagating the givens; None when they contradict."""
    seen = [0] * 27
    cell_units = _CELL_UNIT_INDICES
    for i, v in enumerate(board):
        if v:
            bit = 1 << (v - 1)
            for u in cell_units[i]:
                if seen[u] & bit:
                    return None
                seen[u] |= bit
    cand = []
    queue = []
    for i, v in enumerate(board):
        if v:
            cand.append(1 << (v - 1))
        else:
            a, b, c = cell_units[i]
            m = ALL_DIGITS & ~(seen[a] | seen[b] | seen[c])
            if not m:
                return None
            if not m & (m - 1):
                queue.append(i)
            cand.append(m)
    if excluded is not None:
        cell, digit = excluded
        m = cand[cell] & ~(1 << (digit - 1))
        if not m:
            return None
        if not m & (m - 1):
            queue.append(cell)
        cand[cell] = m
    return cand if _propagate(cand, queue) else None


def _search(cand: list[int], limit: int, solutions: list, order, counter: list[int]) -> None:
    """Depth-first search from propagated ``cand``; appends solutions up to ``limit``."""
    pop = _POPCOUNT
    cell_units = _CELL_UNITS_MASK
    best, best_n = -1, 10
    for i in range(81):
        n = pop[cand[i]]
        if 1 < n < best_n:
            best, best_n = i, n
            if n == 2:
                break
    if best < 0:
        solutions.append([_BIT_DIGIT[m] for m in cand])
        return
    counter[0] += 1
    m = cand[best]
    bits = []
    while m:
        b = m & -m
        bits.append(b)
        m ^= b
    if order is not None:
        order(bits)
    for b in bits:
        child = cand[:]
        child[best] = b
        if _propagate(child, [best], cell_units[best]):
            _search(child, limit, solutions, order, counter)
            if len(solutions) >= limit:
                return


def solve(board, limit: int = 2, shuffle=None, excluded: tuple[int, int] | None = None) -> SearchResult:
    """Searches ``board`` for up to ``limit`` solutions.

    ``shuffle`` (e.g. ``random.Random(0).shuffle``) randomises the value order;
    ``excluded=(cell, digit)`` forbids one digit in one cell.
    """
    cand = _initial_candidates(board, excluded)
    if cand is None:
        return SearchResult([], 0)
    solutions: list[list[int]] = []
    counter = [0]
    _search(cand, limit, solutions, shuffle, counter)
    return SearchResult(solutions, counter[0])


def count_solutions(board, limit: int = 2) -> int:
    """Number of solutions, counted up to ``limit``."""
    return solve(board, limit).num_solutions


def has_unique_solution(board) -> bool:
    """True when ``board`` has exactly one solution."""
    return count_solutions(board, 2) == 1


def guesses(board) -> int:
    """Difficulty: branch points of the complete search (requires a puzzle with a solution)."""
    return solve(board, 2).guesses


def is_valid_solution(grid) -> bool:
    """True when ``grid`` is a full grid with every unit holding 1-9 once."""
    if len(grid) != 81 or any(not 1 <= int(v) <= 9 for v in grid):
        return False
    return all(len({int(grid[c]) for c in unit}) == 9 for unit in UNITS)


def is_consistent(puzzle, solution) -> bool:
    """True when every given of ``puzzle`` equals the same cell of ``solution``."""
    return all(not p or int(p) == int(s) for p, s in zip(puzzle, solution))
