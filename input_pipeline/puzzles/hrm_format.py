"""The original HRM puzzle dataset format on disk: writer and validating reader.

Layout (HRM ``dataset/common.py`` and the ``build_*_dataset.py`` scripts)::

    <root>/identifiers.json                       id -> name list, ["<blank>"] for puzzles
    <root>/<split>/dataset.json                   PuzzleDatasetMetadata fields
    <root>/<split>/<set>__inputs.npy              [examples, seq_len] tokens
    <root>/<split>/<set>__labels.npy              [examples, seq_len] tokens
    <root>/<split>/<set>__puzzle_identifiers.npy  [puzzles] int32
    <root>/<split>/<set>__puzzle_indices.npy      [puzzles + 1] int32, CSR offsets into examples
    <root>/<split>/<set>__group_indices.npy       [groups + 1] int32, CSR offsets into puzzles

The reader accepts files written by the original builders (any integer dtype; extra
metadata keys such as TRM's ``total_puzzles``) and names the file at fault on any error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

ARRAY_FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
METADATA_FIELDS = (
    "pad_id",
    "ignore_label_id",
    "blank_identifier_id",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "total_groups",
    "mean_puzzle_examples",
    "sets",
)


class PuzzleFormatError(ValueError):
    """A dataset file is missing or does not match the HRM format; the message names it."""


@dataclass(frozen=True)
class PuzzleDatasetMetadata:
    """HRM's ``PuzzleDatasetMetadata`` (same fields, same JSON)."""

    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    sets: list[str]


@dataclass(frozen=True)
class PuzzleArrays:
    """One set of one split: token arrays plus the puzzle and group CSR offsets."""

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray

    @property
    def num_groups(self) -> int:
        return len(self.group_indices) - 1


@dataclass(frozen=True)
class PuzzleSplit:
    """A loaded split: its metadata and arrays per set name."""

    metadata: PuzzleDatasetMetadata
    sets: dict[str, PuzzleArrays]


def single_example_puzzles(inputs: np.ndarray, labels: np.ndarray, group_sizes) -> PuzzleArrays:
    """Arrays for puzzles of one example each (HRM's Sudoku and Maze layout), identifier 0,
    grouped consecutively with ``group_sizes`` puzzles per group."""
    n = len(inputs)
    group_indices = np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int32)
    if group_indices[-1] != n:
        raise ValueError(f"group sizes add up to {group_indices[-1]}, not {n} puzzles")
    return PuzzleArrays(
        inputs=inputs,
        labels=labels,
        puzzle_identifiers=np.zeros(n, np.int32),
        puzzle_indices=np.arange(n + 1, dtype=np.int32),
        group_indices=group_indices,
    )


def write_split(root: str, split: str, metadata: PuzzleDatasetMetadata, sets: dict[str, PuzzleArrays]) -> None:
    """Writes ``<root>/<split>/dataset.json`` and the arrays of every set."""
    if sorted(sets) != sorted(metadata.sets):
        raise ValueError(f"metadata lists sets {metadata.sets}, arrays have {sorted(sets)}")
    split_dir = os.path.join(root, split)
    os.makedirs(split_dir, exist_ok=True)
    for set_name, arrays in sets.items():
        _validate_arrays(arrays, metadata, os.path.join(split_dir, f"{set_name}__"))
        for field in ARRAY_FIELDS:
            np.save(os.path.join(split_dir, f"{set_name}__{field}.npy"), getattr(arrays, field))
    with open(os.path.join(split_dir, "dataset.json"), "w") as f:
        json.dump(asdict(metadata), f)


def write_identifiers(root: str, names=("<blank>",)) -> None:
    """Writes ``<root>/identifiers.json`` (identifier id -> name)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "identifiers.json"), "w") as f:
        json.dump(list(names), f)


def read_identifiers(root: str) -> list[str]:
    """Reads ``<root>/identifiers.json``."""
    path = os.path.join(root, "identifiers.json")
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise PuzzleFormatError(f"{path}: expected a JSON list of names")
    return data


def read_metadata(root: str, split: str) -> PuzzleDatasetMetadata:
    """Reads and checks ``<root>/<split>/dataset.json``."""
    path = os.path.join(root, split, "dataset.json")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise PuzzleFormatError(f"{path}: expected a JSON object")
    missing = [k for k in METADATA_FIELDS if k not in data]
    if missing:
        raise PuzzleFormatError(f"{path}: missing keys {missing}")
    metadata = PuzzleDatasetMetadata(**{k: data[k] for k in METADATA_FIELDS})
    ints = ("pad_id", "blank_identifier_id", "vocab_size", "seq_len",
            "num_puzzle_identifiers", "total_groups")
    bad = [k for k in ints if not isinstance(getattr(metadata, k), int)]
    if metadata.ignore_label_id is not None and not isinstance(metadata.ignore_label_id, int):
        bad.append("ignore_label_id")
    if not isinstance(metadata.mean_puzzle_examples, (int, float)):
        bad.append("mean_puzzle_examples")
    if not isinstance(metadata.sets, list) or not all(isinstance(s, str) for s in metadata.sets):
        bad.append("sets")
    if bad:
        raise PuzzleFormatError(f"{path}: keys with the wrong type {bad}")
    return metadata


def read_split(root: str, split: str, mmap: bool = False) -> PuzzleSplit:
    """Loads and checks one split; ``mmap`` memory-maps inputs and labels."""
    metadata = read_metadata(root, split)
    sets = {}
    for set_name in metadata.sets:
        prefix = os.path.join(root, split, f"{set_name}__")
        fields = {}
        for field in ARRAY_FIELDS:
            mode = "r" if mmap and field in ("inputs", "labels") else None
            fields[field] = _load_array(f"{prefix}{field}.npy", mode)
        arrays = PuzzleArrays(**fields)
        _validate_arrays(arrays, metadata, prefix)
        sets[set_name] = arrays
    total = sum(a.num_groups for a in sets.values())
    if total != metadata.total_groups:
        raise PuzzleFormatError(
            f"{os.path.join(root, split, 'dataset.json')}: total_groups is "
            f"{metadata.total_groups} but the group_indices files hold {total} groups"
        )
    return PuzzleSplit(metadata, sets)


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise PuzzleFormatError(f"{path}: file not found") from e
    except json.JSONDecodeError as e:
        raise PuzzleFormatError(f"{path}: not valid JSON ({e})") from e


def _load_array(path: str, mmap_mode) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError as e:
        raise PuzzleFormatError(f"{path}: file not found") from e
    except ValueError as e:
        raise PuzzleFormatError(f"{path}: not a readable .npy array ({e})") from e
    if not np.issubdtype(array.dtype, np.integer):
        raise PuzzleFormatError(f"{path}: dtype {array.dtype} is not an integer type")
    return array


def _validate_arrays(arrays: PuzzleArrays, metadata: PuzzleDatasetMetadata, prefix: str) -> None:
    """Checks shapes, CSR offsets and token ranges; errors name the offending file."""

    def fail(field: str, message: str):
        raise PuzzleFormatError(f"{prefix}{field}.npy: {message}")

    for field in ARRAY_FIELDS:
        if not np.issubdtype(getattr(arrays, field).dtype, np.integer):
            fail(field, f"dtype {getattr(arrays, field).dtype} is not an integer type")
    for field in ("inputs", "labels"):
        a = getattr(arrays, field)
        if a.ndim != 2 or a.shape[1] != metadata.seq_len:
            fail(field, f"shape {a.shape}, expected [examples, seq_len={metadata.seq_len}]")
        if a.size and (a.min() < 0 or a.max() >= metadata.vocab_size):
            fail(field, f"tokens outside [0, vocab_size={metadata.vocab_size})")
    if arrays.labels.shape[0] != arrays.inputs.shape[0]:
        fail("labels", f"{arrays.labels.shape[0]} examples, inputs has {arrays.inputs.shape[0]}")
    for field, count_name, total in (
        ("puzzle_indices", "examples", arrays.inputs.shape[0]),
        ("group_indices", "puzzles", len(arrays.puzzle_identifiers)),
    ):
        offsets = getattr(arrays, field)
        if offsets.ndim != 1 or len(offsets) < 1:
            fail(field, f"shape {offsets.shape}, expected a 1-D offsets array")
        if offsets[0] != 0 or offsets[-1] != total:
            fail(field, f"offsets must run from 0 to the number of {count_name} ({total})")
        if np.any(np.diff(offsets) < 0):
            fail(field, "offsets decrease")
    ids = arrays.puzzle_identifiers
    if ids.ndim != 1 or len(ids) != len(arrays.puzzle_indices) - 1:
        fail("puzzle_identifiers", f"shape {ids.shape}, expected [{len(arrays.puzzle_indices) - 1}]")
    if ids.size and (ids.min() < 0 or ids.max() >= metadata.num_puzzle_identifiers):
        fail("puzzle_identifiers", f"ids outside [0, {metadata.num_puzzle_identifiers})")
