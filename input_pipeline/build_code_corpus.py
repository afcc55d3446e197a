"""Builds the embedded six-language code corpus and its tokenizer:
`python -m input_pipeline.build_code_corpus --out DIR [--languages go,rust] [--vocab_size 16384]`.

Sources: what scripts/install_corpus_sources.sh installs (see `input_pipeline.code_sources`). Writes DIR/<language>/
(corpus shards), DIR/code_manifest.json, DIR/stats.md and, unless --tokenizer names an existing model,
DIR/tokenizer.model trained on --tokenizer_files_per_language files of every language. Then counts tokens, checks
the tokenizer's round trip on the sampled files and on every polyglot file, and prints the statistics table.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Sequence, TextIO

from input_pipeline.build_corpus import StageProgress
from input_pipeline.code_corpus import (CodeCorpusSettings, build_code_corpus, count_tokens, format_stats_table,
                                        polyglot_files, round_trip_failures, sample_documents, train_code_tokenizer)
from input_pipeline.code_languages import LANGUAGES
from input_pipeline.decontamination import POLYGLOT_DIR, load_code_benchmark_index
from input_pipeline.mbpp_data import resolve_data_dir
from input_pipeline.tokenizer import SentencePieceTokenizer

_DEFAULTS = CodeCorpusSettings()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.build_code_corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--languages", default=",".join(LANGUAGES))
    p.add_argument("--max_files_per_language", type=int, default=_DEFAULTS.max_files_per_language)
    p.add_argument("--max_mb_per_language", type=float, default=_DEFAULTS.max_bytes_per_language / 2**20)
    p.add_argument("--max_file_bytes", type=int, default=_DEFAULTS.max_file_bytes)
    p.add_argument("--max_line_chars", type=int, default=_DEFAULTS.max_line_chars)
    p.add_argument("--validation_fraction", type=float, default=_DEFAULTS.validation_fraction)
    p.add_argument("--python_stdlib_subdirs", nargs="*", default=[])
    p.add_argument("--sources_dir", default=None, help="default $HRM_JAX_CORPUS_SOURCES or ~/.cache/hrm-jax/...")
    p.add_argument("--data_dir", default=None, help="folder holding mbpp/ and polyglot/ (default $HRM_JAX_DATA_DIR)")
    p.add_argument("--tokenizer", default=None, help="an existing .model to count tokens with (no training)")
    p.add_argument("--vocab_size", type=int, default=16384)
    p.add_argument("--tokenizer_files_per_language", type=int, default=300)
    p.add_argument("--polyglot_round_trip", action=argparse.BooleanOptionalAction, default=True,
                   help="check the tokenizer's round trip on every polyglot file (~2,300 files, 34 MB)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> dict:
    args = parse_args(argv)
    stream = stream or sys.stderr
    try:
        settings = CodeCorpusSettings(
            languages=args.languages, max_files_per_language=args.max_files_per_language,
            max_bytes_per_language=int(args.max_mb_per_language * 2**20), max_file_bytes=args.max_file_bytes,
            max_line_chars=args.max_line_chars, validation_fraction=args.validation_fraction,
            python_stdlib_subdirs=tuple(args.python_stdlib_subdirs))
        start = time.monotonic()
        index = load_code_benchmark_index(args.data_dir)
        progress = StageProgress(stream)
        build_code_corpus(args.out, benchmark_index=index, settings=settings, sources_dir=args.sources_dir,
                          workers=args.workers, overwrite=args.overwrite, progress=progress,
                          log=lambda line: stream.write(line + "\n"))
        progress.finish()
        built = time.monotonic() - start
        if args.tokenizer:
            tokenizer = SentencePieceTokenizer.load(args.tokenizer)
        else:
            tokenizer = train_code_tokenizer(args.out, args.vocab_size, args.tokenizer_files_per_language,
                                             num_threads=args.workers)
            tokenizer.save(pathlib.Path(args.out) / "tokenizer.model")
        trained = time.monotonic() - start - built
        manifest = count_tokens(args.out, tokenizer, progress=progress)
        progress.finish()
        sampled = [(f"{lang}:{r['path']}", r["text"])
                   for lang, r in sample_documents(args.out, args.tokenizer_files_per_language)]
        sample_checked, sample_failures = round_trip_failures(tokenizer, sampled)
        poly_root = resolve_data_dir(args.data_dir) / POLYGLOT_DIR
        poly_checked, poly_failures = (round_trip_failures(tokenizer, polyglot_files(poly_root))
                                       if args.polyglot_round_trip else (0, []))
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise SystemExit(f"build_code_corpus: error: {e}") from e
    print(format_stats_table(manifest))
    print(f"corpus build {built:.1f} s, tokenizer {trained:.1f} s (vocab {tokenizer.vocab_size}), "
          f"total {time.monotonic() - start:.1f} s")
    print(f"round trip: {sample_checked} sampled corpus files, {len(sample_failures)} failures"
          f"{' ' + str(sample_failures[:5]) if sample_failures else ''}; {poly_checked} polyglot files, "
          f"{len(poly_failures)} failures{' ' + str(poly_failures[:5]) if poly_failures else ''}")
    print(f"wrote {args.out}")
    return manifest


if __name__ == "__main__":
    main()
