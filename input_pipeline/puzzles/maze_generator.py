"""Hard 30x30 mazes in the style of sapientinc/maze-30x30-hard-1k.

Walls are placed independently at random (a wall fraction drawn per maze, as in Lehnert
et al.'s Searchformer generator, which draws 30-50%); the start is a random open cell and
the goal a random open cell whose shortest (4-connected) path from the start is longer
than ``min_path_length`` steps. The label marks the cells strictly between start and goal
on one shortest path with 'o'; 'S' and 'G' stay as they are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

CHARSET = "# SGo"
WALL, OPEN, START, GOAL, PATH = CHARSET


@dataclass(frozen=True)
class Maze:
    """A maze as two row-major strings (question and answer) plus its path length in steps."""

    question: str
    answer: str
    size: int
    path_length: int


def _neighbours(size: int) -> list[tuple[int, ...]]:
    result = []
    for i in range(size * size):
        r, c = divmod(i, size)
        around = []
        if r > 0:
            around.append(i - size)
        if r < size - 1:
            around.append(i + size)
        if c > 0:
            around.append(i - 1)
        if c < size - 1:
            around.append(i + 1)
        result.append(tuple(around))
    return result


_NEIGHBOURS: dict[int, list[tuple[int, ...]]] = {}


def neighbours(size: int) -> list[tuple[int, ...]]:
    """The 4-connected neighbours of every cell of a ``size`` x ``size`` grid (flat indices)."""
    if size not in _NEIGHBOURS:
        _NEIGHBOURS[size] = _neighbours(size)
    return _NEIGHBOURS[size]


def bfs_distances(open_cells: list[bool], size: int, start: int) -> list[int]:
    """Shortest-path step counts from ``start`` over open cells; -1 where unreachable."""
    nbrs = neighbours(size)
    dist = [-1] * (size * size)
    dist[start] = 0
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        d = dist[cell] + 1
        for n in nbrs[cell]:
            if open_cells[n] and dist[n] < 0:
                dist[n] = d
                queue.append(n)
    return dist


def shortest_path(open_cells: list[bool], size: int, start: int, goal: int, rng=None) -> list[int]:
    """One shortest path from ``start`` to ``goal`` as flat cell indices (both ends included);
    ties go to a random neighbour when ``rng`` is given. Empty when the goal is unreachable."""
    dist = bfs_distances(open_cells, size, goal)
    if dist[start] < 0:
        return []
    nbrs = neighbours(size)
    path = [start]
    cell = start
    while cell != goal:
        steps = [n for n in nbrs[cell] if dist[n] == dist[cell] - 1]
        cell = steps[int(rng.integers(len(steps)))] if rng is not None else steps[0]
        path.append(cell)
    return path


def render(open_cells: list[bool], start: int, goal: int, path=()) -> str:
    """The maze as a row-major string over CHARSET, with ``path`` cells marked 'o'."""
    chars = [OPEN if o else WALL for o in open_cells]
    for cell in path:
        chars[cell] = PATH
    chars[start] = START
    chars[goal] = GOAL
    return "".join(chars)


def random_maze(
    rng: np.random.Generator,
    size: int = 30,
    min_path_length: int = 110,
    wall_fraction: tuple[float, float] = (0.3, 0.5),
    starts_per_layout: int = 1,
    max_layouts: int = 100_000,
) -> Maze:
    """Samples wall layouts until one has a start/goal pair more than ``min_path_length``
    steps apart; returns that maze with its solved label. Raises RuntimeError after
    ``max_layouts`` layouts without one."""
    n = size * size
    for _ in range(max_layouts):
        num_walls = int(rng.integers(int(n * wall_fraction[0]), int(n * wall_fraction[1]) + 1))
        open_mask = np.ones(n, bool)
        open_mask[rng.choice(n, size=num_walls, replace=False)] = False
        open_cells = open_mask.tolist()
        open_idx = np.flatnonzero(open_mask)
        if len(open_idx) < 2:
            continue
        for _ in range(starts_per_layout):
            start = int(open_idx[rng.integers(len(open_idx))])
            dist = np.asarray(bfs_distances(open_cells, size, start))
            far = np.flatnonzero(dist > min_path_length)
            if len(far):
                goal = int(far[rng.integers(len(far))])
                path = shortest_path(open_cells, size, start, goal, rng)
                return Maze(
                    question=render(open_cells, start, goal),
                    answer=render(open_cells, start, goal, path[1:-1]),
                    size=size,
                    path_length=len(path) - 1,
                )
    raise RuntimeError(f"no {size}x{size} maze with a path longer than {min_path_length} "
                       f"in {max_layouts} wall layouts")
