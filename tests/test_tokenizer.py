"""The code tokenizer: exact round trip, special tokens, fingerprints, training and its CLI."""
import hashlib
import io
import json
import sys

import numpy as np
import pytest

from input_pipeline import train_tokenizer
from input_pipeline.tokenizer import (BOS, EOS, MARKERS, PAD, PLAN_MARKERS, TASK_MARKERS, UNK,
                                      SentencePieceTokenizer, Tokenizer, TokenizerMismatchError,
                                      verify_fingerprint, verify_token_ids)
from input_pipeline.tokenizer_training import document_chunks, train_sentencepiece
from tests.fixtures_tokenizer import (REPO_ROOT, STDLIB, TEST_VOCAB_SIZE, mbpp_jsonl_records, stdlib_files,
                                      tokenizer)  # noqa: F401,F811  (pytest fixture)

EDGE_CASES = [
    "",
    " ",
    "\t",
    "\n",
    "\n\n\n",
    "    ",
    "x = 1   ",                                  # trailing spaces
    "  leading\n\ttab\n\t\tdouble tab \t\n",
    "def f():\r\n    return 1\r\n",              # CRLF
    "a\rb\r",                                    # bare CR
    "mixed \t \t indent\n \t x",
    "héllo wörld ñ 日本語 Ωμέγα",                 # unicode
    "emoji 😀🐍👩‍💻 done",                          # byte fallback
    "zero\u200bwidth \ufeffbom \u00a0nbsp \u3000ideographic",
    "meta\u2581space ▁▁ ▁",                       # SentencePiece's own meta symbol, literally
    "\x00\x01\x7f control bytes",
    "<0x41> <s> </s> <pad> <unk> look like pieces",
    "<PROMPT>write<TESTS>assert f()<CODE>def f(): pass",
    "1234567890 3.14159 0xDEADBEEF 1e-10",
    "  \n  \n",
    " " * 37 + "x" + "\t" * 9 + "\n" * 5,
]


def test_is_a_tokenizer(tokenizer):
    assert isinstance(tokenizer, Tokenizer)
    assert tokenizer.vocab_size == TEST_VOCAB_SIZE


@pytest.mark.parametrize("text", EDGE_CASES)
def test_round_trip_edge_cases(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_round_trip_every_mbpp_task(tokenizer):
    records = mbpp_jsonl_records()
    assert len(records) == 974
    failures, checked = [], 0
    for r in records:
        for field in ("text", "code", "test_setup_code"):
            checked += 1
            if tokenizer.decode(tokenizer.encode(r[field])) != r[field]:
                failures.append((r["task_id"], field))
        for i, test in enumerate(r["test_list"] + r["challenge_test_list"]):
            checked += 1
            if tokenizer.decode(tokenizer.encode(test)) != test:
                failures.append((r["task_id"], f"test {i}"))
    assert checked > 974 * 5
    assert failures == []


def test_round_trip_held_out_stdlib_files(tokenizer):
    files = stdlib_files(1)[:40] + sorted((STDLIB / "json").glob("*.py"))
    assert len(files) >= 40
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert tokenizer.decode(tokenizer.encode(text)) == text, path


def test_compresses_code_and_indentation(tokenizer):
    code = "\n".join(r["code"] for r in mbpp_jsonl_records()[10:510])
    assert len(code) / len(tokenizer.encode(code)) > 2.0
    assert len(tokenizer.encode(" " * 8)) == 1
    assert len(tokenizer.encode("        return")) <= 2


def test_special_token_ids(tokenizer):
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    ids = tokenizer.special_token_ids
    assert set(ids) == {PAD, BOS, EOS, UNK, *MARKERS}
    assert len(set(ids.values())) == len(ids)
    assert set(TASK_MARKERS) <= set(ids) and set(PLAN_MARKERS) <= set(ids)
    for marker in MARKERS:
        assert tokenizer.encode(marker) == [tokenizer.special_id(marker)]
        assert tokenizer.decode([tokenizer.special_id(marker)]) == marker
    assert tokenizer.decode([tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id]) == ""
    with pytest.raises(KeyError, match="no special token 'def'"):
        tokenizer.special_id("def")


def test_decode_accepts_numpy_and_rejects_out_of_vocab(tokenizer):
    ids = tokenizer.encode("print(1)")
    assert tokenizer.decode(np.asarray(ids, np.int32)) == "print(1)"
    with pytest.raises(TokenizerMismatchError, match=f"token id {TEST_VOCAB_SIZE} at position 1"):
        tokenizer.decode([ids[0], TEST_VOCAB_SIZE])
    with pytest.raises(TokenizerMismatchError, match="token id -1"):
        tokenizer.decode([-1])
    with pytest.raises(TypeError, match="encode expects str"):
        tokenizer.encode(b"bytes")


def test_fingerprint_is_sha256_of_model_and_survives_save_load(tokenizer, tmp_path):
    proto = tokenizer.serialized_model()
    assert tokenizer.fingerprint() == hashlib.sha256(proto).hexdigest()
    tokenizer.save(tmp_path / "t.model")
    loaded = SentencePieceTokenizer.load(tmp_path / "t.model")
    assert loaded.fingerprint() == tokenizer.fingerprint()
    assert loaded.encode("def f():\n\treturn 1") == tokenizer.encode("def f():\n\treturn 1")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.model"):
        SentencePieceTokenizer.load(tmp_path / "nope.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="garbage.model: not a SentencePiece model"):
        SentencePieceTokenizer.load(garbage)


def test_refuses_models_without_pad_or_not_whitespace_exact():
    import sentencepiece as spm
    docs = [p.read_text(encoding="utf-8") for p in stdlib_files(2)[:10]]

    def train(**options) -> bytes:  # SentencePiece defaults: NFKC, dummy prefix, extra whitespace removed
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(docs), model_writer=model, vocab_size=400,
                                       byte_fallback=True, minloglevel=2, **options)
        return model.getvalue()

    with pytest.raises(ValueError, match=r"no-pad.model: model has no \['<pad>'\] token"):
        SentencePieceTokenizer(train(), source="no-pad.model")
    with pytest.raises(ValueError, match="default-options.model: model is not whitespace-exact"):
        SentencePieceTokenizer(train(pad_id=0, bos_id=1, eos_id=2, unk_id=3), source="default-options.model")


def test_verify_fingerprint(tokenizer):
    verify_fingerprint(tokenizer, tokenizer.fingerprint(), "data.array_record")
    with pytest.raises(TokenizerMismatchError, match=r"data.array_record was tokenized with tokenizer sha256 0+,"):
        verify_fingerprint(tokenizer, "0" * 64, "data.array_record")


def test_verify_token_ids():
    verify_token_ids(np.array([[0, 5], [9, 1]]), 10, "batch")
    verify_token_ids([], 10, "batch")
    with pytest.raises(TokenizerMismatchError, match="batch: token id 10 at flat position 2"):
        verify_token_ids(np.array([[0, 5], [10, 1]]), 10, "batch")
    with pytest.raises(TokenizerMismatchError, match="token id -3"):
        verify_token_ids([-3], 10, "batch")
    with pytest.raises(TokenizerMismatchError, match="must be integers"):
        verify_token_ids([1.5], 10, "batch")


def test_document_chunks_split_at_line_ends_within_the_byte_limit():
    text = "".join(f"line {i} é\n" for i in range(100)) + "x" * 50 + "😀" * 20
    chunks = list(document_chunks(text, 64))
    assert "".join(chunks) == text
    assert all(len(c.encode("utf-8")) <= 64 for c in chunks)
    assert all(c.endswith("\n") for c in chunks[:-3])
    with pytest.raises(ValueError, match="max_bytes"):
        list(document_chunks(text, 2))


def test_training_is_deterministic_and_validates_arguments():
    docs = [p.read_text(encoding="utf-8") for p in stdlib_files(3)[:8]]
    a = train_sentencepiece(docs, 512, num_threads=2)
    b = train_sentencepiece(docs, 512, num_threads=2)
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(ValueError, match="vocab_size 100 is too small"):
        train_sentencepiece(docs, 100)
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(docs, 512, model_type="word")
    with pytest.raises(ValueError, match="no training text"):
        train_sentencepiece(["", ""], 512)


def test_cli_trains_writes_and_reports_progress(tmp_path):
    out = tmp_path / "tok" / "code"
    log = io.StringIO()
    path = train_tokenizer.main(
        ["--input_glob", str(STDLIB / "json" / "*.py"), "--input_glob", str(STDLIB / "email" / "*.py"),
         "--vocab_size", "600", "--out", str(out), "--num_threads", "2"], stream=log)
    assert path == str(out) + ".model"
    loaded = SentencePieceTokenizer.load(path)
    assert loaded.vocab_size == 600
    text = log.getvalue()
    n_files = len(list((STDLIB / "json").glob("*.py"))) + len(list((STDLIB / "email").glob("*.py")))
    assert f"read {n_files}/{n_files} files" in text and "done reading" in text
    assert loaded.fingerprint() in text


def _learned_pieces(tok):
    fixed = set(tok.special_token_ids.values())
    return [tok.piece(i) for i in range(tok.vocab_size)
            if i not in fixed and not tok.piece(i).startswith("<0x")]


def test_cli_split_flags_reach_the_trainer(tmp_path):
    args = ["--input_glob", str(STDLIB / "json" / "*.py"), "--input_glob", str(STDLIB / "email" / "*.py"),
            "--vocab_size", "800"]
    default = SentencePieceTokenizer.load(train_tokenizer.main(args + ["--out", str(tmp_path / "a")],
                                                               stream=io.StringIO()))
    split = SentencePieceTokenizer.load(train_tokenizer.main(
        args + ["--out", str(tmp_path / "b"), "--split_by_whitespace", "--split_by_unicode_script"],
        stream=io.StringIO()))

    def spans_whitespace(piece):  # whitespace after other text inside one piece
        return "\u2581" in piece.lstrip("\u2581")

    def spans_scripts(piece):  # letters and punctuation in one piece
        core = piece.strip("\u2581")
        return any(c.isalpha() for c in core) and any(c in "_():,." for c in core)

    assert any(spans_whitespace(p) for p in _learned_pieces(default))
    assert any(spans_scripts(p) for p in _learned_pieces(default))
    assert not any(spans_whitespace(p) for p in _learned_pieces(split))
    assert not any(spans_scripts(p) for p in _learned_pieces(split))


def test_cli_reports_a_glob_that_matches_nothing(tmp_path):
    with pytest.raises(SystemExit, match="matched no files"):
        train_tokenizer.main(["--input_glob", str(tmp_path / "*.py"), "--out", str(tmp_path / "t")],
                             stream=io.StringIO())


def test_cli_skips_files_that_are_not_utf8(tmp_path):
    (tmp_path / "good.py").write_text((STDLIB / "json" / "decoder.py").read_text(encoding="utf-8"))
    (tmp_path / "bad.py").write_bytes(b"x = '\xff\xfe'\n")
    log = io.StringIO()
    train_tokenizer.main(["--input_glob", str(tmp_path / "*.py"), "--vocab_size", "400",
                          "--out", str(tmp_path / "t")], stream=log)
    assert "skipped 1 not UTF-8" in log.getvalue()


def test_input_pipeline_modules_import_no_jax_and_no_tensorflow():
    # input_pipeline modules run in grain workers: no jax, no hrm_jax (and TFDS must not pull TensorFlow).
    import subprocess
    modules = ["tokenizer", "tokenizer_training", "train_tokenizer", "mbpp_data", "mbpp", "prompts", "humaneval"]
    code = ("import json, sys; " + "; ".join(f"import input_pipeline.{m}" for m in modules) + "; "
            "print(json.dumps([m for m in ('jax', 'hrm_jax', 'tensorflow') if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO_ROOT)
    assert json.loads(proc.stdout) == []
