"""Decontamination against the evaluation benchmarks by n-gram overlap.

The index holds every 13-gram of whitespace-separated tokens (text split on any run of whitespace, so
indentation and line breaks do not matter) of MBPP's 974 tasks (text, code, test_list, test_setup_code,
challenge_test_list) and HumanEval's 164 problems (prompt, canonical_solution, test). A corpus file sharing at
least one indexed 13-gram with a benchmark is contaminated. Two exclusions keep the rule from firing on
generic data: n-grams without a single letter (number lists such as `[0, 1, 2, 3], ...` or the primes in a
test) are not indexed, and a field shorter than 13 tokens contributes nothing (too short to be distinctive).

The code corpus (`load_code_benchmark_index`) adds every Aider Polyglot exercise (<data_dir>/polyglot: 225
exercises in six languages), each task "polyglot/<language>/<exercise>" indexed over all of its UTF-8 files
(instructions, stubs, tests, the .meta reference solution and config, the bundled Catch header) except its
LICENSE file (the MIT licence text, which would mark every MIT-licensed file) and binary files (gradle-wrapper.jar).
An n-gram found in more than `POLYGLOT_MAX_TASKS_PER_NGRAM` (5) tasks is not indexed: it is the benchmark's
boilerplate, not an exercise (Go's `for i := 0; i < b.N; i++ { for _, test := range` benchmark loop, in many Go
exercises, would otherwise remove most Go test files with a benchmark; the Catch header bundled with every C++
exercise likewise). Rarer idioms still match: the index errs on the side of removing a file.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
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
                          n: int = DEFAULT_NGRAM, max_tasks_per_ngram: int = 0) -> BenchmarkIndex:
    """Index of (task name, its texts) pairs; with `max_tasks_per_ngram`, an n-gram found in more tasks than that
    is boilerplate of the benchmark (a test-harness idiom, a bundled header) and is not indexed."""
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
    keep = first
    if max_tasks_per_ngram and len(hashes):
        new_pair = first | np.concatenate([[True], owners[1:] != owners[:-1]])
        group = np.cumsum(first) - 1
        tasks_per_hash = np.bincount(group, weights=new_pair)
        keep = first & (tasks_per_hash[group] <= max_tasks_per_ngram)
    return BenchmarkIndex(n, hashes[keep], owners[keep], tuple(tasks))


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


POLYGLOT_DIR = "polyglot"
POLYGLOT_MAX_TASKS_PER_NGRAM = 5
_POLYGLOT_SKIPPED_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md")


def polyglot_exercise_dirs(polyglot_root: str | os.PathLike) -> list[tuple[str, pathlib.Path]]:
    """("polyglot/<language>/<exercise>", folder) of every exercise under <root>/<language>/exercises/practice."""
    root = pathlib.Path(polyglot_root)
    if not root.is_dir():
        raise FileNotFoundError(f"polyglot benchmark folder not found: {root} (expected <data_dir>/polyglot)")
    out = []
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        practice = lang_dir / "exercises" / "practice"
        if practice.is_dir():
            out += [(f"polyglot/{lang_dir.name}/{d.name}", d) for d in sorted(practice.iterdir()) if d.is_dir()]
    if not out:
        raise FileNotFoundError(f"{root}: no <language>/exercises/practice/<exercise> folders")
    return out


def exercise_texts(folder: pathlib.Path) -> list[str]:
    """The UTF-8 text of every file of one exercise, hidden folders (.meta, .docs) included, LICENSE excluded."""
    texts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in _POLYGLOT_SKIPPED_NAMES:
            continue
        try:
            texts.append(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:  # binary (gradle-wrapper.jar)
            continue
    return texts


def polyglot_task_texts(polyglot_root: str | os.PathLike) -> Iterable[tuple[str, list[str]]]:
    for task, folder in polyglot_exercise_dirs(polyglot_root):
        yield task, exercise_texts(folder)


def load_code_benchmark_index(data_dir: str | os.PathLike | None = None,
                              n: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """The index over MBPP, HumanEval and every Aider Polyglot exercise (<data_dir>/polyglot)."""
    mbpp_file = mbpp_path("full", data_dir)
    mbpp = read_mbpp_file(mbpp_file, "full")
    humaneval = load_humaneval()
    polyglot = mbpp_file.parent.parent / POLYGLOT_DIR
    return build_benchmark_index(list(mbpp_task_texts(mbpp)) + list(humaneval_task_texts(humaneval))
                                 + list(polyglot_task_texts(polyglot)), n,
                                 max_tasks_per_ngram=POLYGLOT_MAX_TASKS_PER_NGRAM)
