"""Compiled Sudoku kernels (numba): propagation, search, rating and hard-puzzle climbing.

A board is an int array of 81 cells in row-major order, 0 for a blank and 1-9 for a digit.
Search state is an int32 array of 81 candidate masks (bit d-1 set when digit d is possible)
plus, per band and digit, a mask of band configurations ruled out by earlier branches.

The model is tdoku's (the solver whose guess count the HRM paper uses as Sudoku
difficulty), rebuilt on candidate masks rather than its SIMD clause layout:

- A band is three boxes in a row (horizontal) or column (vertical); a mini-line is the
  three cells a box shares with one row or column. A digit's *configuration* in a band is
  the mini-line it takes in each of the three boxes: one of 6 permutations.
- Propagation to a fixpoint: naked and hidden singles; per box-line intersection, locked
  candidates (pointing, claiming) and tdoku's triad cardinality (an intersection holds
  exactly three digits); per band and digit, configurations (a mini-line that no remaining
  configuration uses loses the digit; none left is a contradiction).
- Branching as tdoku does it: the band with the fewest configurations among those not yet
  fixed, in it the first digit with exactly two configurations (else three, else more);
  guess its first configuration, and on backtracking rule that configuration out.
  ``guesses`` counts the guesses.

The rating of a puzzle is its mean guess count to a first solution over random symmetric
variants: a single count depends on cell and digit order and is noisy (tdoku's generator
averages the same way). Randomness comes from numba's own generator, seeded per call with
``np.random.seed``, so every function that takes a ``seed`` is deterministic in it.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np

ALL_DIGITS = 0x1FF
MAX_STACK = 81 * 9
NUM_BANDS = 6
FIXED_BAND = 9  # configurations left in a band whose digits are all placed


def _tables():
    units = (
        [[r * 9 + c for c in range(9)] for r in range(9)]
        + [[r * 9 + c for r in range(9)] for c in range(9)]
        + [[(br * 3 + r) * 9 + bc * 3 + c for r in range(3) for c in range(3)]
           for br in range(3) for bc in range(3)]
    )
    peers = [sorted({p for u in units if cell in u for p in u} - {cell}) for cell in range(81)]
    inter, box_rest, line_rest = [], [], []
    for b in range(27 - 9, 27):
        box = set(units[b])
        for line in range(18):
            common = box & set(units[line])
            if common:
                inter.append(sorted(common))
                box_rest.append(sorted(box - common))
                line_rest.append(sorted(set(units[line]) - common))
    # mini_lines[band, box, line] = 3 cells; bands 0-2 horizontal, 3-5 vertical
    mini_lines = np.zeros((NUM_BANDS, 3, 3, 3), np.int64)
    for band in range(3):
        for box in range(3):
            for line in range(3):
                for k in range(3):
                    mini_lines[band, box, line, k] = (band * 3 + line) * 9 + box * 3 + k
                    mini_lines[3 + band, box, line, k] = (box * 3 + k) * 9 + band * 3 + line
    perms = list(itertools.permutations(range(3)))
    # configuration p puts the digit on mini-line perms[p][box] of each box: a 9-bit mask
    # over (box * 3 + line)
    config_masks = [sum(1 << (box * 3 + perm[box]) for box in range(3)) for perm in perms]
    popcount = [bin(m).count("1") for m in range(512)]
    digit_of = [(m.bit_length() if m and not m & (m - 1) else 0) for m in range(512)]
    as_array = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return (as_array(units), as_array(peers), as_array(inter), as_array(box_rest),
            as_array(line_rest), mini_lines, as_array(config_masks), as_array(popcount),
            as_array(digit_of))


(UNITS, PEERS, INTERSECTIONS, BOX_REST, LINE_REST, MINI_LINES, CONFIG_MASKS, POPCOUNT,
 DIGIT_OF) = _tables()
_PERMS3 = np.asarray(list(itertools.permutations(range(3))), dtype=np.int64)  # (6, 3)


@numba.njit(cache=True)
def _eliminate(cand, cell, digits):
    """Removes ``digits`` from ``cell``; returns (ok, changed)."""
    if cand[cell] & digits:
        cand[cell] &= ~digits
        return cand[cell] != 0, True
    return True, False


@numba.njit(cache=True)
def _line_mask(cand, band, digit_bit):
    """9-bit mask over (box * 3 + line) of the band's mini-lines that may hold the digit."""
    mask = 0
    for box in range(3):
        for line in range(3):
            if (cand[MINI_LINES[band, box, line, 0]] | cand[MINI_LINES[band, box, line, 1]]
                    | cand[MINI_LINES[band, box, line, 2]]) & digit_bit:
                mask |= 1 << (box * 3 + line)
    return mask


@numba.njit(cache=True)
def _configurations(cand, ruled_out, band, digit):
    """6-bit mask of the digit's remaining configurations in the band."""
    mask = _line_mask(cand, band, 1 << digit)
    configs = 0
    for p in range(6):
        if mask & CONFIG_MASKS[p] == CONFIG_MASKS[p]:
            configs |= 1 << p
    return configs & ~ruled_out[band * 9 + digit]


@numba.njit(cache=True)
def _place_configuration(cand, band, digit, config):
    """Keeps the digit only on the mini-lines of one configuration; False on a contradiction."""
    bit = 1 << digit
    used = CONFIG_MASKS[config]
    for box in range(3):
        for line in range(3):
            if not used >> (box * 3 + line) & 1:
                for k in range(3):
                    ok, _ = _eliminate(cand, MINI_LINES[band, box, line, k], bit)
                    if not ok:
                        return False
    return True


@numba.njit(cache=True)
def propagate(cand, ruled_out):
    """Applies all inference rules in place to a fixpoint; False on a contradiction."""
    while True:
        changed = False
        for c in range(81):
            m = cand[c]
            if m == 0:
                return False
            if m & (m - 1) == 0:
                for j in range(20):
                    ok, hit = _eliminate(cand, PEERS[c, j], m)
                    if not ok:
                        return False
                    changed |= hit
        for u in range(27):
            once = 0
            twice = 0
            for i in range(9):
                m = cand[UNITS[u, i]]
                twice |= once & m
                once |= m
            if once != ALL_DIGITS:
                return False
            only = once & ~twice
            if only:
                for i in range(9):
                    c = UNITS[u, i]
                    h = cand[c] & only
                    if h and h != cand[c]:
                        if h & (h - 1):
                            return False
                        cand[c] = h
                        changed = True
        if changed:
            continue
        for k in range(INTERSECTIONS.shape[0]):
            inside = cand[INTERSECTIONS[k, 0]] | cand[INTERSECTIONS[k, 1]] | cand[INTERSECTIONS[k, 2]]
            box = 0
            line = 0
            for i in range(6):
                box |= cand[BOX_REST[k, i]]
                line |= cand[LINE_REST[k, i]]
            # digits that must lie in the intersection (confined there in its box or line)
            present = inside & ~(box & line)
            n_inside = POPCOUNT[inside]
            if n_inside < 3:
                return False
            if n_inside == 3:  # three cells, three possible digits: all of them are here
                present = inside
            n_present = POPCOUNT[present]
            if n_present > 3:
                return False
            if n_present == 3:  # the intersection's three digits are known
                for i in range(3):
                    c = INTERSECTIONS[k, i]
                    ok, hit = _eliminate(cand, c, ~present & ALL_DIGITS)
                    if not ok:
                        return False
                    changed |= hit
            if present:  # locked candidates: pointing and claiming
                for i in range(6):
                    ok, hit = _eliminate(cand, BOX_REST[k, i], present)
                    if not ok:
                        return False
                    changed |= hit
                    ok, hit = _eliminate(cand, LINE_REST[k, i], present)
                    if not ok:
                        return False
                    changed |= hit
        if changed:
            continue
        for band in range(NUM_BANDS):
            for digit in range(9):
                configs = _configurations(cand, ruled_out, band, digit)
                if configs == 0:
                    return False
                support = 0
                for p in range(6):
                    if configs >> p & 1:
                        support |= CONFIG_MASKS[p]
                dead = _line_mask(cand, band, 1 << digit) & ~support
                while dead:
                    low = dead & -dead
                    dead ^= low
                    pos = POPCOUNT[low - 1]
                    for k in range(3):
                        ok, hit = _eliminate(cand, MINI_LINES[band, pos // 3, pos % 3, k], 1 << digit)
                        if not ok:
                            return False
                        changed |= hit
        if not changed:
            return True


@numba.njit(cache=True)
def candidates(board):
    """Unpropagated candidate masks of ``board``: all digits for blanks, the given for clues."""
    cand = np.empty(81, np.int32)
    for i in range(81):
        cand[i] = ALL_DIGITS if board[i] == 0 else 1 << (board[i] - 1)
    return cand


@numba.njit(cache=True)
def _choose_branch(cand, ruled_out):
    """(band, digit, configurations) to branch on, or band -1 when every band is fixed."""
    best_band = -1
    best_total = 1 << 30
    for band in range(NUM_BANDS):
        total = 0
        for digit in range(9):
            total += POPCOUNT[_configurations(cand, ruled_out, band, digit)]
        if FIXED_BAND < total < best_total:
            best_band = band
            best_total = total
    if best_band < 0:
        return -1, 0, 0
    chosen = -1
    chosen_configs = 0
    chosen_n = 1 << 30
    for digit in range(9):
        configs = _configurations(cand, ruled_out, best_band, digit)
        n = POPCOUNT[configs]
        rank = n if n < 4 else 4
        if 1 < n and rank < chosen_n:
            chosen = digit
            chosen_configs = configs
            chosen_n = rank
            if n == 2:
                break
    return best_band, chosen, chosen_configs


@numba.njit(cache=True)
def search(cand, limit, randomize, solutions):
    """Depth-first search from candidate masks ``cand`` (not modified) for up to ``limit``
    solutions, written to the rows of ``solutions`` [limit, 81]; returns (found, guesses).

    ``randomize`` guesses a random configuration instead of the first.
    """
    stack = np.empty((MAX_STACK, 81), np.int32)
    stack_ruled = np.empty((MAX_STACK, NUM_BANDS * 9), np.int32)
    depth = 0
    cur = cand.copy()
    ruled_out = np.zeros(NUM_BANDS * 9, np.int32)
    found = 0
    guesses = 0
    ok = propagate(cur, ruled_out)
    while True:
        if ok:
            band, digit, configs = _choose_branch(cur, ruled_out)
            if band < 0:  # every digit's configuration fixed in every band: solved
                for i in range(81):
                    solutions[found, i] = DIGIT_OF[cur[i]]
                found += 1
                if found >= limit:
                    break
                ok = False
                continue
            pick = configs & -configs
            if randomize:
                for _ in range(np.random.randint(POPCOUNT[configs])):
                    configs &= configs - 1
                pick = configs & -configs
            config = POPCOUNT[pick - 1]
            guesses += 1
            stack[depth] = cur
            stack_ruled[depth] = ruled_out
            stack_ruled[depth, band * 9 + digit] |= pick
            depth += 1
            ok = _place_configuration(cur, band, digit, config) and propagate(cur, ruled_out)
            continue
        if depth == 0:
            break
        depth -= 1
        cur[:] = stack[depth]
        ruled_out[:] = stack_ruled[depth]
        ok = propagate(cur, ruled_out)
    return found, guesses


@numba.njit(cache=True)
def count_solutions(board, limit):
    """Number of solutions of ``board``, counted up to ``limit``."""
    out = np.empty((limit, 81), np.int64)
    return search(candidates(board), limit, False, out)[0]


@numba.njit(cache=True)
def first_solution_guesses(board):
    """Guesses that fixed-order search makes to reach a first solution."""
    out = np.empty((1, 81), np.int64)
    return search(candidates(board), 1, False, out)[1]


@numba.njit(cache=True)
def _random_perm3():
    return _PERMS3[np.random.randint(6)]


@numba.njit(cache=True)
def random_variant(board):
    """A random member of ``board``'s symmetry class (HRM's ``shuffle_sudoku`` distribution)."""
    digits = np.zeros(10, np.int64)
    digits[1:] = np.random.permutation(9) + 1
    rows = np.empty(9, np.int64)
    cols = np.empty(9, np.int64)
    for lines in (rows, cols):
        blocks = _random_perm3()
        for b in range(3):
            inner = _random_perm3()
            for i in range(3):
                lines[b * 3 + i] = blocks[b] * 3 + inner[i]
    transpose = np.random.random() < 0.5
    out = np.empty(81, np.int64)
    for r in range(9):
        for c in range(9):
            src = cols[c] * 9 + rows[r] if transpose else rows[r] * 9 + cols[c]
            out[r * 9 + c] = digits[board[src]]
    return out


@numba.njit(cache=True)
def _rate(board, variants):
    total = 0
    for _ in range(variants):
        total += first_solution_guesses(random_variant(board))
    return total / variants


@numba.njit(cache=True)
def rate(board, variants, seed):
    """Difficulty: mean first-solution guess count over ``variants`` random variants."""
    np.random.seed(seed)
    return _rate(board, variants)


@numba.njit(cache=True)
def random_full_grid():
    """A full grid from search with random candidate choices."""
    out = np.empty((1, 81), np.int64)
    search(np.full(81, ALL_DIGITS, np.int32), 1, True, out)
    return out[0].copy()


# --- unavoidable sets -----------------------------------------------------------------------
# Another solution of a subset of a grid's cells differs from the grid on a set of cells of
# which every unique puzzle of that grid must hold at least one clue. Sets are 81-bit cell
# masks stored as two uint64 words (cells 0-63, 64-80); a clue that is the only clue inside
# a known set is necessary without a search. The store keeps sets minimal under inclusion.

MAX_SETS = 256
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@numba.njit(cache=True)
def _cell_word_bit(cell):
    if cell < 64:
        return 0, _ONE << np.uint64(cell)
    return 1, _ONE << np.uint64(cell - 64)


@numba.njit(cache=True)
def _mask_of(flags):
    """Two-word mask of the cells where ``flags`` is true."""
    words = np.zeros(2, np.uint64)
    for cell in range(81):
        if flags[cell]:
            w, bit = _cell_word_bit(cell)
            words[w] |= bit
    return words


@numba.njit(cache=True)
def _popcount64(x):
    n = 0
    while x:
        x &= x - _ONE
        n += 1
    return n


@numba.njit(cache=True)
def _add_set(sets, count, words):
    """Adds an unavoidable set unless a known one lies inside it; drops its supersets.
    ``count`` is a 1-element array holding the number of stored sets."""
    n = count[0]
    for i in range(n):
        if sets[i, 0] & words[0] == sets[i, 0] and sets[i, 1] & words[1] == sets[i, 1]:
            return
    kept = 0
    for i in range(n):
        if not (sets[i, 0] & words[0] == words[0] and sets[i, 1] & words[1] == words[1]):
            sets[kept] = sets[i]
            kept += 1
    if kept == MAX_SETS:  # full: the new set replaces the largest if it is smaller
        size = _popcount64(words[0]) + _popcount64(words[1])
        largest, largest_size = -1, size
        for i in range(kept):
            here = _popcount64(sets[i, 0]) + _popcount64(sets[i, 1])
            if here > largest_size:
                largest, largest_size = i, here
        if largest >= 0:
            sets[largest] = words
    else:
        sets[kept] = words
        kept += 1
    count[0] = kept


@numba.njit(cache=True)
def _known_necessary(sets, count, clues_words):
    """Mask of clues that are the single clue inside some known set."""
    necessary = np.zeros(2, np.uint64)
    for i in range(count[0]):
        lo = sets[i, 0] & clues_words[0]
        hi = sets[i, 1] & clues_words[1]
        if lo == _ZERO and hi != _ZERO and hi & (hi - _ONE) == _ZERO:
            necessary[1] |= hi
        elif hi == _ZERO and lo != _ZERO and lo & (lo - _ONE) == _ZERO:
            necessary[0] |= lo
    return necessary


@numba.njit(cache=True)
def _record_alternative(sets, count, solution, other):
    """Stores the cells where ``other`` (a valid grid) differs from ``solution``, if any."""
    words = _mask_of(other != solution)
    if words[0] != _ZERO or words[1] != _ZERO:
        _add_set(sets, count, words)


@numba.njit(cache=True)
def seed_unavoidable_sets(solution, sets, count, limit=40):
    """Finds a grid's small unavoidable sets: blanks the cells of each pair of digits and
    records up to ``limit`` other fillings of each."""
    out = np.empty((limit, 81), np.int64)
    for a in range(1, 10):
        for b in range(a + 1, 10):
            puzzle = solution.copy()
            for i in range(81):
                if puzzle[i] == a or puzzle[i] == b:
                    puzzle[i] = 0
            found = search(candidates(puzzle), limit, False, out)[0]
            for k in range(found):
                _record_alternative(sets, count, solution, out[k])


@numba.njit(cache=True)
def minimise(clues, solution, sets, count):
    """Removes clues in random order while ``solution`` stays the only solution, recording
    the alternatives it meets as unavoidable sets."""
    clues = clues.copy()
    out = np.empty((1, 81), np.int64)
    clue_words = _mask_of(clues != 0)
    necessary = _known_necessary(sets, count, clue_words)
    order = np.random.permutation(81)
    for k in range(81):
        cell = order[k]
        w, bit = _cell_word_bit(cell)
        if clues[cell] == 0 or necessary[w] & bit:
            continue
        cand = candidates(clues)
        cand[cell] = ALL_DIGITS & ~(1 << (solution[cell] - 1))
        if search(cand, 1, False, out)[0] > 0:
            _record_alternative(sets, count, solution, out[0])
        else:
            clues[cell] = 0
            clue_words[w] &= ~bit
            necessary = _known_necessary(sets, count, clue_words)
    return clues


@numba.njit(cache=True)
def make_unique(clues, solution, sets, count, max_additions):
    """Adds cells of ``solution`` to ``clues`` (which it satisfies) until the solution is
    unique; returns (clues, True), or (clues, False) after ``max_additions``."""
    clues = clues.copy()
    out = np.empty((2, 81), np.int64)
    cells = np.empty(81, np.int64)
    for _ in range(max_additions + 1):
        clue_words = _mask_of(clues != 0)
        unhit = -1
        for i in range(count[0]):
            if sets[i, 0] & clue_words[0] == _ZERO and sets[i, 1] & clue_words[1] == _ZERO:
                unhit = i
                break
        if unhit >= 0:
            target = sets[unhit]
        else:
            found = search(candidates(clues), 2, True, out)[0]
            if found < 2:
                return clues, True
            other = 0 if (out[0] != solution).any() else 1
            target = _mask_of(out[other] != solution)
            _add_set(sets, count, target)
        n = 0
        for cell in range(81):
            w, bit = _cell_word_bit(cell)
            if target[w] & bit:
                cells[n] = cell
                n += 1
        cell = cells[np.random.randint(n)]
        clues[cell] = solution[cell]
    return clues, False


@numba.njit(cache=True)
def _propose(clues, solution, sets, count, p_single):
    """Moves one or two clues to other cells, restores uniqueness and re-minimises."""
    new = clues.copy()
    k = 1 if np.random.random() < p_single else 2
    filled = np.flatnonzero(new != 0)
    empty = np.flatnonzero(new == 0)
    drop = np.random.permutation(filled.shape[0])[:k]
    add = np.random.permutation(empty.shape[0])[:k]
    for i in range(k):
        new[filled[drop[i]]] = 0
        new[empty[add[i]]] = solution[empty[add[i]]]
    new, ok = make_unique(new, solution, sets, count, 20)
    if not ok:
        return new, False
    return minimise(new, solution, sets, count), True


@numba.njit(cache=True)
def _already_kept(kept, n, clues):
    for i in range(n):
        if np.array_equal(kept[i], clues):
            return True
    return False


@numba.njit(cache=True)
def hard_puzzles(seed, min_rating, count, climb_variants, final_variants, max_steps, patience,
                 max_restarts):
    """Up to ``count`` distinct minimal unique puzzles of one solution grid, each rated at
    least ``min_rating``.

    A climb takes a fresh random grid and a random minimal puzzle of it, then proposes clue
    moves (``_propose``). Below ``min_rating`` it keeps a proposal whose rating (over
    ``climb_variants`` variants) does not drop; a puzzle that reaches ``min_rating`` is
    re-rated over ``final_variants`` fresh variants and kept only if that holds. From
    there the walk accepts any proposal rated at least ``min_rating`` and keeps each new
    one that verifies: the neighbourhood of a hard puzzle is where other hard puzzles are
    (the forum "hardest" lists grew the same way). A climb that keeps nothing restarts after
    ``max_steps`` proposals, or ``patience`` proposals without progress.

    Returns (puzzles [n, 81], solution, ratings [n], steps, restarts); n is 0 when
    ``max_restarts`` climbs all failed.
    """
    np.random.seed(seed)
    kept = np.zeros((count, 81), np.int64)
    ratings = np.zeros(count, np.float64)
    steps = 0
    for restart in range(max_restarts + 1):
        solution = random_full_grid()
        sets = np.zeros((MAX_SETS, 2), np.uint64)
        num_sets = np.zeros(1, np.int64)
        seed_unavoidable_sets(solution, sets, num_sets)
        clues = minimise(solution, solution, sets, num_sets)
        score = _rate(clues, climb_variants)
        n = 0
        best = score
        since_progress = 0
        for _ in range(max_steps + 1):
            if score >= min_rating and not _already_kept(kept, n, clues):
                final = _rate(clues, final_variants)
                if final >= min_rating:
                    kept[n] = clues
                    ratings[n] = final
                    n += 1
                    since_progress = 0
                    if n == count:
                        break
                else:
                    score = final
            steps += 1
            proposal, ok = _propose(clues, solution, sets, num_sets, 0.3)
            if ok:
                proposed = _rate(proposal, climb_variants)
                if proposed >= min(score, min_rating):
                    clues = proposal
                    score = proposed
            if score > best:
                best = score
                since_progress = 0
            else:
                since_progress += 1
                if since_progress >= patience:
                    break
        if n > 0:
            return kept[:n].copy(), solution, ratings[:n].copy(), steps, restart
    return kept[:0].copy(), solution, ratings[:0].copy(), steps, max_restarts + 1


@numba.njit(cache=True)
def minimise_puzzle(puzzle, solution, seed):
    """A minimal puzzle from ``puzzle`` (unique, with ``solution``), clues tried in a seeded
    random order."""
    np.random.seed(seed)
    sets = np.zeros((MAX_SETS, 2), np.uint64)
    num_sets = np.zeros(1, np.int64)
    return minimise(puzzle, solution, sets, num_sets)


@numba.njit(cache=True)
def random_minimal_puzzle(seed):
    """(solution, minimal puzzle) of a random grid."""
    np.random.seed(seed)
    solution = random_full_grid()
    sets = np.zeros((MAX_SETS, 2), np.uint64)
    num_sets = np.zeros(1, np.int64)
    return solution, minimise(solution, solution, sets, num_sets)


@numba.njit(cache=True)
def blanked_puzzles(seed, num_blanks, count, variants, max_restarts):
    """Up to ``count`` distinct unique puzzles of one random grid with exactly ``num_blanks``
    blanks: cells are blanked in a random order, skipping a cell whose removal would admit a
    second solution (a fresh order when one runs out of cells). The easy end of the difficulty
    range: few blanks are solved by propagation alone (rating 0).

    Returns (puzzles [n, 81], solution, ratings [n] over ``variants`` variants, restarts)."""
    np.random.seed(seed)
    solution = random_full_grid()
    kept = np.zeros((count, 81), np.int64)
    ratings = np.zeros(count, np.float64)
    n = 0
    restarts = 0
    while n < count and restarts <= max_restarts:
        board = solution.copy()
        blanks = 0
        for cell in np.random.permutation(81):
            if blanks == num_blanks:
                break
            digit = board[cell]
            board[cell] = 0
            if count_solutions(board, 2) == 1:
                blanks += 1
            else:
                board[cell] = digit
        if blanks == num_blanks and not _already_kept(kept, n, board):
            kept[n] = board
            ratings[n] = _rate(board, variants)
            n += 1
        else:
            restarts += 1
    return kept[:n].copy(), solution, ratings[:n].copy(), restarts
