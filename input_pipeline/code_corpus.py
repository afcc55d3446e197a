"""The embedded six-language code corpus: one corpus folder per language, its statistics table, and the tokenizer
shared by all six languages.

Layout of a code corpus folder:
    <dir>/<language>/        a corpus in the `corpus_records` format (shards, manifest.json, removed.jsonl), built by
                             `python_corpus.build_corpus` from that language's files (`code_sources`) with the
                             licence allow-list and the minified-line rule on, and decontaminated against MBPP,
                             HumanEval and every Aider Polyglot exercise (`decontamination.load_code_benchmark_index`)
    <dir>/code_manifest.json the languages built, per-language statistics, settings, build time, tokenizer
    <dir>/stats.md           the statistics table (files, bytes, tokens per language; files removed per rule)

The tokenizer (`train_code_tokenizer`) is one whitespace-exact SentencePiece model trained on an equal number of
train files of every language, with the language tags ("<lang:go>", ...) as special tokens; `round_trip_failures`
checks `decode(encode(text)) == text` on any set of texts.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
from typing import Callable, Iterable, Sequence

from input_pipeline.code_languages import LANGUAGE_TAGS, LANGUAGES, parse_languages
from input_pipeline.code_sources import SourceCaps, language_files
from input_pipeline.corpus_records import CorpusDataSource, read_manifest, write_manifest
from input_pipeline.corpus_sources import CorpusRoot
from input_pipeline.decontamination import BenchmarkIndex
from input_pipeline.near_duplicates import NearDupSettings
from input_pipeline.python_corpus import RULES, CorpusSettings, build_corpus
from input_pipeline.source_licenses import DEFAULT_ALLOWED_LICENSES
from input_pipeline.tokenizer import SentencePieceTokenizer, Tokenizer
from input_pipeline.tokenizer_training import train_sentencepiece

CODE_MANIFEST = "code_manifest.json"
STATS_FILE = "stats.md"
CODE_FORMAT = "hrm-jax code corpus"
CODE_FORMAT_VERSION = 1
ProgressFn = Callable[[str, int, int], None]
# Below this many files a language is scanned in-process: starting a spawn pool costs more than it saves.
_MIN_FILES_FOR_WORKERS = 500


@dataclasses.dataclass(frozen=True)
class CodeCorpusSettings:
    """What a code-corpus build takes. The caps keep it at CPU scale (see configs/pretrain_code.py)."""
    languages: tuple[str, ...] = LANGUAGES
    max_files_per_language: int = 1500  # 0 = no cap
    max_bytes_per_language: int = 12 << 20  # 0 = no cap
    max_file_bytes: int = 500_000
    max_line_chars: int = 1000  # longer lines: minified or generated (The Stack's rule)
    validation_fraction: float = 0.01
    allowed_licenses: tuple[str, ...] = DEFAULT_ALLOWED_LICENSES
    near_dup_threshold: float = NearDupSettings.threshold
    python_stdlib_subdirs: tuple[str, ...] = ()  # () = the whole standard library
    shard_bytes: int = 64 << 20

    def __post_init__(self):
        object.__setattr__(self, "languages", parse_languages(self.languages))
        if self.max_files_per_language < 0 or self.max_bytes_per_language < 0:
            raise ValueError("max_files_per_language and max_bytes_per_language must be >= 0 (0 = no cap)")

    def corpus_settings(self) -> CorpusSettings:
        return CorpusSettings(max_file_bytes=self.max_file_bytes, validation_fraction=self.validation_fraction,
                              shard_bytes=self.shard_bytes, near_dup=NearDupSettings(threshold=self.near_dup_threshold),
                              allowed_licenses=tuple(self.allowed_licenses), max_line_chars=self.max_line_chars)


def build_code_corpus(out_dir: str | os.PathLike, *, benchmark_index: BenchmarkIndex,
                      settings: CodeCorpusSettings = CodeCorpusSettings(), sources_dir: str | os.PathLike | None = None,
                      workers: int = 1, overwrite: bool = False, progress: ProgressFn | None = None,
                      log: Callable[[str], None] = lambda line: None) -> dict:
    """Builds every language of `settings` into `out_dir`; returns (and writes) the code manifest. A language
    without sources on this machine, or all of whose files are removed, is recorded with 0 files."""
    out = pathlib.Path(out_dir)
    _prepare(out, settings.languages, overwrite)
    start = time.monotonic()
    caps = SourceCaps(settings.max_files_per_language, settings.max_bytes_per_language)
    languages = {}
    for language in settings.languages:
        t0 = time.monotonic()
        files = language_files(language, caps, sources_dir, python_stdlib_subdirs=settings.python_stdlib_subdirs)
        entry = {"dir": language, "files_found": len(files), "files_kept": 0, "bytes_kept": 0, "tokens_kept": None,
                 "removed": {rule: 0 for rule in RULES}, "licenses": {}, "packages": 0}
        if not files:
            entry["note"] = "no sources on this machine (run scripts/install_corpus_sources.sh)"
            log(f"{language}: {entry['note']}")
        else:
            try:
                manifest = build_corpus([CorpusRoot(pathlib.Path("/"))], out / language,
                                        benchmark_index=benchmark_index, settings=settings.corpus_settings(),
                                        workers=workers if len(files) >= _MIN_FILES_FOR_WORKERS else 1,
                                        overwrite=True, files=files,
                                        extra_manifest={"language": language},
                                        progress=_prefixed(progress, language))
                s = manifest["stats"]
                entry.update(files_kept=s["files_kept"], bytes_kept=s["bytes_kept"], removed=s["removed"],
                             licenses=s["licenses"], packages=len(s["packages"]))
            except ValueError as e:  # every file removed
                entry["note"] = str(e)
                shutil.rmtree(out / language, ignore_errors=True)
        entry["build_seconds"] = round(time.monotonic() - t0, 1)
        languages[language] = entry
    manifest = {"format": CODE_FORMAT, "version": CODE_FORMAT_VERSION, "languages": languages,
                "settings": dataclasses.asdict(settings), "build_seconds": round(time.monotonic() - start, 1),
                "decontamination": {"ngram": benchmark_index.n, "benchmark_tasks": len(benchmark_index.tasks)},
                "tokenizer": None}
    write_code_manifest(out, manifest)
    return manifest


def read_code_manifest(corpus_dir: str | os.PathLike) -> dict:
    path = pathlib.Path(corpus_dir) / CODE_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no code corpus manifest (build one with "
                                "python -m input_pipeline.build_code_corpus --out DIR)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != CODE_FORMAT or manifest.get("version") != CODE_FORMAT_VERSION:
        raise ValueError(f"{path}: not a {CODE_FORMAT!r} manifest of version {CODE_FORMAT_VERSION}")
    return manifest


def write_code_manifest(corpus_dir: str | os.PathLike, manifest: dict) -> None:
    out = pathlib.Path(corpus_dir)
    tmp = out / (CODE_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out / CODE_MANIFEST)
    (out / STATS_FILE).write_text(format_stats_table(manifest) + "\n", encoding="utf-8")


def built_languages(corpus_dir: str | os.PathLike) -> list[str]:
    """The languages of a code corpus that hold files."""
    return [lang for lang, e in read_code_manifest(corpus_dir)["languages"].items() if e["files_kept"]]


def language_source(corpus_dir: str | os.PathLike, language: str, split: str) -> CorpusDataSource:
    manifest = read_code_manifest(corpus_dir)
    entry = manifest["languages"].get(language)
    if entry is None or not entry["files_kept"]:
        have = [lang for lang, e in manifest["languages"].items() if e["files_kept"]]
        raise ValueError(f"{corpus_dir}: the code corpus has no {language!r} files (it has {have}); set its weight "
                         "to 0 or rebuild with its sources installed (scripts/install_corpus_sources.sh)")
    return CorpusDataSource(pathlib.Path(corpus_dir) / entry["dir"], split)


def format_stats_table(manifest: dict) -> str:
    """The per-language table: files kept, MB, tokens, and the files removed by the main rules."""
    shown = ("unlicensed", "minified", "contaminated", "exact_duplicate", "near_duplicate")
    head = (f"| language   | files found | files kept |     MB |     tokens | "
            + " | ".join(shown) + " | other | build s |")
    lines = [head, "|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|"]
    totals = {"files_found": 0, "files_kept": 0, "bytes_kept": 0, "tokens_kept": 0}
    for lang, e in manifest["languages"].items():
        other = sum(v for k, v in e["removed"].items() if k not in shown)
        tokens = "-" if e.get("tokens_kept") is None else f"{e['tokens_kept']:,}"
        lines.append(f"| {lang:<10} | {e['files_found']:>11,} | {e['files_kept']:>10,} | "
                     f"{e['bytes_kept'] / 1e6:>6.1f} | {tokens:>10} | "
                     + " | ".join(f"{e['removed'][k]:>{len(k)},}" for k in shown)
                     + f" | {other:>5,} | {e.get('build_seconds', 0):>7.1f} |")
        for k in totals:
            totals[k] += e.get(k) or 0
    tokens = f"{totals['tokens_kept']:,}" if manifest.get("tokenizer") else "-"
    lines.append(f"| {'total':<10} | {totals['files_found']:>11,} | {totals['files_kept']:>10,} | "
                 f"{totals['bytes_kept'] / 1e6:>6.1f} | {tokens:>10} | "
                 + " | ".join(" " * len(k) for k in shown) + f" |       | {manifest['build_seconds']:>7.1f} |")
    return "\n".join(lines)


def sample_documents(corpus_dir: str | os.PathLike, files_per_language: int, split: str = "train"
                     ) -> Iterable[tuple[str, dict]]:
    """(language, record) of up to `files_per_language` records per language, evenly spaced (0 = all)."""
    for language in built_languages(corpus_dir):
        source = language_source(corpus_dir, language, split)
        n = len(source)
        if n == 0:
            continue
        count = n if files_per_language <= 0 else min(n, files_per_language)
        for k in range(count):
            yield language, source[k * n // count]


def train_code_tokenizer(corpus_dir: str | os.PathLike, vocab_size: int, files_per_language: int, *,
                         seed: int = 0, num_threads: int = 2) -> SentencePieceTokenizer:
    """The six-language tokenizer: trained on an even sample of every language's train files, with the language
    tags as special tokens."""
    docs = (record["text"] for _, record in sample_documents(corpus_dir, files_per_language))
    return train_sentencepiece(docs, vocab_size, seed=seed, model_type="bpe", extra_symbols=LANGUAGE_TAGS,
                               input_sentence_size=250_000, num_threads=num_threads, log_level=1)


def count_tokens(corpus_dir: str | os.PathLike, tokenizer: Tokenizer,
                 progress: ProgressFn | None = None) -> dict:
    """Counts the tokens of every split of every language, records them (and the tokenizer's fingerprint) in the
    language manifests and the code manifest, rewrites stats.md; returns the code manifest."""
    out = pathlib.Path(corpus_dir)
    code = read_code_manifest(out)
    for language in built_languages(out):
        entry = code["languages"][language]
        manifest = read_manifest(out / entry["dir"])
        total = 0
        for split in manifest["splits"]:
            source = CorpusDataSource(out / entry["dir"], split)
            n = 0
            for i in range(len(source)):
                n += len(tokenizer.encode(source[i]["text"]))
                if progress and (i % 200 == 0 or i == len(source) - 1):
                    progress(f"{language}: tokens ({split})", i + 1, len(source))
            manifest["splits"][split]["tokens"] = n
            total += n
        manifest["stats"]["tokens_kept"] = total
        manifest["tokenizer"] = {"fingerprint": tokenizer.fingerprint(), "vocab_size": tokenizer.vocab_size}
        write_manifest(out / entry["dir"], manifest)
        entry["tokens_kept"] = total
    code["tokenizer"] = {"fingerprint": tokenizer.fingerprint(), "vocab_size": tokenizer.vocab_size}
    write_code_manifest(out, code)
    return code


def round_trip_failures(tokenizer: Tokenizer, named_texts: Iterable[tuple[str, str]]) -> tuple[int, list[str]]:
    """(texts checked, names of those with decode(encode(text)) != text)."""
    checked, failures = 0, []
    for name, text in named_texts:
        checked += 1
        if tokenizer.decode(tokenizer.encode(text)) != text:
            failures.append(name)
    return checked, failures


def polyglot_files(polyglot_root: str | os.PathLike) -> Iterable[tuple[str, str]]:
    """(path, text) of every UTF-8 file of every polyglot exercise (binary files skipped)."""
    root = pathlib.Path(polyglot_root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            yield path.relative_to(root).as_posix(), path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue


def _prefixed(progress: ProgressFn | None, prefix: str) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{prefix}: {stage}", done, total)


def _prepare(out: pathlib.Path, languages: Sequence[str], overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if (out / CODE_MANIFEST).exists() and not overwrite:
        raise FileExistsError(f"{out}: already holds a code corpus; pass overwrite=True (--overwrite) to replace it")
    allowed = set(LANGUAGES) | {CODE_MANIFEST, STATS_FILE, "tokenizer.model"}
    others = [p.name for p in out.iterdir() if p.name not in allowed]
    if others:
        raise FileExistsError(f"{out}: output folder holds files that are not a code corpus ({others[0]}, ...)")
    for name in (CODE_MANIFEST, STATS_FILE):
        if (out / name).exists():
            (out / name).unlink()
    for language in LANGUAGES:
        if (out / language).is_dir():
            shutil.rmtree(out / language)
