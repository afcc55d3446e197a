"""grain pipelines over the original HRM puzzle format (`puzzles.hrm_format`), batched as HRM's
`puzzle_dataset.py` batches.

Batch schema (numpy, per host: local_batch = global_batch_size // process_count rows):
    inputs              int32 [local_batch, seq_len]
    labels              int32 [local_batch, seq_len]; the metadata's ignore_label_id becomes -100
    puzzle_identifiers  int32 [local_batch]
    mask                int32 [local_batch]; 1 for a real example, 0 for a padding row (test split only)

Train (`puzzle_train_batches`): iteration k draws, for each set in turn, a Philox generator seeded
seed + k * len(sets) + set_position + 1 (HRM's seed + _iters), orders the groups by `epochs_per_iter` independent
permutations, and fills global batches walking that order: for each group one random puzzle of the group (one
augmentation) and all its examples (up to the room left in the batch). The last incomplete batch of an
iteration is dropped. Group order and puzzle choice match HRM draw for draw; the order of examples inside a
multi-example puzzle comes from a second generator (HRM uses numpy's unseeded global one). Each host takes rows
[process_index * local_batch, (process_index + 1) * local_batch) of every global batch.

Test (`puzzle_eval_batches`): every example once, in order, set by set, in global batches; the last one is padded
(inputs pad_id, labels -100, puzzle_identifiers blank_identifier_id, mask 0).

Both iterators checkpoint exactly (`get_state` / `set_state`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import grain
import numpy as np

from input_pipeline.puzzles.hrm_format import PuzzleArrays, PuzzleSplit, read_split

IGNORE_LABEL_ID = -100


@dataclasses.dataclass(frozen=True)
class HostBatching:
    """How a global batch is divided among hosts."""
    global_batch_size: int
    process_index: int = 0
    process_count: int = 1

    def __post_init__(self):
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index {self.process_index} must lie in [0, {self.process_count})")
        if self.global_batch_size < 1 or self.global_batch_size % self.process_count:
            raise ValueError(f"global_batch_size {self.global_batch_size} must be a positive multiple of "
                             f"process_count {self.process_count}")

    @property
    def local_batch_size(self) -> int:
        return self.global_batch_size // self.process_count

    def local_slice(self, start: int, stop: int) -> slice:
        """This host's part of the global rows [start, stop)."""
        lo = start + self.process_index * self.local_batch_size
        return slice(min(lo, stop), min(lo + self.local_batch_size, stop))


def sample_global_batch(rng: np.random.Generator, example_rng: np.random.Generator, group_order: np.ndarray,
                        puzzle_indices: np.ndarray, group_indices: np.ndarray, start: int,
                        global_batch_size: int) -> tuple[int, np.ndarray, np.ndarray]:
    """HRM's `_sample_batch`: (next start in group_order, example indices, puzzle index of each example)."""
    examples, puzzles = [], []
    size = 0
    while start < group_order.size and size < global_batch_size:
        group = group_order[start]
        puzzle = rng.integers(group_indices[group], group_indices[group + 1])
        start += 1
        puzzle_start = puzzle_indices[puzzle]
        puzzle_size = int(puzzle_indices[puzzle + 1] - puzzle_start)
        take = min(puzzle_size, global_batch_size - size)
        puzzles.append(np.full(take, puzzle, np.int64))
        examples.append(puzzle_start + example_rng.choice(puzzle_size, take, replace=False))
        size += take
    if not examples:
        return start, np.zeros(0, np.int64), np.zeros(0, np.int64)
    return start, np.concatenate(examples), np.concatenate(puzzles)


def iteration_plan(arrays: PuzzleArrays, seed: int, iters: int, epochs_per_iter: int,
                   global_batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The full global batches (example indices, puzzle indices) of one set in one HRM iteration."""
    rng = np.random.Generator(np.random.Philox(seed=seed + iters))
    example_rng = np.random.Generator(np.random.Philox(seed=[seed + iters, 1]))
    num_groups = len(arrays.group_indices) - 1
    group_order = np.concatenate([rng.permutation(num_groups) for _ in range(epochs_per_iter)])
    puzzle_indices = np.asarray(arrays.puzzle_indices)
    group_indices = np.asarray(arrays.group_indices)
    plan, start = [], 0
    while start < group_order.size:
        start, examples, puzzles = sample_global_batch(rng, example_rng, group_order, puzzle_indices,
                                                       group_indices, start, global_batch_size)
        if examples.size < global_batch_size:
            break
        plan.append((examples, puzzles))
    return plan


def collate(split: PuzzleSplit, arrays: PuzzleArrays, examples: np.ndarray, puzzles: np.ndarray,
            rows: int) -> dict[str, np.ndarray]:
    """One host batch of `rows` rows: the given examples, then padding rows."""
    meta = split.metadata
    labels = np.asarray(arrays.labels[examples], np.int32)
    if meta.ignore_label_id is not None:
        labels[labels == meta.ignore_label_id] = IGNORE_LABEL_ID
    batch = {"inputs": np.asarray(arrays.inputs[examples], np.int32), "labels": labels,
             "puzzle_identifiers": np.asarray(arrays.puzzle_identifiers[puzzles], np.int32),
             "mask": np.ones(len(examples), np.int32)}
    missing = rows - len(examples)
    if missing > 0:
        fill = {"inputs": meta.pad_id, "labels": IGNORE_LABEL_ID, "puzzle_identifiers": meta.blank_identifier_id,
                "mask": 0}
        batch = {k: np.concatenate([v, np.full((missing,) + v.shape[1:], fill[k], np.int32)])
                 for k, v in batch.items()}
    return batch


class _LazySplit:
    """A split loaded (inputs and labels memory-mapped) on first use; pickles as its path."""

    def __init__(self, root: str, split: str):
        self.root, self.split = root, split
        self._loaded: PuzzleSplit | None = None

    def get(self) -> PuzzleSplit:
        if self._loaded is None:
            self._loaded = read_split(self.root, self.split, mmap=True)
        return self._loaded

    def __getstate__(self) -> dict:
        return {"root": self.root, "split": self.split, "_loaded": None}


class PuzzleTrainDataset(grain.IterDataset):
    """HRM's training sampling as a grain source; `num_iters` None iterates forever."""

    def __init__(self, root: str | os.PathLike, split: str, batching: HostBatching, *, seed: int = 0,
                 epochs_per_iter: int = 1, num_iters: int | None = None):
        super().__init__()
        if epochs_per_iter < 1:
            raise ValueError(f"epochs_per_iter must be at least 1, got {epochs_per_iter}")
        self._split = _LazySplit(os.fspath(root), split)
        self.batching, self.seed, self.epochs_per_iter, self.num_iters = batching, seed, epochs_per_iter, num_iters

    def __iter__(self) -> "_PuzzleTrainIterator":
        return _PuzzleTrainIterator(self)

    def __str__(self) -> str:
        return f"PuzzleTrainDataset({self._split.root!r}, {self._split.split!r})"


class _PuzzleTrainIterator(grain.DatasetIterator):
    def __init__(self, ds: PuzzleTrainDataset):
        super().__init__()
        self._ds = ds
        self._data = ds._split.get()
        self._set_names = list(self._data.metadata.sets)
        self._state = {"iteration": 0, "set_position": 0, "batch": 0}
        self._plan_key: tuple[int, int] | None = None
        self._plan: list = []

    def _current_plan(self) -> list:
        key = (self._state["iteration"], self._state["set_position"])
        if key != self._plan_key:
            iters = key[0] * len(self._set_names) + key[1] + 1
            arrays = self._data.sets[self._set_names[key[1]]]
            self._plan = iteration_plan(arrays, self._ds.seed, iters, self._ds.epochs_per_iter,
                                        self._ds.batching.global_batch_size)
            self._plan_key = key
        return self._plan

    def __next__(self) -> dict[str, np.ndarray]:
        empty_sets = 0
        while True:
            if self._ds.num_iters is not None and self._state["iteration"] >= self._ds.num_iters:
                raise StopIteration
            plan = self._current_plan()
            if self._state["batch"] < len(plan):
                break
            empty_sets = empty_sets + 1 if not plan else 0
            if empty_sets >= len(self._set_names):
                raise ValueError(
                    f"{self._ds}: a whole iteration gave no full batch of {self._ds.batching.global_batch_size} "
                    "examples; the split is too small for this global batch size")
            self._advance_set()
        examples, puzzles = plan[self._state["batch"]]
        rows = self._ds.batching.local_slice(0, len(examples))
        arrays = self._data.sets[self._set_names[self._state["set_position"]]]
        self._state["batch"] += 1
        return collate(self._data, arrays, examples[rows], puzzles[rows], self._ds.batching.local_batch_size)

    def _advance_set(self) -> None:
        self._state["batch"] = 0
        self._state["set_position"] += 1
        if self._state["set_position"] == len(self._set_names):
            self._state["set_position"] = 0
            self._state["iteration"] += 1

    def get_state(self) -> dict[str, Any]:
        return dict(self._state)

    def set_state(self, state: dict[str, Any]) -> None:
        missing = {"iteration", "set_position", "batch"} - set(state)
        if missing:
            raise ValueError(f"{self._ds}: iterator state lacks {sorted(missing)}")
        self._state = {k: int(state[k]) for k in ("iteration", "set_position", "batch")}


class CollateTestBatch(grain.transforms.Map):
    """Global test-batch number -> this host's padded batch."""

    def __init__(self, root: str, split: str, batching: HostBatching, batch_starts: list[tuple[int, int]]):
        self._split = _LazySplit(root, split)
        self.batching, self.batch_starts = batching, batch_starts

    def map(self, batch_number: int) -> dict[str, np.ndarray]:
        data = self._split.get()
        set_position, start = self.batch_starts[batch_number]
        arrays = data.sets[data.metadata.sets[set_position]]
        total = len(arrays.inputs)
        rows = self.batching.local_slice(start, min(start + self.batching.global_batch_size, total))
        examples = np.arange(rows.start, rows.stop)
        puzzles = np.searchsorted(np.asarray(arrays.puzzle_indices), examples, side="right") - 1
        return collate(data, arrays, examples, puzzles, self.batching.local_batch_size)


def puzzle_train_batches(root: str | os.PathLike, *, global_batch_size: int, split: str = "train", seed: int = 0,
                         epochs_per_iter: int = 1, num_iters: int | None = None, process_index: int = 0,
                         process_count: int = 1) -> grain.IterDataset:
    """This host's training batches of `root/split` (see the module docstring)."""
    batching = HostBatching(global_batch_size, process_index, process_count)
    _check_not_empty(os.fspath(root), split)
    return PuzzleTrainDataset(root, split, batching, seed=seed, epochs_per_iter=epochs_per_iter,
                              num_iters=num_iters)


def puzzle_eval_batches(root: str | os.PathLike, *, global_batch_size: int, split: str = "test",
                        process_index: int = 0, process_count: int = 1) -> grain.IterDataset:
    """This host's test batches of `root/split`: one ordered pass, the last batch padded."""
    batching = HostBatching(global_batch_size, process_index, process_count)
    root = os.fspath(root)
    data = read_split(root, split, mmap=True)
    starts = [(k, start) for k, name in enumerate(data.metadata.sets)
              for start in range(0, len(data.sets[name].inputs), global_batch_size)]
    if not starts:
        raise ValueError(f"{os.path.join(root, split)}: holds no examples")
    return (grain.MapDataset.range(len(starts)).map(CollateTestBatch(root, split, batching, starts))
            .to_iter_dataset())


def _check_not_empty(root: str, split: str) -> None:
    data = read_split(root, split, mmap=True)
    if not any(len(a.inputs) for a in data.sets.values()):
        raise ValueError(f"{os.path.join(root, split)}: holds no examples")

