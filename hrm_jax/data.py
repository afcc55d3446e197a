"""The trainer's view of data: grain iterators of numpy batches (this host's rows) plus the dataset metadata.

Iterators are grain `DatasetIterator`s, so their position is checkpointed with the model (`checkpoint.py`).
Kinds: `puzzle` (the original HRM on-disk format, `input_pipeline.puzzle_pipeline`) and `synthetic` (a sorting
task generated from the example index: no files, used by tests and smoke runs).
"""

from __future__ import annotations

import dataclasses

import grain
import ml_collections
import numpy as np


@dataclasses.dataclass(frozen=True)
class DataSpec:
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _local_batch_size(global_batch_size: int, process_count: int) -> int:
    if global_batch_size % process_count:
        raise ValueError(f"data.global_batch_size {global_batch_size} is not divisible by {process_count} processes")
    return global_batch_size // process_count


class SortingExample(grain.transforms.Map):
    """Example i: random tokens 1..V-1 and their sorted order as labels (a small puzzle that needs reasoning)."""

    def __init__(self, seed: int, seq_len: int, vocab: int, num_identifiers: int):
        self.seed, self.seq_len, self.vocab, self.num_identifiers = seed, seq_len, vocab, num_identifiers

    def map(self, index):
        rng = np.random.default_rng([self.seed, int(index)])
        inputs = rng.integers(1, self.vocab, self.seq_len).astype(np.int32)
        return {"inputs": inputs, "labels": np.sort(inputs).astype(np.int32),
                "puzzle_identifiers": np.int32(int(index) % self.num_identifiers)}


class HostRows(grain.transforms.Map):
    """This host's contiguous rows of a global batch (the original's per-rank slice), so a run on N hosts sees
    exactly the global batches of a single-host run."""

    def __init__(self, process_index: int, local_batch: int):
        self.start, self.stop = process_index * local_batch, (process_index + 1) * local_batch

    def map(self, batch):
        return {k: v[self.start:self.stop] for k, v in batch.items()}


def _synthetic(config: ml_collections.ConfigDict, split: str, process_index: int, process_count: int):
    d = config.data
    spec = DataSpec(vocab_size=d.synthetic_vocab + 1, seq_len=d.synthetic_seq_len,
                    num_puzzle_identifiers=d.synthetic_num_identifiers)
    local = _local_batch_size(d.global_batch_size, process_count)
    if split == "train":
        ds = grain.MapDataset.range(d.synthetic_size).seed(config.seed).shuffle().repeat()
    else:  # a disjoint index range, one pass in order
        ds = grain.MapDataset.range(d.synthetic_size, d.synthetic_size + max(d.global_batch_size, d.synthetic_size // 8))
    ds = ds.map(SortingExample(config.seed, d.synthetic_seq_len, d.synthetic_vocab + 1, d.synthetic_num_identifiers))
    ds = ds.to_iter_dataset().batch(d.global_batch_size, drop_remainder=True).map(HostRows(process_index, local))
    return ds, spec


def build(config: ml_collections.ConfigDict, split: str, process_index: int = 0, process_count: int = 1):
    """(grain IterDataset of this host's batches, DataSpec). split: 'train' (endless, shuffled) or 'test'."""
    if config.data.kind == "synthetic":
        return _synthetic(config, split, process_index, process_count)
    if config.data.kind == "puzzle":
        from input_pipeline import puzzle_pipeline  # noqa: PLC0415 (keeps grain workers free of it when unused)

        local = _local_batch_size(config.data.global_batch_size, process_count)
        ds, meta = puzzle_pipeline.build(config.data.path, split, local_batch_size=local, seed=config.seed,
                                         process_index=process_index, process_count=process_count,
                                         num_workers=config.data.num_workers)
        return ds, DataSpec(vocab_size=meta["vocab_size"], seq_len=meta["seq_len"],
                            num_puzzle_identifiers=meta["num_puzzle_identifiers"])
    raise ValueError(f"config.data.kind: unknown {config.data.kind!r}")
