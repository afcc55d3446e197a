"""Decontamination against the evaluation benchmarks by n-gram overlap.

The index holds every 13-gram of whitespace-separated tokens (text split on any run of whitespace, so
indentation and line breaks do not matter) of MBPP's 974 tasks (text, code, test_list, test_setup_code,
challenge_test_list) and HumanEval's 164 problems (prompt, canonical_solution, test). A corpus file sharing at
least one indexed 13-gram with a benchmark is contaminated. Two exclusions keep the rule from firing on
generic data: n-grams without a single letter (number lists such as `[0, 1, 2, 3], ...` or the primes in a
test) are not indexed, and a field shorter than 13 tokens contributes nothing (too short to be distinctive).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Sequence

import numpy as np

from input_pipeline.code_ngrams import ngram_hashes, token_hashes
from input_pipeline.humaneval import load_humaneval
from input_pipeline.mbpp_data import mbpp_path, read_mbpp_file

DEFAULT_NGRAM = 13
_MBPP_FIELDS = ("text", "code", "test_list", "test_setup_code", "challenge_test_list")
_HUMANEVAL_FIELDS = ("prompt", "canonical_solution", "test")


@dataclasses.dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted n-gram hashes of the benchmarks and, for each, the task it first came from."""
    n: int
    hashes: np.ndarray      # uint64, sorted, unique
    owner_ids: np.ndarray   # int32 index into `tasks`, aligned with `hashes`
    tasks: tuple[str, ...]  # e.g. "mbpp/601", "HumanEval/0"

    def matching_tasks(self, text: str) -> list[str]:
        """Benchmark tasks sharing at least one indexed n-gram with `text`, sorted."""
        grams = text_ngrams(text, self.n)
        if len(grams) == 0 or len(self.hashes) == 0:
            return []
        pos = np.searchsorted(self.hashes, grams)
        pos[pos == len(self.hashes)] = 0
        hit = self.hashes[pos] == grams
        return sorted({self.tasks[i] for i in self.owner_ids[pos[hit]].tolist()})


def text_ngrams(text: str, n: int, *, require_letter: bool = False) -> np.ndarray:
    """uint64 hashes of the n-grams of whitespace-separated tokens of `text`; with `require_letter`, only
    n-grams with at least one letter among their tokens."""
    tokens = text.split()
    grams = ngram_hashes(token_hashes(tokens), n)
    if require_letter and len(grams):
        has_letter = np.fromiter((any(c.isalpha() for c in t) for t in tokens), bool, count=len(tokens))
        # windows with at least one lettered token: prefix sums over the window
        counts = np.concatenate([[0], np.cumsum(has_letter)])
        grams = grams[(counts[n:] - counts[:-n]) > 0]
    return grams


def build_benchmark_index(task_texts: Iterable[tuple[str, Sequence[str]]],
                          n: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """Index of (task name, its texts) pairs."""
    tasks: list[str] = []
    all_hashes, all_owners = [], []
    for task, texts in task_texts:
        owner = len(tasks)
        tasks.append(task)
        for text in texts:
            grams = text_ngrams(text, n, require_letter=True)
            all_hashes.append(grams)
            all_owners.append(np.full(len(grams), owner, np.int32))
    hashes = np.concatenate(all_hashes) if all_hashes else np.zeros(0, np.uint64)
    owners = np.concatenate(all_owners) if all_owners else np.zeros(0, np.int32)
    # first occurrence of each hash, in task order
    order = np.lexsort((owners, hashes))
    hashes, owners = hashes[order], owners[order]
    first = np.concatenate([[True], hashes[1:] != hashes[:-1]]) if len(hashes) else np.zeros(0, bool)
    return BenchmarkIndex(n, hashes[first], owners[first], tuple(tasks))


def mbpp_task_texts(records: Iterable[dict]) -> Iterable[tuple[str, list[str]]]:
    """(\"mbpp/<task_id>\", texts) of MBPP records; list fields are joined with newlines."""
    for r in records:
        texts = [r[f] if isinstance(r[f], str) else "\n".join(r[f]) for f in _MBPP_FIELDS]
        yield f"mbpp/{r['task_id']}", texts


def humaneval_task_texts(problems: Iterable[dict]) -> Iterable[tuple[str, list[str]]]:
    """(task_id, texts) of HumanEval problems."""
    for p in problems:
        yield p["task_id"], [p[f] for f in _HUMANEVAL_FIELDS]


def load_benchmark_index(data_dir: str | os.PathLike | None = None,
                         n: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """The index over all 974 MBPP tasks (from the data dir) and the 164 bundled HumanEval problems."""
    mbpp = read_mbpp_file(mbpp_path("full", data_dir), "full")
    humaneval = load_humaneval()
    return build_benchmark_index(list(mbpp_task_texts(mbpp)) + list(humaneval_task_texts(humaneval)), n)
