"""Builds the embedded Python corpus: `python -m input_pipeline.build_corpus --out DIR [--roots ...]
[--tokenizer PATH]`.

Default roots: the running interpreter's standard library and site-packages. Writes DIR/{train,validation}-*
.array_record, DIR/manifest.json and DIR/removed.jsonl, shows progress on stderr and prints the statistics
(files, bytes, tokens when --tokenizer is given, files removed by each rule) on stdout.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Sequence, TextIO

from input_pipeline.corpus_sources import CorpusRoot, default_roots
from input_pipeline.decontamination import load_benchmark_index
from input_pipeline.near_duplicates import NearDupSettings
from input_pipeline.python_corpus import CorpusSettings, build_corpus, format_stats
from input_pipeline.tokenizer import SentencePieceTokenizer


class StageProgress:
    """Renders (stage, done, total) updates on one rewritten stderr line, at most every `every_s` seconds."""

    def __init__(self, stream: TextIO, every_s: float = 0.5):
        self.stream, self.every_s = stream, every_s
        self._last = 0.0
        self._start = time.monotonic()
        self._stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_stage = stage != self._stage
        if new_stage and self._stage is not None:
            self.stream.write("\n")
        self._stage = stage
        if new_stage or done == total or now - self._last >= self.every_s:
            self._last = now
            pct = 100.0 * done / total if total else 100.0
            self.stream.write(f"\r[{now - self._start:7.1f}s] {stage}: {done:,}/{total:,} ({pct:5.1f}%)")
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.build_corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--roots", nargs="+", default=None,
                   help="folders of installed packages to collect from (package = top-level folder); "
                        "default: this interpreter's site-packages")
    p.add_argument("--stdlib_roots", nargs="*", default=None,
                   help="folders whose files are labelled package 'stdlib'; default: this interpreter's "
                        "standard library when --roots is not given, else none")
    p.add_argument("--tokenizer", default=None, help="a .model file: count tokens and record its fingerprint")
    p.add_argument("--data_dir", default=None, help="folder holding mbpp/mbpp.jsonl (default $HRM_JAX_DATA_DIR)")
    p.add_argument("--max_file_bytes", type=int, default=CorpusSettings.max_file_bytes)
    p.add_argument("--validation_fraction", type=float, default=CorpusSettings.validation_fraction)
    p.add_argument("--shard_mb", type=float, default=CorpusSettings.shard_bytes / 2**20)
    p.add_argument("--near_dup_threshold", type=float, default=NearDupSettings.threshold)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    return p.parse_args(argv)


def roots_from_args(args: argparse.Namespace) -> list[CorpusRoot]:
    if args.roots is None and args.stdlib_roots is None:
        return default_roots()
    roots = [CorpusRoot(pathlib.Path(p), stdlib=True) for p in args.stdlib_roots or ()]
    roots += [CorpusRoot(pathlib.Path(p)) for p in args.roots or ()]
    return roots


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> dict:
    """Runs the CLI (progress on `stream`, default stderr); returns the manifest."""
    args = parse_args(argv)
    stream = stream or sys.stderr
    try:
        roots = roots_from_args(args)
        tokenizer = SentencePieceTokenizer.load(args.tokenizer) if args.tokenizer else None
        settings = CorpusSettings(max_file_bytes=args.max_file_bytes, validation_fraction=args.validation_fraction,
                                  shard_bytes=int(args.shard_mb * 2**20),
                                  near_dup=NearDupSettings(threshold=args.near_dup_threshold))
        stream.write("corpus roots: " + ", ".join(f"{r.path}{' (stdlib)' if r.stdlib else ''}" for r in roots) + "\n")
        index = load_benchmark_index(args.data_dir)
        progress = StageProgress(stream)
        manifest = build_corpus(roots, args.out, benchmark_index=index, settings=settings, tokenizer=tokenizer,
                                workers=args.workers, overwrite=args.overwrite, progress=progress)
        progress.finish()
    except (FileNotFoundError, FileExistsError, ValueError) as e:  # includes the MBPP/HumanEval data errors
        raise SystemExit(f"build_corpus: error: {e}") from e
    print(format_stats(manifest))
    print(f"wrote {args.out}")
    return manifest


if __name__ == "__main__":
    main()
