"""Trains the code tokenizer from files: `python -m input_pipeline.train_tokenizer --input_glob 'src/**/*.py'
--vocab_size 16384 --out tokenizers/code16k` writes tokenizers/code16k.model.

Shows progress on stderr: files and bytes read, then SentencePiece's own training log.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import Iterator, Sequence, TextIO

from input_pipeline.tokenizer_training import train_sentencepiece


class ReadProgress:
    """Counts files and bytes read and reports them on a stream, at most once per `every_s` seconds."""

    def __init__(self, total_files: int, stream: TextIO, every_s: float = 1.0):
        self.total_files, self.stream, self.every_s = total_files, stream, every_s
        self.files = self.bytes = self.skipped = 0
        self._last = 0.0

    def add(self, nbytes: int | None) -> None:
        """Records one file: its size, or None for a file skipped as not UTF-8."""
        if nbytes is None:
            self.skipped += 1
        else:
            self.files += 1
            self.bytes += nbytes
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        """Reports the final count."""
        self.stream.write(self.line() + ": done reading\n")
        self.stream.flush()

    def line(self) -> str:
        return (f"read {self.files + self.skipped}/{self.total_files} files, {self.bytes / 1e6:.1f} MB"
                + (f", skipped {self.skipped} not UTF-8" if self.skipped else ""))


def expand_globs(patterns: Sequence[str]) -> list[str]:
    """Sorted, de-duplicated files matching `patterns` (`**` recurses); raises if a pattern matches none."""
    files: set[str] = set()
    for pattern in patterns:
        matched = [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        if not matched:
            raise FileNotFoundError(f"--input_glob {pattern!r} matched no files")
        files.update(matched)
    return sorted(files)


def read_documents(paths: Sequence[str], progress: ReadProgress) -> Iterator[str]:
    """The text of each file; files that are not UTF-8 are skipped and counted."""
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            progress.add(None)
            continue
        progress.add(len(raw))
        yield text
    progress.finish()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m input_pipeline.train_tokenizer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_glob", action="append", required=True,
                   help="files to train on (repeatable; ** recurses)")
    p.add_argument("--vocab_size", type=int, default=16384)
    p.add_argument("--out", required=True, help="output prefix; writes PREFIX.model")
    p.add_argument("--model_type", choices=("bpe", "unigram"), default="bpe")
    p.add_argument("--split_by_whitespace", action=argparse.BooleanOptionalAction, default=False,
                   help="forbid pieces that span whitespace (default: allowed, so ':\\n    ' can be one piece)")
    p.add_argument("--split_by_unicode_script", action=argparse.BooleanOptionalAction, default=False,
                   help="forbid pieces that span script classes (default: allowed, so 'is_prime' can be one)")
    p.add_argument("--input_sentence_size", type=int, default=250_000,
                   help="sample at most this many chunks of <= --max_sentence_bytes (0: use all)")
    p.add_argument("--max_sentence_bytes", type=int, default=4096,
                   help="files are cut at line ends into chunks of at most this many bytes")
    p.add_argument("--num_threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, stream: TextIO = sys.stderr) -> str:
    """Runs the CLI; returns the path of the written model."""
    args = parse_args(argv)
    try:
        return _train_and_write(args, stream)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"train_tokenizer: error: {e}") from e


def _train_and_write(args: argparse.Namespace, stream: TextIO) -> str:
    paths = expand_globs(args.input_glob)
    stream.write(f"training a {args.model_type} tokenizer (vocab {args.vocab_size}) on {len(paths)} files\n")
    progress = ReadProgress(len(paths), stream)
    tokenizer = train_sentencepiece(
        read_documents(paths, progress), args.vocab_size, seed=args.seed,
        max_sentence_bytes=args.max_sentence_bytes, model_type=args.model_type,
        split_by_whitespace=args.split_by_whitespace, split_by_unicode_script=args.split_by_unicode_script,
        input_sentence_size=args.input_sentence_size,
        num_threads=args.num_threads, log_level=0)
    out = args.out + ".model"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tokenizer.save(out)
    stream.write(f"wrote {out}: vocab {tokenizer.vocab_size}, sha256 {tokenizer.fingerprint()}\n")
    stream.flush()
    return out


if __name__ == "__main__":
    main()
