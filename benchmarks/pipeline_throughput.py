"""Packed-token throughput of the corpus pretraining pipeline, read from ArrayRecord shards.

    python benchmarks/pipeline_throughput.py --corpus /tmp/stdlib_corpus [--tokenizer code16k.model]

Builds a corpus from this interpreter's standard library into --corpus unless it already holds one, loads
--tokenizer or trains a small one on the corpus, then for each worker count (default 0 and 2) and each packing
times --batches batches of --batch_size x --seq_len (default 8 x 1024) after one warm-up batch, and prints
non-padding tokens/s, batches/s and the padding fraction (padding positions / all positions).
Not a unit test: figures depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import sysconfig
import time


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from input_pipeline.corpus_records import MANIFEST, CorpusDataSource  # noqa: E402
from input_pipeline.corpus_sources import CorpusRoot  # noqa: E402
from input_pipeline.decontamination import load_benchmark_index  # noqa: E402
from input_pipeline.lm_pipeline import corpus_batches  # noqa: E402
from input_pipeline.python_corpus import build_corpus, format_stats  # noqa: E402
from input_pipeline.tokenizer import SentencePieceTokenizer  # noqa: E402
from input_pipeline.tokenizer_training import train_sentencepiece  # noqa: E402


def ensure_corpus(path: pathlib.Path, workers: int) -> None:
    if (path / MANIFEST).is_file():
        print(f"reusing the corpus in {path}")
        return
    print(f"building a standard-library corpus in {path} ...", flush=True)
    root = CorpusRoot(pathlib.Path(sysconfig.get_paths()["stdlib"]), stdlib=True)
    manifest = build_corpus([root], path, benchmark_index=load_benchmark_index(), workers=workers)
    print(format_stats(manifest))


def ensure_tokenizer(path: str | None, corpus: pathlib.Path, vocab_size: int) -> SentencePieceTokenizer:
    if path and os.path.isfile(path):
        return SentencePieceTokenizer.load(path)
    source = CorpusDataSource(corpus, "train")
    sample = (source[i]["text"] for i in range(0, len(source), 4))
    print(f"training a {vocab_size}-entry tokenizer on a quarter of the corpus ...", flush=True)
    tok = train_sentencepiece(sample, vocab_size, input_sentence_size=50_000, num_threads=os.cpu_count() or 1)
    if path:
        tok.save(path)
    return tok


def measure(corpus: pathlib.Path, tok, *, workers: int, packing: str, seq_len: int, batch_size: int,
            batches: int) -> dict:
    ds = corpus_batches(corpus, tok, seq_len=seq_len, batch_size=batch_size, seed=0, num_workers=workers,
                        packing=packing, check_tokenizer=False)
    it = iter(ds)
    t0 = time.perf_counter()
    next(it)  # warm-up: worker start-up, first reads
    startup = time.perf_counter() - t0
    real = total = 0
    t1 = time.perf_counter()
    for _ in range(batches):
        b = next(it)
        real += int((b["segment_ids"] > 0).sum())
        total += b["segment_ids"].size
    elapsed = time.perf_counter() - t1
    if hasattr(it, "close"):
        it.close()
    return {"workers": workers, "packing": packing, "tokens_per_s": real / elapsed,
            "batches_per_s": batches / elapsed, "padding": 1.0 - real / total, "startup_s": startup}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="/tmp/hrm_jax_stdlib_corpus")
    p.add_argument("--tokenizer", default=None, help=".model to load (trained and saved here if missing)")
    p.add_argument("--vocab_size", type=int, default=16384)
    p.add_argument("--seq_len", type=int, default=1024)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--packings", nargs="+", default=["first_fit", "concat_then_split"])
    args = p.parse_args(argv)
    corpus = pathlib.Path(args.corpus)
    ensure_corpus(corpus, workers=os.cpu_count() or 1)
    tok = ensure_tokenizer(args.tokenizer, corpus, args.vocab_size)
    print(f"tokenizer: vocab {tok.vocab_size}, sha256 {tok.fingerprint()[:12]}; {os.cpu_count()} CPU cores")
    results = []
    for packing in args.packings:
        for workers in args.workers:
            r = measure(corpus, tok, workers=workers, packing=packing, seq_len=args.seq_len,
                        batch_size=args.batch_size, batches=args.batches)
            results.append(r)
            print(f"{packing:<18} workers={workers}: {r['tokens_per_s']:>10,.0f} packed tokens/s, "
                  f"{r['batches_per_s']:6.2f} batches/s of {args.batch_size}x{args.seq_len}, "
                  f"padding {100 * r['padding']:5.2f}%, first batch after {r['startup_s']:.1f}s", flush=True)
    return results


if __name__ == "__main__":
    main()
