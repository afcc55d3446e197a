"""GGUF export (llama.cpp hrm_text): tensors round-trip per quant type within the quant's bound; the validator
names a wrong architecture, a missing tensor, a wrong shape and a truncated file."""

import pathlib
import sys

import gguf
import numpy as np
import pytest
from flax import nnx

from hrm_jax.export import gguf_validate, gguf_writer
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fixtures_tokenizer import session_tokenizer  # noqa: E402


def tiny_model(tokenizer, **overrides):
    cfg = HrmTextConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=96, num_layers_per_stack=2,
                        num_attention_heads=2, head_dim=32, H_cycles=2, L_cycles=2, max_position_embeddings=128,
                        prefix_lm=False, pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id,
                        eos_token_id=tokenizer.eos_id, **overrides)
    model = HrmText(cfg, rngs=nnx.Rngs(0))
    model.z_L_init.set_value(np.random.default_rng(0).normal(size=cfg.hidden_size).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model(session_tokenizer())


@pytest.fixture(scope="module")
def files(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf")
    return {q: gguf_writer.write_gguf(model, session_tokenizer(), d / f"m-{q}.gguf", q)
            for q in ("f32", "f16", "q8_0", "q4_0")}


def _blocks(x, n=32):
    return x.reshape(*x.shape[:-1], x.shape[-1] // n, n)


def test_names_metadata_and_f32_round_trip_exactly(model, files):
    summary = gguf_validate.validate_gguf(files["f32"])
    lps = model.config.num_layers_per_stack
    assert summary.tensor_count == 3 + 8 * 2 * lps
    assert summary.tensor_types == {"F32": summary.tensor_count}
    meta = summary.metadata
    assert meta["general.architecture"] == "hrm_text"
    assert meta["hrm_text.block_count"] == lps * 2 * 3
    assert meta["hrm_text.hrm.layers_per_stack"] == lps and meta["hrm_text.hrm.prefix_lm"] is False
    assert meta["hrm_text.embedding_scale"] == pytest.approx(model.config.embedding_scale)
    assert meta["tokenizer.ggml.model"] == "llama"
    assert meta["tokenizer.ggml.add_bos_token"] is False and meta["tokenizer.ggml.add_space_prefix"] is False
    tok = session_tokenizer()
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"],
            meta["tokenizer.ggml.padding_token_id"], meta["tokenizer.ggml.unknown_token_id"]) == (
        tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id)
    reader = gguf.GGUFReader(str(files["f32"]))
    tokens, types = reader.get_field("tokenizer.ggml.tokens").contents(), reader.get_field(
        "tokenizer.ggml.token_type").contents()
    assert len(tokens) == tok.vocab_size
    assert [tokens[i] for i in (0, 1, 2, 3)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert types[tok.special_id("<CODE>")] == 4 and types[tok.bos_id] == 3 and types[tok.unk_id] == 2
    assert types[tok.vocab_size - 1] == 1 and tokens.count("<0x41>") == 1 and types[tokens.index("<0x41>")] == 6
    back = gguf_validate.read_tensors(files["f32"])
    want = gguf_writer.gguf_tensors(model)
    assert list(back) == list(want)
    for name in want:
        np.testing.assert_array_equal(back[name], want[name], err_msg=name)
    # the GGUF halves are the fused HF tensor's quarters
    sd_gqkv = np.concatenate([want[f"blk.{lps}.{n}.weight"] for n in ("attn_gate", "attn_q", "attn_k", "attn_v")])
    from hrm_jax import hf
    np.testing.assert_array_equal(sd_gqkv, hf.state_dict(model)["model.H_module.layers.0.attn.gqkv_proj.weight"])


@pytest.mark.parametrize("quant,ggml_type", [("f16", "F16"), ("q8_0", "Q8_0"), ("q4_0", "Q4_0")])
def test_quantized_tensors_are_within_the_quant_bound(model, files, quant, ggml_type):
    summary = gguf_validate.validate_gguf(files[quant])
    assert summary.tensor_types == {ggml_type: summary.tensor_count - 1, "F32": 1}  # hrm.z_l_init stays F32
    back, want = gguf_validate.read_tensors(files[quant]), gguf_writer.gguf_tensors(model)
    np.testing.assert_array_equal(back["hrm.z_l_init"], want["hrm.z_l_init"])
    worst = 0.0
    for name, x in want.items():
        if x.ndim == 1:
            continue
        err = np.abs(back[name] - x)
        if quant == "f16":
            bound = np.abs(x) * 2.0 ** -11 + 2.0 ** -24
        else:  # per 32-block: q8_0 rounds to amax/127 steps, q4_0 to amax/8 steps (one step at the clipped end);
            # the block scale is stored as f16 (relative error 2^-11, times up to 127 resp. 8 steps)
            amax = np.abs(_blocks(x)).max(-1, keepdims=True)
            step = amax / (127.0 if quant == "q8_0" else 8.0)
            half = 0.5 + 127 * 2.0 ** -11 if quant == "q8_0" else 1.0 + 8 * 2.0 ** -11
            bound = np.broadcast_to(step * half + 1e-7, _blocks(x).shape)
            err = _blocks(err)
        assert np.all(err <= bound), (name, float(err.max()))
        worst = max(worst, float((err / bound).max()))
    print(f"{quant}: worst error / bound = {worst:.3f}")
    assert 0 < worst <= 1


def test_unquantizable_rows_fall_back_to_f16():
    assert gguf_writer.tensor_type(np.zeros((4, 48), np.float32), "q8_0") == gguf.GGMLQuantizationType.F16
    assert gguf_writer.tensor_type(np.zeros((4, 64), np.float32), "q4_0") == gguf.GGMLQuantizationType.Q4_0
    assert gguf_writer.tensor_type(np.zeros((64,), np.float32), "q4_0") == gguf.GGMLQuantizationType.F32
    with pytest.raises(ValueError, match="q5_k"):
        gguf_writer.tensor_type(np.zeros((4, 64), np.float32), "q5_k")


def test_validator_rejects_another_architecture(tmp_path):
    path = tmp_path / "gpt2.gguf"  # llama is read too (the transformer baseline's export)
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(gguf_validate.GGUFValidationError, match="gpt2.gguf: general.architecture is 'gpt2', "
                                                                r"expected one of \('hrm_text', 'llama'\)"):
        gguf_validate.validate_gguf(path)


def test_validator_names_a_missing_tensor_and_a_wrong_shape(model, tmp_path, monkeypatch):
    full = gguf_writer.gguf_tensors(model)
    dropped = {k: v for k, v in full.items() if k != "blk.1.ffn_up.weight"}
    monkeypatch.setattr(gguf_writer, "gguf_tensors", lambda m: dropped)
    path = gguf_writer.write_gguf(model, session_tokenizer(), tmp_path / "drop.gguf", "f32")
    with pytest.raises(gguf_validate.GGUFValidationError, match=r"drop.gguf: 1 tensor\(s\) missing: blk.1.ffn_up"):
        gguf_validate.validate_gguf(path)
    wrong = dict(full, **{"blk.0.attn_q.weight": full["blk.0.attn_q.weight"][:32]})
    monkeypatch.setattr(gguf_writer, "gguf_tensors", lambda m: wrong)
    path = gguf_writer.write_gguf(model, session_tokenizer(), tmp_path / "shape.gguf", "f32")
    with pytest.raises(gguf_validate.GGUFValidationError,
                       match=r"tensor blk.0.attn_q.weight has shape \(32, 64\).*expected \(64, 64\)"):
        gguf_validate.validate_gguf(path)


def test_validator_reports_a_truncated_file(files, tmp_path):
    data = pathlib.Path(files["f16"]).read_bytes()
    for cut in (len(data) - 100, 200):
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(gguf_validate.GGUFValidationError, match=f"cut{cut}.gguf: .*truncated"):
            gguf_validate.validate_gguf(path)


def test_writer_refuses_a_foreign_tokenizer_and_an_unknown_quant(tmp_path):
    tok = session_tokenizer()
    model = tiny_model(tok)
    with pytest.raises(ValueError, match="q3"):
        gguf_writer.write_gguf(model, tok, tmp_path / "x.gguf", "q3")
    other = HrmText(model.config.replace(vocab_size=100, pad_token_id=0), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="vocab_size 100 != tokenizer vocabulary 2048"):
        gguf_writer.write_gguf(other, tok, tmp_path / "y.gguf")
