"""The transformers tokenizer written beside an HRM-Text export encodes and decodes exactly like ours."""

import pathlib
import sys

import pytest
from transformers import AutoTokenizer

from hrm_jax.export import hf_tokenizer
from input_pipeline.mbpp_data import load_mbpp
from input_pipeline.prompts import CODE_MARKER, PROMPT_MARKER, TESTS_MARKER, instruction_example

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402

EDGE_TEXTS = ("a\u2581b  \u2581", "<s> x </s><pad><unk>", "  def f():\n\tx = 1  \r\n\n    return x\t \n",
              "h\u00e9llo \u2603 \U0001d518 \u65e5\u672c", "12345 007", "", " ", "<CODE><CODE>x<PROMPT>")


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory):
    folder = hf_tokenizer.save_tokenizer(session_tokenizer(), tmp_path_factory.mktemp("hftok"))
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def test_special_tokens(hf_tok):
    tok = session_tokenizer()
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id, hf_tok.unk_token_id) == (
        tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id)
    assert len(hf_tok) == tok.vocab_size
    for name, i in tok.special_token_ids.items():
        assert hf_tok.convert_tokens_to_ids(name) == i, name
    assert hf_tok.encode("x", add_special_tokens=True) == tok.encode("x")  # no bos/eos added


def test_every_mbpp_prompt_and_code_encodes_to_our_ids_and_decodes_back(hf_tok):
    tok = session_tokenizer()
    records = [r for split in ("prompt", "test", "validation", "train") for r in load_mbpp(split, data_dir=data_dir())]
    texts = [PROMPT_MARKER + r["text"] + TESTS_MARKER + "\n".join(r["test_list"]) + CODE_MARKER + r["code"]
             for r in records] + list(EDGE_TEXTS)
    same_ids = same_text = 0
    for text in texts:
        ids = tok.encode(text)
        same_ids += hf_tok.encode(text, add_special_tokens=False) == ids
        same_text += hf_tok.decode(ids, skip_special_tokens=True) == tok.decode(ids) == text
    print(f"{same_ids}/{len(texts)} id-equal, {same_text}/{len(texts)} decode-equal")
    assert same_ids == same_text == len(texts) == 974 + len(EDGE_TEXTS)
    ids, _ = instruction_example(records[10], tok)  # the training example, eos included
    assert hf_tok.decode(ids.tolist(), skip_special_tokens=True) == tok.decode(ids)


def test_a_non_bpe_or_dummy_prefix_model_is_refused():
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(session_tokenizer().serialized_model())
    proto.normalizer_spec.add_dummy_prefix = True

    class Fake:
        def serialized_model(self):
            return proto.SerializeToString()

    with pytest.raises(ValueError, match="add_dummy_prefix=True"):
        hf_tokenizer.sp_pieces(Fake())
