"""grain pipelines: the packed LM batch schema, MBPP loss masks, host sharding, exact checkpoints, JAX-free
workers, the HRM puzzle batches, and the errors for bad input."""
import collections
import os
import subprocess
import sys
import time

import grain
import grain.experimental
import numpy as np
import pytest

from fixtures_tokenizer import REPO_ROOT, STDLIB, mbpp_jsonl_records, session_tokenizer  # noqa: F401
from input_pipeline import lm_transforms
from input_pipeline.corpus_records import FORMAT_NAME, FORMAT_VERSION, write_manifest, write_shard
from input_pipeline.lm_pipeline import corpus_batches, lm_batches, mbpp_batches
from input_pipeline.puzzle_pipeline import (IGNORE_LABEL_ID, iteration_plan, puzzle_eval_batches,
                                            puzzle_train_batches)
from input_pipeline.puzzles.hrm_format import PuzzleArrays, PuzzleDatasetMetadata, write_split
from input_pipeline.tokenizer import TokenizerMismatchError

SEQ = 128
DOC_FILES = ("colorsys.py", "bisect.py", "fnmatch.py", "keyword.py", "this.py", "stat.py", "glob.py",
             "genericpath.py", "shlex.py", "opcode.py")


def _record(text: str, name: str) -> dict:
    return {"text": text, "path": name, "package": "stdlib", "license": "PSF-2.0", "sha256": name}


def _docs() -> list[dict]:
    docs = [_record((STDLIB / name).read_text(encoding="utf-8"), name) for name in DOC_FILES]
    docs += [_record(f"x{i} = {i}\n", f"tiny{i}.py") for i in range(12)]  # short ones, several per row
    return docs


def _write_corpus(path, docs, shards=3, tokenizer=None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(docs), shards + 1).astype(int)
    entries = []
    for k in range(shards):
        name = f"train-{k:05d}-of-{shards:05d}.array_record"
        entries.append({"file": name, "records": write_shard(path / name, docs[bounds[k]:bounds[k + 1]])})
    write_manifest(path, {"format": FORMAT_NAME, "version": FORMAT_VERSION, "splits": {
        "train": {"shards": entries}, "validation": {"shards": []}},
        "tokenizer": None if tokenizer is None else {"fingerprint": tokenizer.fingerprint()}})


@pytest.fixture(scope="module")
def tok():
    return session_tokenizer()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tok):
    path = tmp_path_factory.mktemp("corpus")
    _write_corpus(path, _docs(), tokenizer=tok)
    return path


def _segments(batches):
    """Every packed segment as (token ids, loss mask), row by row."""
    out = []
    for b in batches:
        for r in range(len(b["inputs"])):
            seg = b["segment_ids"][r]
            for s in np.unique(seg[seg > 0]):
                idx = np.flatnonzero(seg == s)
                out.append((b["inputs"][r, idx], b["loss_mask"][r, idx]))
    return out


def _check_rows(batch, pad_id, *, padding_allowed=True):
    """Schema invariants of every row: contiguous segments 1..k, positions restarting at 0, padding zeroed."""
    assert set(batch) == set(lm_transforms.BATCH_KEYS)
    for key, value in batch.items():
        assert value.dtype == np.int32 and value.shape == batch["inputs"].shape, key
    np.testing.assert_array_equal(batch["targets"], batch["inputs"])
    for r in range(len(batch["inputs"])):
        seg, pos = batch["segment_ids"][r], batch["positions"][r]
        used = seg > 0
        n = int(used.sum())
        assert used[:n].all() and not used[n:].any(), "padding only at the end of a row"
        if not padding_allowed:
            assert n == len(seg)
        assert np.all(np.diff(seg[:n]) >= 0) and (n == 0 or seg[0] == 1)
        assert np.all(np.diff(seg[:n]) <= 1), "segment ids count up by one"
        starts = np.flatnonzero(np.diff(np.concatenate([[0], seg[:n]])) != 0)
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else n
            np.testing.assert_array_equal(pos[start:end], np.arange(end - start))
        assert not batch["loss_mask"][r, ~used].any()
        assert (batch["inputs"][r, ~used] == pad_id).all() and not pos[~used].any()


def _expected_pieces(tok, docs, seq_len):
    pieces = []
    for d in docs:
        ids = [tok.bos_id] + tok.encode(d["text"]) + [tok.eos_id]
        pieces += [tuple(ids[i:i + seq_len]) for i in range(0, len(ids), seq_len)]
    return collections.Counter(pieces)


def test_first_fit_batches_hold_whole_pieces_of_every_document_once(corpus, tok):
    batches = list(corpus_batches(corpus, tok, training=False, split="train", seq_len=SEQ, batch_size=4))
    for b in batches:
        _check_rows(b, tok.pad_id)
    segments = _segments(batches)
    assert collections.Counter(tuple(ids.tolist()) for ids, _ in segments) == _expected_pieces(tok, _docs(), SEQ)
    assert all(mask.all() for _, mask in segments)  # every corpus token counts
    rows_with_several = sum(len(np.unique(b["segment_ids"][r])) > 2 for b in batches for r in range(4))
    assert rows_with_several > 0, "short documents share rows"


def test_eval_pads_the_last_batch_with_padding_rows(tok):
    docs = [_record(f"value_{i} = {i}\n", f"d{i}.py") for i in range(5)]
    batches = list(lm_batches(docs, lm_transforms.TokenizeDocument(tok), seq_len=16, batch_size=4,
                              pad_id=tok.pad_id, training=False, num_packing_bins=1))
    assert len(batches) == 2 and batches[-1]["inputs"].shape == (4, 16)
    assert not batches[-1]["segment_ids"][1:].any() and not batches[-1]["loss_mask"][1:].any()
    assert len(_segments(batches)) == 5


def test_concat_then_split_fills_every_row(corpus, tok):
    it = iter(corpus_batches(corpus, tok, seq_len=SEQ, batch_size=4, packing="concat_then_split", seed=1))
    for _ in range(6):
        _check_rows(next(it), tok.pad_id, padding_allowed=False)


def test_training_shuffles_and_repeats_per_seed(corpus, tok):
    def first(seed):
        return next(iter(corpus_batches(corpus, tok, seq_len=SEQ, batch_size=4, seed=seed)))["inputs"]
    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))
    two_epochs = list(corpus_batches(corpus, tok, seq_len=SEQ, batch_size=2, num_epochs=2, seed=0))
    one_epoch = list(corpus_batches(corpus, tok, seq_len=SEQ, batch_size=2, num_epochs=1, seed=0))
    tokens = lambda bs: sum(int((b["segment_ids"] > 0).sum()) for b in bs)  # noqa: E731
    assert abs(tokens(two_epochs) - 2 * tokens(one_epoch)) <= 4 * SEQ  # up to a dropped last batch each


def test_mbpp_loss_mask_covers_code_and_eos_only(tok):
    records = [r for r in mbpp_jsonl_records() if 601 <= r["task_id"] <= 612]
    batches = list(mbpp_batches(tok, records=records, training=False, seq_len=512, batch_size=2))
    code = tok.special_id("<CODE>")
    segments = _segments(batches)
    assert len(segments) == len(records)
    for ids, mask in segments:
        cut = int(np.flatnonzero(ids == code)[0]) + 1
        assert not mask[:cut].any(), "prompt and tests carry no loss"
        assert mask[cut:].all() and ids[-1] == tok.eos_id
        assert tok.decode(ids[cut:]).strip() in {r["code"].replace("\r\n", "\n").strip() for r in records}
    for b in batches:
        _check_rows(b, tok.pad_id)


def test_mbpp_train_split_loads_by_default(tok):
    batch = next(iter(mbpp_batches(tok, seq_len=512, batch_size=2)))
    assert batch["loss_mask"].sum() > 0 and (batch["loss_mask"] <= (batch["segment_ids"] > 0)).all()


def test_hosts_get_disjoint_shards_that_cover_the_data(tok):
    docs = [_record(f"name_{i} = {i}\n", f"d{i}.py") for i in range(23)]
    texts = {}
    for host in range(3):
        for training in (False, True):
            ds = lm_batches(docs, lm_transforms.TokenizeDocument(tok), seq_len=32, batch_size=2,
                            pad_id=tok.pad_id, training=training, num_epochs=1, seed=5, process_index=host,
                            process_count=3)
            got = [tok.decode(ids) for ids, _ in _segments(list(ds))]
            texts[host, training] = got
    for training in (False,):
        all_texts = [t for host in range(3) for t in texts[host, training]]
        assert sorted(all_texts) == sorted(d["text"] for d in docs)  # disjoint (no repeats) and covering
    for host in range(3):  # training shuffles, but slices the same way: a subset of this host's share
        assert len(set(texts[host, True])) == len(texts[host, True])
    shuffled = [t for host in range(3) for t in texts[host, True]]
    assert len(shuffled) == len(set(shuffled))


def test_iterator_state_restores_the_exact_next_batches(corpus, tok):
    ds = corpus_batches(corpus, tok, seq_len=SEQ, batch_size=3, seed=7)
    it = iter(ds)
    for _ in range(5):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(4)]
    restored = iter(ds)
    restored.set_state(state)
    for want, got in zip(expected, (next(restored) for _ in range(4))):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])


def test_checkpoint_at_every_step_of_a_finite_pipeline(tok):
    docs = [_record((STDLIB / "keyword.py").read_text(), "keyword.py")]
    docs += [_record(f"v{i} = {i}\n", f"t{i}.py") for i in range(6)]
    for packing in ("first_fit", "concat_then_split"):
        ds = lm_batches(docs, lm_transforms.TokenizeDocument(tok), seq_len=64, batch_size=2, pad_id=tok.pad_id,
                        num_epochs=2, seed=1, packing=packing)
        grain.experimental.assert_equal_output_after_checkpoint(ds)


def test_tokenizer_travels_as_bytes_and_reloads(tok):
    import pickle
    handle = lm_transforms.TokenizerHandle(tok)
    clone = pickle.loads(pickle.dumps(handle))
    assert clone._tokenizer is None and len(pickle.dumps(handle)) < len(tok.serialized_model()) + 1000
    assert clone.get().fingerprint() == tok.fingerprint()


class WorkerProbe(grain.transforms.Map):
    """Tokenizes to a record of where it ran: [1, hrm_jax imported, JAX backend started, pid // 2**15,
    pid % 2**15] (JAX's own module may be present: grain 0.2.18 imports it when installed)."""

    def map(self, record):
        jax_started = False
        if "jax._src.xla_bridge" in sys.modules:
            jax_started = bool(sys.modules["jax._src.xla_bridge"]._backends)
        hrm = any(m == "hrm_jax" or m.startswith("hrm_jax.") for m in sys.modules)
        pid = os.getpid()
        ids = np.asarray([1, hrm, jax_started, pid // 2**15, pid % 2**15], np.int32)
        return {"inputs": ids, "loss_mask": np.ones_like(ids)}


def test_multiprocess_workers_run_without_hrm_jax_or_a_jax_backend():
    start = time.monotonic()
    docs = [_record(f"n{i} = {i}\n", f"d{i}.py") for i in range(16)]
    ds = lm_batches(docs, WorkerProbe(), seq_len=5, batch_size=2, pad_id=0, training=False, num_workers=2)
    it = iter(ds)
    rows = np.concatenate([b["inputs"] for b in it])
    it.close()
    rows = rows[rows[:, 0] == 1]
    assert len(rows) == 16
    assert not rows[:, 1].any(), "a worker imported hrm_jax"
    assert not rows[:, 2].any(), "a worker started a JAX backend"
    pids = set((rows[:, 3] * 2**15 + rows[:, 4]).tolist())
    assert len(pids) == 2 and os.getpid() not in pids
    assert time.monotonic() - start < 20


def test_multiprocess_pipeline_checkpoints_exactly(corpus, tok):
    ds = corpus_batches(corpus, tok, seq_len=SEQ, batch_size=2, seed=3, num_workers=2)
    it = iter(ds)
    for _ in range(3):
        b = next(it)
    assert type(b["inputs"]) is np.ndarray
    _check_rows(b, tok.pad_id)
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    it.close()
    restored = iter(ds)
    restored.set_state(state)
    got = [next(restored) for _ in range(2)]
    restored.close()
    for want, have in zip(expected, got):
        for key in want:
            np.testing.assert_array_equal(want[key], have[key])


_JAX_BLOCKED_SCRIPT = """
import importlib, pkgutil, sys
sys.modules["jax"] = None      # any `import jax` now raises ImportError
sys.modules["hrm_jax"] = None
import input_pipeline
skip = {"input_pipeline.mbpp"}  # the TFDS builder: TFDS itself may import JAX; not used by the pipelines
for m in pkgutil.walk_packages(input_pipeline.__path__, "input_pipeline."):
    if m.name not in skip:
        importlib.import_module(m.name)
from input_pipeline import lm_pipeline, lm_transforms
from input_pipeline.tokenizer import SentencePieceTokenizer
tok = SentencePieceTokenizer.load(sys.argv[1])
docs = [{"text": f"y{i} = {i}\\n"} for i in range(9)]
ds = lm_pipeline.lm_batches(docs, lm_transforms.TokenizeDocument(tok), seq_len=16, batch_size=2,
                            pad_id=tok.pad_id, num_epochs=1)
print(sum(int((b["segment_ids"] > 0).sum()) > 0 for b in ds), "batches")
"""


def test_input_pipeline_needs_no_jax(tok, tmp_path):
    tok.save(tmp_path / "tok.model")
    result = subprocess.run([sys.executable, "-c", _JAX_BLOCKED_SCRIPT, str(tmp_path / "tok.model")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "batches" in result.stdout


# --- bad input ---

def test_empty_datasets_are_refused(tok, tmp_path):
    with pytest.raises(ValueError, match="empty dataset"):
        lm_batches([], lm_transforms.TokenizeDocument(tok), seq_len=16, batch_size=2, pad_id=0)
    _write_corpus(tmp_path, _docs()[:2], shards=1)
    with pytest.raises(ValueError, match="split 'validation'.*empty"):
        corpus_batches(tmp_path, tok, training=False, seq_len=16, batch_size=2)


def test_a_foreign_tokenizer_is_refused(tok, tmp_path):
    from input_pipeline.tokenizer_training import train_sentencepiece
    other = train_sentencepiece([(STDLIB / "colorsys.py").read_text()], 400)
    _write_corpus(tmp_path, _docs()[:2], shards=1, tokenizer=tok)
    with pytest.raises(TokenizerMismatchError, match="manifest.json was tokenized with tokenizer sha256"):
        corpus_batches(tmp_path, other, seq_len=16, batch_size=2)
    corpus_batches(tmp_path, other, seq_len=16, batch_size=2, check_tokenizer=False)


def test_pipeline_arguments_are_checked(tok):
    docs = [_record("a = 1\n", "a.py")]
    tokenize = lm_transforms.TokenizeDocument(tok)
    with pytest.raises(ValueError, match="process_index 2"):
        lm_batches(docs, tokenize, seq_len=16, batch_size=2, pad_id=0, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="unknown packing"):
        lm_batches(docs, tokenize, seq_len=16, batch_size=2, pad_id=0, packing="best")
    with pytest.raises(ValueError, match="num_epochs"):
        lm_batches(docs, tokenize, seq_len=16, batch_size=2, pad_id=0, num_epochs=0)
    with pytest.raises(ValueError, match="nothing for host 1"):
        lm_batches(docs, tokenize, seq_len=16, batch_size=2, pad_id=0, process_index=1, process_count=2)


def test_a_malformed_corpus_record_fails_the_pipeline_with_shard_and_index(tok, tmp_path):
    from array_record.python import array_record_module
    writer = array_record_module.ArrayRecordWriter(str(tmp_path / "train-00000-of-00001.array_record"),
                                                   "group_size:1")
    writer.write(b'{"text": "x = 1"}')
    writer.close()
    write_manifest(tmp_path, {"format": FORMAT_NAME, "version": FORMAT_VERSION, "splits": {
        "train": {"shards": [{"file": "train-00000-of-00001.array_record", "records": 1}]}}})
    with pytest.raises(Exception, match=r"train-00000-of-00001\.array_record: record 0: record lacks field"):
        next(iter(corpus_batches(tmp_path, tok, seq_len=16, batch_size=1)))


# --- puzzles in the original HRM format ---

GROUP_PUZZLES = (2, 1, 3, 2, 1)      # puzzles (augmentations) per group
PUZZLE_EXAMPLES = (1, 3, 2, 1, 2, 1, 3, 1, 2)  # examples per puzzle
P_SEQ, P_VOCAB, P_IGNORE, P_PAD, P_BLANK = 6, 10, 0, 0, 0


def _puzzle_arrays(puzzle_examples, group_puzzles, offset=0):
    n = sum(puzzle_examples)
    rng = np.random.default_rng(offset)
    inputs = rng.integers(1, P_VOCAB, (n, P_SEQ)).astype(np.int32)
    inputs[:, 0] = np.arange(n) % P_VOCAB  # traceable
    labels = rng.integers(0, P_VOCAB, (n, P_SEQ)).astype(np.int32)
    return PuzzleArrays(inputs=inputs, labels=labels,
                        puzzle_identifiers=np.arange(1, len(puzzle_examples) + 1, dtype=np.int32),
                        puzzle_indices=np.concatenate([[0], np.cumsum(puzzle_examples)]).astype(np.int32),
                        group_indices=np.concatenate([[0], np.cumsum(group_puzzles)]).astype(np.int32))


@pytest.fixture(scope="module")
def puzzles(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("puzzles"))
    arrays = _puzzle_arrays(PUZZLE_EXAMPLES, GROUP_PUZZLES)
    for split in ("train", "test"):
        meta = PuzzleDatasetMetadata(pad_id=P_PAD, ignore_label_id=P_IGNORE, blank_identifier_id=P_BLANK,
                                     vocab_size=P_VOCAB, seq_len=P_SEQ, num_puzzle_identifiers=10,
                                     total_groups=len(GROUP_PUZZLES),
                                     mean_puzzle_examples=float(np.mean(PUZZLE_EXAMPLES)), sets=["all"])
        write_split(root, split, meta, {"all": arrays})
    return root, arrays


def _hrm_reference_batches(arrays, seed, iters, global_batch_size):
    """HRM's puzzle_dataset._sample_batch loop, verbatim apart from names (valid for one-example puzzles,
    where its unseeded np.random.choice always returns [0])."""
    rng = np.random.Generator(np.random.Philox(seed=seed + iters))
    group_order = rng.permutation(arrays.group_indices.size - 1)
    start_index, out = 0, []
    while start_index < group_order.size:
        batch, current_size = [], 0
        while start_index < group_order.size and current_size < global_batch_size:
            group_id = group_order[start_index]
            puzzle_id = rng.integers(arrays.group_indices[group_id], arrays.group_indices[group_id + 1])
            start_index += 1
            puzzle_start = arrays.puzzle_indices[puzzle_id]
            puzzle_size = int(arrays.puzzle_indices[puzzle_id + 1] - puzzle_start)
            append_size = min(puzzle_size, global_batch_size - current_size)
            batch.append(puzzle_start + np.arange(append_size))
            current_size += append_size
        if current_size < global_batch_size:
            break
        out.append(np.concatenate(batch))
    return out


def test_single_example_puzzles_batch_exactly_like_hrm():
    arrays = _puzzle_arrays([1] * 40, [4, 1, 3, 2, 5, 1, 6, 2, 4, 3, 5, 4])
    for seed, iters in ((0, 1), (7, 3)):
        ours = [examples for examples, _ in iteration_plan(arrays, seed, iters, 1, 3)]
        ref = _hrm_reference_batches(arrays, seed, iters, 3)
        assert len(ours) == len(ref) == 4
        for a, b in zip(ours, ref):
            np.testing.assert_array_equal(a, b)


def test_train_batches_take_one_augmentation_per_group(puzzles):
    root, arrays = puzzles
    batches = list(puzzle_train_batches(root, global_batch_size=3, seed=2, num_iters=1))
    assert batches
    puzzle_of_id = {int(i): p for p, i in enumerate(arrays.puzzle_identifiers)}
    group_of = np.searchsorted(arrays.group_indices, np.arange(len(arrays.puzzle_identifiers)), side="right") - 1
    chosen = {}
    for b in batches:
        assert b["inputs"].shape == (3, P_SEQ) and b["inputs"].dtype == np.int32 and b["mask"].all()
        for row in range(3):
            puzzle = puzzle_of_id[int(b["puzzle_identifiers"][row])]
            example = next(e for e in range(len(arrays.inputs)) if (arrays.inputs[e] == b["inputs"][row]).all())
            assert arrays.puzzle_indices[puzzle] <= example < arrays.puzzle_indices[puzzle + 1]
            labels = arrays.labels[example].astype(np.int32)
            np.testing.assert_array_equal(b["labels"][row], np.where(labels == P_IGNORE, IGNORE_LABEL_ID, labels))
            assert chosen.setdefault(int(group_of[puzzle]), puzzle) == puzzle, "one augmentation per group"
    assert (np.concatenate([b["labels"] for b in batches]) == IGNORE_LABEL_ID).any()


def test_train_hosts_split_each_global_batch(puzzles):
    root, _ = puzzles
    whole = list(puzzle_train_batches(root, global_batch_size=4, seed=1, num_iters=3))
    hosts = [list(puzzle_train_batches(root, global_batch_size=4, seed=1, num_iters=3, process_index=h,
                                       process_count=2)) for h in range(2)]
    assert len(whole) == len(hosts[0]) == len(hosts[1]) > 3
    for w, h0, h1 in zip(whole, *hosts):
        for key in w:
            np.testing.assert_array_equal(w[key], np.concatenate([h0[key], h1[key]]))


def test_puzzle_train_iterator_checkpoints_exactly(puzzles):
    root, _ = puzzles
    grain.experimental.assert_equal_output_after_checkpoint(
        puzzle_train_batches(root, global_batch_size=4, seed=5, num_iters=3))
    it = iter(puzzle_train_batches(root, global_batch_size=2, seed=5))
    for _ in range(11):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(7)]
    again = iter(puzzle_train_batches(root, global_batch_size=2, seed=5))
    again.set_state(state)
    for want in expected:
        got = next(again)
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])


def test_test_split_is_sequential_with_a_padded_last_batch(puzzles):
    root, arrays = puzzles
    n = len(arrays.inputs)  # 16
    per_host = [list(puzzle_eval_batches(root, global_batch_size=6, process_index=h, process_count=2))
                for h in range(2)]
    assert len(per_host[0]) == len(per_host[1]) == 3
    seen = []
    for batches in zip(*per_host):
        for b in batches:
            assert b["inputs"].shape == (3, P_SEQ)
            real = b["mask"] == 1
            seen += [int(x) for x in b["inputs"][real, 0]]
            assert (b["inputs"][~real] == P_PAD).all() and (b["labels"][~real] == IGNORE_LABEL_ID).all()
            assert (b["puzzle_identifiers"][~real] == P_BLANK).all()
    assert seen == [i % P_VOCAB for i in range(n)]
    last = per_host[1][-1]
    assert last["mask"].tolist() == [1, 0, 0]  # rows 15 (real), then padding
    puzzle_of_example = np.searchsorted(arrays.puzzle_indices, np.arange(n), side="right") - 1
    first = per_host[0][0]
    np.testing.assert_array_equal(first["puzzle_identifiers"], arrays.puzzle_identifiers[puzzle_of_example[:3]])
    grain.experimental.assert_equal_output_after_checkpoint(puzzle_eval_batches(root, global_batch_size=6))


def test_puzzle_batches_check_their_arguments(puzzles, tmp_path):
    root, _ = puzzles
    with pytest.raises(ValueError, match="multiple of process_count"):
        puzzle_train_batches(root, global_batch_size=5, process_count=2)
    with pytest.raises(ValueError, match="too small for this global batch size"):
        next(iter(puzzle_train_batches(root, global_batch_size=1000)))
    with pytest.raises(ValueError, match="dataset.json"):
        puzzle_eval_batches(str(tmp_path), global_batch_size=2)
