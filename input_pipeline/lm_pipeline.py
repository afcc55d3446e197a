"""grain pipelines of packed language-model batches: corpus pretraining, MBPP fine-tuning, and their eval variants.

    source -> seed(seed).shuffle() -> repeat(num_epochs) -> [process_index::process_count] -> to_iter_dataset()
    -> tokenize -> cut examples longer than seq_len -> pack -> batch(batch_size, drop_remainder=True)
    -> mp_prefetch(num_workers) -> plain numpy

Batch schema, every array int32 [batch_size, seq_len]:
    inputs       token ids; pad_id on padding
    targets      = inputs (the trainer shifts: token t is predicted from tokens < t of the same segment)
    segment_ids  1, 2, ... per packed example in a row; 0 on padding
    positions    0, 1, ... restarting at every segment; 0 on padding
    loss_mask    1 where token t counts as a target: every token of a corpus document (<s> text </s>), the code
                 and </s> of an MBPP example (not its prompt); 0 on padding

Packing. "first_fit" (the default; grain's FirstFitPackIterDataset) never splits an example across rows: each
row holds whole examples, and an example longer than seq_len is first cut into seq_len pieces, each its own
segment starting at position 0. It keeps MBPP prompts with their code and starts every segment at a document
or piece boundary, at the cost of some padding. "concat_then_split" (ConcatThenSplitIterDataset) fills every row
completely (no padding in training) by cutting documents wherever a row ends; the remainder continues in the
next row as a new segment from position 0. Both are exactly checkpointable.

Eval variants (`training=False`): no shuffle, one pass, bins emitted in order, and the last batch padded to
batch_size rows with padding rows instead of dropped, so every example is seen exactly once per host.
"""
from __future__ import annotations

import os
from typing import Sequence

import grain
import grain.experimental
from absl import flags

from input_pipeline.corpus_records import CorpusDataSource, read_manifest
from input_pipeline.lm_transforms import (PackedToBatch, PadBatch, SplitLongExample, TokenizeDocument,
                                          TokenizeEditExample, TokenizeMbppExample, ToPlainNumpy, WithLanguage)
from input_pipeline.mbpp_data import load_mbpp
from input_pipeline.tokenizer import Tokenizer, verify_fingerprint

PACKINGS = ("first_fit", "concat_then_split")
# Records are small and local: two reader threads keep up with tokenization; grain's default (16 threads polling
# their futures) measurably slowed benchmarks/pipeline_throughput.py on a 2-core machine.
DEFAULT_READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=128)


def lm_batches(source: Sequence, tokenize: grain.transforms.Map, *, seq_len: int, batch_size: int,
               pad_id: int, seed: int = 0, training: bool = True, num_epochs: int | None = None,
               process_index: int = 0, process_count: int = 1, packing: str = "first_fit",
               num_packing_bins: int | None = None, num_workers: int = 0,
               read_options: grain.ReadOptions | None = None, source_name: str = "dataset") -> grain.IterDataset:
    """Packed batches of `source` (a sequence or grain random-access source of records) as the module docstring
    describes. `tokenize` maps a record to {"inputs", "loss_mask"}; `num_epochs` None repeats forever (training
    only: eval variants make one pass); `num_packing_bins` defaults to 2 x batch_size; `read_options` (threads
    prefetching records, per process) defaults to `DEFAULT_READ_OPTIONS`."""
    _check_args(seq_len, batch_size, process_index, process_count, packing, num_workers)
    if num_epochs is not None and num_epochs < 1:
        raise ValueError(f"num_epochs must be None (forever) or at least 1, got {num_epochs}")
    if len(source) == 0:
        raise ValueError(f"{source_name}: no records to build batches from (empty dataset)")
    if len(source) <= process_index:
        raise ValueError(f"{source_name}: {len(source)} record(s) leave nothing for host {process_index} of "
                         f"{process_count}")
    ds = grain.MapDataset.source(source)
    if training:
        ds = ds.seed(seed).shuffle()
        if num_epochs != 1:
            ds = ds.repeat(num_epochs)
    return _pack_and_batch(ds, tokenize, seq_len=seq_len, batch_size=batch_size, pad_id=pad_id, seed=seed,
                           training=training, process_index=process_index, process_count=process_count,
                           packing=packing, num_packing_bins=num_packing_bins, num_workers=num_workers,
                           read_options=read_options)


def _pack_and_batch(ds: grain.MapDataset, tokenize: grain.transforms.Map, *, seq_len: int, batch_size: int,
                    pad_id: int, seed: int, training: bool, process_index: int, process_count: int, packing: str,
                    num_packing_bins: int | None, num_workers: int,
                    read_options: grain.ReadOptions | None) -> grain.IterDataset:
    """This host's share of `ds` (records, already shuffled and repeated when training), tokenized, packed and
    batched as the module docstring describes."""
    ds = ds[process_index::process_count]
    it = ds.to_iter_dataset(read_options or DEFAULT_READ_OPTIONS).map(tokenize)
    bins = num_packing_bins or 2 * batch_size
    length_struct = {"inputs": seq_len, "loss_mask": seq_len}
    if packing == "first_fit":
        it = grain.experimental.FlatMapIterDataset(it, SplitLongExample(seq_len))
        it = grain.experimental.FirstFitPackIterDataset(
            it, length_struct=length_struct, num_packing_bins=bins, seed=seed, shuffle_bins=training,
            padding_struct={"inputs": pad_id, "loss_mask": 0})
    else:
        it = grain.experimental.ConcatThenSplitIterDataset(it, length_struct=length_struct)
    it = it.batch(batch_size, drop_remainder=training).map(PackedToBatch(pad_id))
    if not training:
        it = it.map(PadBatch(batch_size, pad_id))
    if num_workers > 0:
        _ensure_absl_flags_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers)).map(ToPlainNumpy())
    return it


def corpus_batches(corpus_dir: str | os.PathLike, tokenizer: Tokenizer, *, split: str | None = None,
                   training: bool = True, check_tokenizer: bool = True, **kwargs) -> grain.IterDataset:
    """Pretraining batches from a corpus built by `build_corpus` (split: "train" when training, else
    "validation"). Refuses a tokenizer other than the one the manifest records, unless `check_tokenizer` is
    False. `kwargs` go to `lm_batches`."""
    split = split or ("train" if training else "validation")
    manifest = read_manifest(corpus_dir)
    recorded = manifest.get("tokenizer")
    if check_tokenizer and recorded:
        verify_fingerprint(tokenizer, recorded["fingerprint"], f"{os.fspath(corpus_dir)}/manifest.json")
    source = CorpusDataSource(corpus_dir, split)
    return lm_batches(source, TokenizeDocument(tokenizer), pad_id=tokenizer.pad_id, training=training,
                      source_name=f"{os.fspath(corpus_dir)} split {split!r}", **kwargs)


def language_mixture(sources: dict, weights: dict, *, seed: int = 0, training: bool = True) -> grain.MapDataset:
    """Records of several one-language sources, each tagged with its language ("language" field). Training: each
    source shuffled (its own seed) and repeated, then mixed by `weights` (`grain.MapDataset.mix`: a deterministic
    interleaving, so in any window of records each language's share is its weight over the sum, within one record
    per language); languages of weight 0 are left out. Eval: every source once, in order, one after another."""
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise ValueError(f"language weights name {unknown}, which the corpus lacks (it has {sorted(sources)})")
    bad = {k: w for k, w in weights.items() if not w >= 0}
    if bad:
        raise ValueError(f"language weights must be >= 0, got {bad}")
    chosen = [lang for lang in sources if weights.get(lang, 0) > 0]
    if not chosen:
        raise ValueError(f"every language weight is 0 ({dict(weights)}): nothing to train on")
    parts = []
    for k, lang in enumerate(chosen):
        ds = grain.MapDataset.source(sources[lang])
        if training:
            ds = ds.seed(seed + 1000 * k).shuffle().repeat()
        parts.append(ds.map(WithLanguage(lang)))
    if not training:
        return grain.MapDataset.concatenate(parts) if len(parts) > 1 else parts[0]
    return grain.MapDataset.mix(parts, [float(weights[lang]) for lang in chosen]) if len(parts) > 1 else parts[0]


def code_mixture_batches(corpus_dir: str | os.PathLike, tokenizer: Tokenizer, weights: dict, *, seq_len: int,
                         batch_size: int, split: str | None = None, training: bool = True, seed: int = 0,
                         check_tokenizer: bool = True, process_index: int = 0, process_count: int = 1,
                         packing: str = "first_fit", num_packing_bins: int | None = None, num_workers: int = 0,
                         read_options: grain.ReadOptions | None = None) -> grain.IterDataset:
    """Pretraining batches of the six-language code corpus (`code_corpus`), languages mixed by `weights`
    ({language: weight}; see `language_mixture`), each document opened by its language tag. Refuses a tokenizer
    other than the one the code manifest records, unless `check_tokenizer` is False."""
    from input_pipeline import code_corpus  # noqa: PLC0415

    _check_args(seq_len, batch_size, process_index, process_count, packing, num_workers)
    split = split or ("train" if training else "validation")
    manifest = code_corpus.read_code_manifest(corpus_dir)
    recorded = manifest.get("tokenizer")
    if check_tokenizer and recorded:
        verify_fingerprint(tokenizer, recorded["fingerprint"], f"{os.fspath(corpus_dir)}/code_manifest.json")
    languages = [lang for lang, w in weights.items() if w > 0]
    sources = {lang: code_corpus.language_source(corpus_dir, lang, split) for lang in languages}
    sources = {lang: s for lang, s in sources.items() if len(s)}  # a small language may have no validation files
    if not sources:
        raise ValueError(f"{os.fspath(corpus_dir)} split {split!r}: no records in the languages {languages}")
    ds = language_mixture(sources, {lang: weights[lang] for lang in sources}, seed=seed, training=training)
    return _pack_and_batch(ds, TokenizeDocument(tokenizer), seq_len=seq_len, batch_size=batch_size,
                           pad_id=tokenizer.pad_id, seed=seed, training=training, process_index=process_index,
                           process_count=process_count, packing=packing, num_packing_bins=num_packing_bins,
                           num_workers=num_workers, read_options=read_options)


def mbpp_batches(tokenizer: Tokenizer, *, split: str | None = None, data_dir: str | os.PathLike | None = None,
                 training: bool = True, records: Sequence[dict] | None = None, **kwargs) -> grain.IterDataset:
    """Fine-tuning batches of MBPP instruction examples (split: "train" when training, else "validation"), or of
    the given `records`. `kwargs` go to `lm_batches`."""
    split = split or ("train" if training else "validation")
    if records is None:
        records = load_mbpp(split, data_dir=data_dir)
    return lm_batches(list(records), TokenizeMbppExample(tokenizer), pad_id=tokenizer.pad_id, training=training,
                      source_name=f"MBPP split {split!r}", **kwargs)


def edit_batches(records: Sequence, tokenizer: Tokenizer, stage: str, *, training: bool = True,
                 **kwargs) -> grain.IterDataset:
    """Batches of code-edit examples (`edit_prompts`: stage "edit_sft" targets the post-code, "edit_actions" the
    action) of the given codemod records; only records whose example fits `seq_len` are used. `kwargs` go to
    `lm_batches`."""
    from input_pipeline.edit_prompts import fitting  # noqa: PLC0415

    records = fitting(records, tokenizer, stage, kwargs["seq_len"])
    return lm_batches(records, TokenizeEditExample(tokenizer, stage), pad_id=tokenizer.pad_id, training=training,
                      source_name=f"codemods ({stage}, {'train' if training else 'held-out'})", **kwargs)


def _check_args(seq_len, batch_size, process_index, process_count, packing, num_workers) -> None:
    if seq_len < 2 or batch_size < 1:
        raise ValueError(f"need seq_len >= 2 and batch_size >= 1, got seq_len={seq_len}, batch_size={batch_size}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} must lie in [0, process_count={process_count})")
    if packing not in PACKINGS:
        raise ValueError(f"unknown packing {packing!r}; choose one of {PACKINGS}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")


def _ensure_absl_flags_parsed() -> None:
    """grain 0.2.18's worker processes read an absl flag and fail when flags were never parsed (outside an
    absl `app.run`, e.g. under pytest); mark them parsed so the flag defaults apply."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
