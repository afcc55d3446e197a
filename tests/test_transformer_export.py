"""The causal transformer baseline exported as llama: transformers' LlamaForCausalLM computes our logits from the
HF folder; the llama GGUF validates, round-trips its tensors, and an independent numpy forward with llama.cpp's
conventions (interleaved RoPE on the permuted q/k rows, weighted RMSNorm) computes our logits from it;
`--config.mode=export` writes both from a trained run; llama.cpp itself (slow, optional)."""

import importlib.util
import json
import pathlib
import sys

import gguf
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from hrm_jax import generate as gen, train
from hrm_jax.export import gguf_validate, gguf_writer, hf_folder, llama, run as export_run
from hrm_jax.model.transformer import Transformer, TransformerConfig

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from configs import mbpp  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
LAYERS = 2


def tiny_causal(tokenizer, **changes) -> Transformer:
    cfg = TransformerConfig(vocab_size=tokenizer.vocab_size, seq_len=64, num_layers=LAYERS, hidden_size=64,
                            num_heads=2, head_dim=32, intermediate_size=96, causal=True, pre_norm=True,
                            forward_dtype="float32", max_position_embeddings=128, rope_theta=5000.0,
                            pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id,
                            eos_token_id=tokenizer.eos_id, **changes)
    return Transformer(cfg, rngs=nnx.Rngs(3))


@pytest.fixture(scope="module")
def model():
    return tiny_causal(session_tokenizer())


def _ids(n=20, batch=2, seed=0):
    return np.random.default_rng(seed).integers(3, session_tokenizer().vocab_size, (batch, n))


def test_transformers_llama_computes_our_logits(model, tmp_path):
    folder = hf_folder.export_hf_folder(model, session_tokenizer(), tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    hf_model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    assert isinstance(hf_model, LlamaForCausalLM)
    ids = _ids()
    mask = np.ones_like(ids)
    mask[1, :5] = 0  # a left-padded row: keys masked, positions from the mask as in generate
    positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
    with torch.no_grad():
        theirs = hf_model(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
                          position_ids=torch.as_tensor(positions)).logits.numpy()
    ours = np.asarray(model.causal_logits(jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(positions)))
    real = mask.astype(bool)
    err = np.abs(theirs - ours)[real].max()
    print(f"transformers LlamaForCausalLM vs JAX, fp32: max |logit diff| {err:.2e}")
    assert err <= 1e-4
    hf_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert hf_tok.encode("def f(x):", add_special_tokens=False) == session_tokenizer().encode("def f(x):")


def _rms(x, w, eps):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps) * w


def llama_cpp_style_logits(t: dict[str, np.ndarray], meta: dict, ids: np.ndarray) -> np.ndarray:
    """An independent float64 llama forward over GGUF tensors with llama.cpp's conventions: RoPE rotates adjacent
    pairs (2i, 2i+1) of each head (LLAMA_ROPE_TYPE_NORM), which is why the writer permutes attn_q / attn_k."""
    get = lambda k: meta[f"llama.{k}"]  # noqa: E731
    heads, hd, eps, base = get("attention.head_count"), get("attention.key_length"), \
        get("attention.layer_norm_rms_epsilon"), get("rope.freq_base")
    s = len(ids)
    x = t["token_embd.weight"][ids].astype(np.float64)
    theta = np.arange(s)[:, None] * base ** (-np.arange(0, hd, 2) / hd)  # [S, hd/2]
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]

    def rope(q):  # [S, N, hd], pairs (2i, 2i+1)
        a, b = q[..., 0::2], q[..., 1::2]
        out = np.empty_like(q)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    causal = np.tril(np.ones((s, s), bool))
    for blk in range(get("block_count")):
        w = lambda n: t[f"blk.{blk}.{n}.weight"].astype(np.float64)  # noqa: E731
        h = _rms(x, w("attn_norm"), eps)
        q, k, v = ((h @ w(n).T).reshape(s, heads, hd) for n in ("attn_q", "attn_k", "attn_v"))
        q, k = rope(q), rope(k)
        scores = np.einsum("qnh,knh->nqk", q, k) / np.sqrt(hd)
        scores = np.where(causal[None], scores, -np.inf)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x + np.einsum("nqk,knh->qnh", p, v).reshape(s, heads * hd) @ w("attn_output").T
        h = _rms(x, w("ffn_norm"), eps)
        g = h @ w("ffn_gate").T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w("ffn_up").T)) @ w("ffn_down").T
    return _rms(x, t["output_norm.weight"], eps) @ t["output.weight"].T.astype(np.float64)


@pytest.fixture(scope="module")
def gguf_files(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("llama_gguf")
    return {q: gguf_writer.write_gguf(model, session_tokenizer(), d / f"m-{q}.gguf", q) for q in ("f32", "q8_0")}


def test_llama_gguf_validates_round_trips_and_computes_our_logits(model, gguf_files):
    summary = gguf_validate.validate_gguf(gguf_files["f32"])
    assert summary.architecture == "llama" and summary.tensor_count == 3 + 9 * LAYERS
    assert summary.tensor_types == {"F32": summary.tensor_count}
    meta = summary.metadata
    assert (meta["llama.block_count"], meta["llama.embedding_length"], meta["llama.attention.head_count"],
            meta["llama.attention.key_length"], meta["llama.rope.dimension_count"]) == (LAYERS, 64, 2, 32, 32)
    assert meta["llama.rope.freq_base"] == pytest.approx(5000.0)
    assert meta["tokenizer.ggml.model"] == "llama" and meta["tokenizer.ggml.add_bos_token"] is False
    back = gguf_validate.read_tensors(gguf_files["f32"])
    want = llama.gguf_tensors(model)
    assert list(back) == list(want)
    for name in want:
        np.testing.assert_array_equal(back[name], want[name], err_msg=name)
    ids = _ids(n=24, batch=1, seed=4)[0]
    theirs = llama_cpp_style_logits(back, meta, ids)
    ours = np.asarray(model.causal_logits(jnp.asarray(ids[None])))[0]
    err = np.abs(theirs - ours).max()
    print(f"llama.cpp-convention numpy forward over the F32 GGUF vs JAX: max |logit diff| {err:.2e}")
    assert err <= 1e-4
    # Without the q/k permutation the interleaved-RoPE reader computes something else (the test can fail).
    unpermuted = dict(back)
    for blk in range(LAYERS):
        for n in ("attn_q", "attn_k"):
            unpermuted[f"blk.{blk}.{n}.weight"] = llama.llama_state_dict(model)[
                f"model.layers.{blk}.self_attn.{n[-1]}_proj.weight"]
    assert np.abs(llama_cpp_style_logits(unpermuted, meta, ids) - ours).max() > 1e-2


def test_quantized_llama_gguf_validates_and_tracks_f32(model, gguf_files):
    summary = gguf_validate.validate_gguf(gguf_files["q8_0"])
    assert summary.tensor_types == {"F32": 1 + 2 * LAYERS, "Q8_0": 2 + 7 * LAYERS}  # norms stay F32
    f32, q8 = (gguf_validate.read_tensors(gguf_files[q]) for q in ("f32", "q8_0"))
    for name, w in f32.items():
        bound = np.abs(w).max() / 127 + 1e-7  # Q8_0: one fp16 scale per 32, 8-bit codes
        assert np.abs(q8[name] - w).max() <= bound, name


def test_validator_names_a_missing_llama_tensor_and_a_wrong_shape(model, tmp_path, monkeypatch):
    full = llama.gguf_tensors(model)
    dropped = {k: v for k, v in full.items() if k != "blk.1.ffn_norm.weight"}
    monkeypatch.setattr(llama, "gguf_tensors", lambda m: dropped)
    path = gguf_writer.write_gguf(model, session_tokenizer(), tmp_path / "drop.gguf", "f32")
    with pytest.raises(gguf_validate.GGUFValidationError, match=r"drop.gguf: 1 tensor\(s\) missing: blk.1.ffn_norm"):
        gguf_validate.validate_gguf(path)
    bad = dict(full, **{"blk.0.attn_k.weight": full["blk.0.attn_k.weight"][:32]})
    monkeypatch.setattr(llama, "gguf_tensors", lambda m: bad)
    path = gguf_writer.write_gguf(model, session_tokenizer(), tmp_path / "shape.gguf", "f32")
    with pytest.raises(gguf_validate.GGUFValidationError,
                       match=r"tensor blk.0.attn_k.weight has shape \(32, 64\).*expected \(64, 64\)"):
        gguf_validate.validate_gguf(path)


def test_only_the_causal_transformer_exports_as_llama():
    cfg = TransformerConfig(num_layers=1, hidden_size=32, num_heads=2, head_dim=16, intermediate_size=64)
    puzzle = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="puzzle form"):
        llama.llama_state_dict(puzzle)
    export_run.check_format("hf", "transformer", "f16")
    export_run.check_format("gguf", "transformer", "q8_0")
    with pytest.raises(export_run.ExportError, match="format='torch' does not fit model.family='transformer'"):
        export_run.check_format("torch", "transformer", "f16")


# ----- end to end: train configs/mbpp.py:tiny with the family switch, export, load ---------------------------------

def _mbpp_config(tokenizer_file, **export):
    c = mbpp.get_config("tiny")
    c.model.family = "transformer"
    c.data.tokenizer = tokenizer_file
    c.data.data_dir = str(data_dir())
    c.data.seq_len = 96
    c.train.steps = 2
    c.train.eval_batches = 1
    c.optim.lr_warmup_steps = 1
    c.mode = "export"
    c.export.update(export)
    return c


def test_export_mode_writes_a_llama_folder_and_gguf_that_generate_like_jax(tmp_path):
    tokenizer_file = str(tmp_path / "code.model")
    session_tokenizer().save(tokenizer_file)
    train.train_and_evaluate(_mbpp_config(tokenizer_file), str(tmp_path))
    out = export_run.export_checkpoint(_mbpp_config(tokenizer_file, format="hf"), str(tmp_path))
    run, state = train.restore_trained(_mbpp_config(tokenizer_file), str(tmp_path))
    jax_model = run.trainer.model(state)
    hf_model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    prompt = session_tokenizer().encode("<PROMPT>Write a function to add two numbers.<CODE>def")
    n = 10
    with torch.no_grad():
        hf_tokens = hf_model.generate(torch.as_tensor([prompt]), max_new_tokens=n, min_new_tokens=n,
                                      do_sample=False)[0, len(prompt):].tolist()
    jax_tokens = np.asarray(gen.generate(jax_model, np.asarray([prompt]),
                                         gen.SamplingConfig(max_new_tokens=n)).tokens_BN)[0].tolist()
    assert hf_tokens == jax_tokens
    g = export_run.export_checkpoint(_mbpp_config(tokenizer_file, format="gguf", quant="f32"), str(tmp_path))
    summary = gguf_validate.validate_gguf(g)
    assert summary.architecture == "llama"
    assert gguf.GGUFReader(str(g)).get_field("llama.block_count").contents() == jax_model.config.num_layers


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_LLAMA, reason="needs llama-cpp-python")
def test_llama_cpp_f32_logits_match_jax(model, gguf_files):
    from hrm_jax import cpu_generate

    llm = cpu_generate.load_llama(str(gguf_files["f32"]), n_ctx=128)
    ids = session_tokenizer().encode("<PROMPT>add two numbers<CODE>def add(a, b):\n")
    llm.reset()
    llm.eval(ids)
    cpp = np.asarray(llm.scores[:len(ids)])
    ours = np.asarray(model.causal_logits(jnp.asarray([ids])))[0]
    assert np.abs(cpp - ours).max() <= 1e-3
