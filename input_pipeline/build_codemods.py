"""Build the codemod dataset from the embedded Python corpus (no downloads).

    python -m input_pipeline.build_codemods --out /tmp/codemods                      # the whole stdlib
    python -m input_pipeline.build_codemods --out /tmp/codemods --stdlib-subdirs json,email,logging

Reads the .py files the corpus builder reads (the interpreter's standard library, benchmark-named paths
skipped), writes <out>/{train,validation,test}.jsonl, metadata.json and stats.txt (`codemods.records`).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import sysconfig
import time

from input_pipeline.codemods.records import UnitSettings, build_records, format_stats, write_dataset
from input_pipeline.corpus_sources import CorpusRoot, find_source_files, is_benchmark_path


def stdlib_files(subdirs: tuple[str, ...] = (), max_files: int = 0):
    """(source name, text) of the standard library's .py files (only `subdirs` when given)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    roots = ([CorpusRoot(pathlib.Path(stdlib, s), stdlib=True) for s in subdirs] if subdirs
             else [CorpusRoot(pathlib.Path(stdlib), stdlib=True)])
    files = [f for f in find_source_files(roots) if not is_benchmark_path(f"{f.package}/{f.path}")]
    if max_files:
        files = files[:max_files]
    for f in files:
        try:
            yield f"{f.package}/{f.path}", f.abs_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def build(out: str, subdirs: tuple[str, ...] = (), max_files: int = 0) -> dict:
    start = time.time()
    records, rejected = build_records(stdlib_files(subdirs, max_files), UnitSettings())
    return write_dataset(records, out, {"corpus": {"stdlib_subdirs": list(subdirs), "max_files": max_files},
                                        "rejected": dict(rejected), "build_seconds": round(time.time() - start, 1)})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--stdlib-subdirs", default="", help="comma-separated stdlib packages (default: all)")
    p.add_argument("--max-files", type=int, default=0)
    a = p.parse_args(argv)
    meta = build(a.out, tuple(s for s in a.stdlib_subdirs.split(",") if s), a.max_files)
    print(format_stats(meta["stats"]))
    print(f"rejected proposals: {meta['rejected']}; {meta['build_seconds']} s -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
