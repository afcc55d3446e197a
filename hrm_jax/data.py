"""The trainer's view of data: grain iterators of numpy batches (this host's rows) plus the dataset metadata.

Iterators are grain `DatasetIterator`s, so their position is checkpointed with the model (`checkpoint.py`).
Kinds:
  * `puzzle`: the original HRM on-disk format (`input_pipeline.puzzle_pipeline`);
  * `python_corpus` / `mbpp`: packed code batches (`input_pipeline.lm_pipeline`) tokenized by the run's tokenizer;
  * `code_corpus`: the six-language corpus (`input_pipeline.code_corpus`), languages mixed by `data.language_weights`;
  * `synthetic`: a sorting task generated from the example index (no files; tests and smoke runs).
Code kinds prepare what is missing in a single-process run: the tokenizer (`<workdir>/tokenizer/code.model`,
trained on the interpreter's standard library) and the corpus (`<workdir>/python_corpus`); for `code_corpus` the
corpus (`<workdir>/code_corpus`, capped by `data.corpus_max_*`) first, then the tokenizer trained on it. Multi-host
runs must be given both (`data.tokenizer`, `data.path`), built beforehand with the input_pipeline CLIs.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
import sysconfig

import grain
import ml_collections
import numpy as np
from absl import logging


@dataclasses.dataclass(frozen=True)
class DataSpec:
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int = 1
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tokenizer_fingerprint: str = ""

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


def tokenizer_path(config: ml_collections.ConfigDict, workdir: str) -> str:
    return config.data.tokenizer or os.path.join(workdir, "tokenizer", "code.model")


def ensure_tokenizer(config: ml_collections.ConfigDict, workdir: str, process_count: int, prepare: bool = True):
    """The run's tokenizer; trained on the standard library into the workdir when none is given or built yet
    (and `prepare`)."""
    from input_pipeline import tokenizer as tok_lib  # noqa: PLC0415
    from input_pipeline.tokenizer_training import train_sentencepiece  # noqa: PLC0415
    from input_pipeline.train_tokenizer import ReadProgress, read_documents  # noqa: PLC0415

    path = tokenizer_path(config, workdir)
    if not os.path.exists(path):
        if config.data.tokenizer or process_count > 1 or not prepare:
            raise FileNotFoundError(f"config.data.tokenizer: {path} does not exist; build one with "
                                    "`python -m input_pipeline.train_tokenizer` (multi-host runs need it beforehand)")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        files = sorted(str(p) for p in pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
        if config.data.tokenizer_sample_files:
            files = files[:: max(1, len(files) // config.data.tokenizer_sample_files)][: config.data.tokenizer_sample_files]
        logging.info("training a %d-token tokenizer on %d stdlib files -> %s", config.data.tokenizer_vocab_size,
                     len(files), path)
        documents = read_documents(files, ReadProgress(len(files), sys.stderr))
        tokenizer = train_sentencepiece(documents, config.data.tokenizer_vocab_size, seed=0, model_type="bpe",
                                        split_by_whitespace=False, split_by_unicode_script=False,
                                        input_sentence_size=250_000, num_threads=os.cpu_count() or 1, log_level=0)
        tokenizer.save(path)
        logging.info("wrote %s: vocab %d, sha256 %s", path, tokenizer.vocab_size, tokenizer.fingerprint())
    return tok_lib.load_tokenizer(path)


def ensure_corpus(config: ml_collections.ConfigDict, workdir: str, tokenizer, process_count: int,
                  prepare: bool = True) -> str:
    """The embedded Python corpus folder; built into the workdir when `data.path` is empty, none is there, and
    `prepare`."""
    from input_pipeline import corpus_sources, python_corpus  # noqa: PLC0415
    from input_pipeline import tokenizer as tok_lib  # noqa: PLC0415
    from input_pipeline.decontamination import load_benchmark_index  # noqa: PLC0415

    path = config.data.path or os.path.join(workdir, "python_corpus")
    if os.path.exists(os.path.join(path, "manifest.json")):
        return path
    if config.data.path or process_count > 1 or not prepare:
        raise FileNotFoundError(f"config.data.path: no corpus at {path}; build it with "
                                "`python -m input_pipeline.build_corpus --out DIR`")
    if config.data.corpus_stdlib_subdirs:  # a small corpus from a few standard-library packages
        stdlib = sysconfig.get_paths()["stdlib"]
        roots = [corpus_sources.CorpusRoot(pathlib.Path(stdlib, sub), stdlib=True)
                 for sub in config.data.corpus_stdlib_subdirs]
    else:
        roots = corpus_sources.default_roots()
    logging.info("building the Python corpus from %s -> %s", ", ".join(str(r.path) for r in roots), path)
    settings = python_corpus.CorpusSettings(validation_fraction=config.data.corpus_validation_fraction)
    manifest = python_corpus.build_corpus(
        roots, path, benchmark_index=load_benchmark_index(config.data.data_dir or None), settings=settings,
        tokenizer=tok_lib.load_tokenizer(tokenizer_path(config, workdir)), workers=os.cpu_count() or 1)
    logging.info("%s", python_corpus.format_stats(manifest))
    return path


def ensure_codemods(config: ml_collections.ConfigDict, workdir: str, process_count: int = 1,
                    prepare: bool = True) -> str:
    """The codemod dataset folder: `data.edits_path`, or <workdir>/codemods built from the standard library
    (`data.edits_stdlib_subdirs`) when missing and `prepare`."""
    from input_pipeline import build_codemods  # noqa: PLC0415
    from input_pipeline.codemods.records import METADATA  # noqa: PLC0415

    path = config.data.edits_path or os.path.join(workdir, "codemods")
    if os.path.exists(os.path.join(path, METADATA)):
        return path
    if config.data.edits_path or process_count > 1 or not prepare:
        raise FileNotFoundError(f"config.data.edits_path: no codemod dataset at {path}; build it with "
                                "`python -m input_pipeline.build_codemods --out DIR`")
    logging.info("building the codemod dataset -> %s", path)
    meta = build_codemods.build(path, tuple(config.data.edits_stdlib_subdirs))
    logging.info("codemods: %s", meta["stats"]["per_split"])
    return path


def ensure_code_corpus(config: ml_collections.ConfigDict, workdir: str, process_count: int,
                       prepare: bool = True) -> str:
    """The six-language corpus folder and, when `data.tokenizer` is empty, its tokenizer
    (<workdir>/tokenizer/code.model, trained on the corpus); built when missing and `prepare`."""
    from input_pipeline import code_corpus  # noqa: PLC0415
    from input_pipeline.decontamination import load_code_benchmark_index  # noqa: PLC0415

    d = config.data
    path = d.path or os.path.join(workdir, "code_corpus")
    tok_path = tokenizer_path(config, workdir)
    have_corpus = os.path.exists(os.path.join(path, code_corpus.CODE_MANIFEST))
    if have_corpus and os.path.exists(tok_path):
        return path
    if (not have_corpus and d.path) or process_count > 1 or not prepare:
        raise FileNotFoundError(f"config.data.path: no code corpus (or tokenizer {tok_path}) at {path}; build them "
                                "with `python -m input_pipeline.build_code_corpus --out DIR`")
    if not have_corpus:
        languages = tuple(lang for lang, w in d.language_weights.items() if w > 0)
        settings = code_corpus.CodeCorpusSettings(
            languages=languages, max_files_per_language=d.corpus_max_files_per_language,
            max_bytes_per_language=d.corpus_max_bytes_per_language, max_file_bytes=d.corpus_max_file_bytes,
            validation_fraction=d.corpus_validation_fraction, python_stdlib_subdirs=tuple(d.corpus_stdlib_subdirs))
        logging.info("building the code corpus (%s) -> %s", ", ".join(languages), path)
        code_corpus.build_code_corpus(path, benchmark_index=load_code_benchmark_index(d.data_dir or None),
                                      settings=settings, workers=os.cpu_count() or 1, overwrite=True,
                                      log=logging.info)
    if not os.path.exists(tok_path):
        if d.tokenizer:
            raise FileNotFoundError(f"config.data.tokenizer: {tok_path} does not exist")
        logging.info("training a %d-token tokenizer on the code corpus -> %s", d.tokenizer_vocab_size, tok_path)
        tokenizer = code_corpus.train_code_tokenizer(path, d.tokenizer_vocab_size, d.tokenizer_sample_files,
                                                     num_threads=os.cpu_count() or 1)
        os.makedirs(os.path.dirname(tok_path), exist_ok=True)
        tokenizer.save(tok_path)
        manifest = code_corpus.count_tokens(path, tokenizer)
        logging.info("code corpus:\n%s", code_corpus.format_stats_table(manifest))
    return path


def _code(config: ml_collections.ConfigDict, split: str, process_index: int, process_count: int, workdir: str,
          prepare: bool = True, tokenizer=None):
    from input_pipeline import lm_pipeline  # noqa: PLC0415

    d = config.data
    code_dir = ensure_code_corpus(config, workdir, process_count, prepare) if d.kind == "code_corpus" else None
    tokenizer = tokenizer or ensure_tokenizer(config, workdir, process_count, prepare)
    local = _local_batch_size(d.global_batch_size, process_count)
    common = dict(seq_len=d.seq_len, batch_size=local, seed=config.seed, training=split == "train",
                  process_index=process_index, process_count=process_count, packing=d.packing,
                  num_workers=d.num_workers)
    if d.kind == "code_corpus":
        ds = lm_pipeline.code_mixture_batches(code_dir, tokenizer, d.language_weights.to_dict(), **common)
    elif d.kind == "python_corpus":
        ds = lm_pipeline.corpus_batches(ensure_corpus(config, workdir, tokenizer, process_count, prepare), tokenizer,
                                        **common)
    elif d.kind in ("edit_sft", "edit_actions"):
        from input_pipeline.codemods.records import read_split  # noqa: PLC0415

        records = read_split(ensure_codemods(config, workdir, process_count, prepare),
                             "train" if split == "train" else "validation")
        ds = lm_pipeline.edit_batches(records, tokenizer, d.kind, **common)
    else:
        ds = lm_pipeline.mbpp_batches(tokenizer, data_dir=d.data_dir or None, **common)
    spec = DataSpec(vocab_size=tokenizer.vocab_size, seq_len=d.seq_len, pad_token_id=tokenizer.pad_id,
                    bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                    tokenizer_fingerprint=tokenizer.fingerprint())
    return ds, spec


def ensure_puzzles(config: ml_collections.ConfigDict, workdir: str, process_count: int, prepare: bool = True) -> str:
    """The puzzle dataset folder: `data.path`, or one generated into the workdir (`data.generate`, when
    `prepare`)."""
    d = config.data
    if not d.generate:
        return d.path
    path = d.path or os.path.join(workdir, f"{d.generate}_data")
    if os.path.exists(os.path.join(path, "test", "dataset.json")):
        return path
    if process_count > 1 or not prepare:
        raise FileNotFoundError(f"config.data.path: no dataset at {path}; generate it beforehand with "
                                f"`python -m input_pipeline.puzzles.{d.generate} --out {path}`")
    if d.generate not in ("sudoku", "maze"):
        raise ValueError(f"config.data.generate: {d.generate!r} is not '', 'sudoku' or 'maze'")
    logging.info("generating the %s dataset into %s", d.generate, path)
    workers = 2  # as the generator CLIs
    if d.generate == "sudoku":
        from input_pipeline.puzzles import sudoku_dataset  # noqa: PLC0415
        train, test = sudoku_dataset.generate_train_test(d.generate_num_train, d.generate_num_test,
                                                         d.generate_min_rating, config.seed, workers,
                                                         per_grid=d.generate_per_grid,
                                                         num_blanks=d.generate_num_blanks)
        sudoku_dataset.write_sudoku_dataset(path, train, test, d.generate_num_aug, config.seed)
    else:
        from input_pipeline.puzzles import maze_dataset  # noqa: PLC0415
        train, test = maze_dataset.generate_train_test(d.generate_num_train, d.generate_num_test, config.seed,
                                                       d.generate_maze_size, d.generate_min_path_length, workers)
        maze_dataset.write_maze_dataset(path, train, test, d.generate_maze_size, False)
    return path


def _puzzle(config: ml_collections.ConfigDict, split: str, process_index: int, process_count: int, workdir: str,
            prepare: bool = True):
    from input_pipeline import puzzle_pipeline  # noqa: PLC0415
    from input_pipeline.puzzles import hrm_format  # noqa: PLC0415

    root = ensure_puzzles(config, workdir, process_count, prepare)
    common = dict(global_batch_size=config.data.global_batch_size, process_index=process_index,
                  process_count=process_count)
    if split == "train":
        ds = puzzle_pipeline.puzzle_train_batches(root, seed=config.seed, **common)
    else:
        ds = puzzle_pipeline.puzzle_eval_batches(root, **common)
    meta = hrm_format.read_metadata(root, "train")
    return ds, DataSpec(vocab_size=meta.vocab_size, seq_len=meta.seq_len,
                        num_puzzle_identifiers=meta.num_puzzle_identifiers)


def build(config: ml_collections.ConfigDict, split: str, process_index: int = 0, process_count: int = 1,
          workdir: str = "", *, prepare: bool = True, tokenizer=None):
    """(grain IterDataset of this host's batches, DataSpec). split: 'train' (endless, shuffled) or 'test'.
    `prepare=False` (inference) never builds a tokenizer, corpus or puzzle set: a missing one is a
    FileNotFoundError naming it. `tokenizer` (code kinds) replaces loading the run's tokenizer."""
    kind = config.data.kind
    if kind == "synthetic":
        return _synthetic(config, split, process_index, process_count)
    if kind == "puzzle":
        return _puzzle(config, split, process_index, process_count, workdir, prepare)
    if kind in ("python_corpus", "code_corpus", "mbpp", "edit_sft", "edit_actions"):
        return _code(config, split, process_index, process_count, workdir, prepare, tokenizer)
    raise ValueError(f"config.data.kind: unknown {kind!r}")
