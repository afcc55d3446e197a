"""llama.cpp CPU inference of an exported GGUF: a clear error without llama_cpp; with it (slow), F32 logits within
1e-3 of JAX and the same greedy tokens."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from hrm_jax import cpu_generate

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fixtures_tokenizer import session_tokenizer  # noqa: E402

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(HAVE_LLAMA, reason="llama_cpp is installed")
def test_missing_llama_cpp_says_how_to_install(capsys):
    assert cpu_generate.main(["x.gguf", "--prompt", "hi"]) == 2
    assert "pip install llama-cpp-python" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_LLAMA, reason="needs llama-cpp-python with hrm_text")
def test_llama_cpp_f32_logits_and_greedy_tokens_match_jax(tmp_path):
    import jax.numpy as jnp

    from hrm_jax import generate as gen
    from hrm_jax.export import gguf_writer
    from test_export_gguf import tiny_model

    tok = session_tokenizer()
    model = tiny_model(tok)
    path = gguf_writer.write_gguf(model, tok, tmp_path / "m.gguf", "f32", prefix_lm=False)
    llm = cpu_generate.load_llama(str(path), n_ctx=128)
    prompt = "<PROMPT>add two numbers<CODE>def add(a, b):\n"
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    assert ids == tok.encode(prompt)
    llm.reset()
    llm.eval(ids)
    cpp_logits = np.asarray(llm.scores[:len(ids)])
    jax_logits = np.asarray(model(jnp.asarray([ids]))[0])
    assert np.abs(cpp_logits - jax_logits).max() <= 1e-3
    _, cpp_tokens = cpu_generate.generate(llm, prompt, 8)
    g = gen.generate(model, np.asarray([ids]), gen.SamplingConfig(max_new_tokens=8, stop_tokens=(tok.eos_id,)))
    assert cpp_tokens == np.asarray(g.tokens_BN)[0, :int(g.num_tokens_B[0])].tolist()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_LLAMA, reason="needs llama-cpp-python with hrm_text")
def test_k_quant_through_llama_cpp_validates_and_tracks_f32(tmp_path):
    from hrm_jax.export import gguf_kquants, gguf_validate, gguf_writer
    from test_export_gguf import tiny_model

    tok = session_tokenizer()
    model = tiny_model(tok)
    f32 = gguf_writer.write_gguf(model, tok, tmp_path / "m.gguf", "f32", prefix_lm=False)
    q = gguf_kquants.quantize(f32, tmp_path / "m-q4_k_m.gguf", "q4_k_m")
    summary = gguf_validate.validate_gguf(q)
    assert summary.architecture == "hrm_text" and q.stat().st_size < f32.stat().st_size
    prompt = "<PROMPT>add two numbers<CODE>def add(a, b):\n"
    logits = []
    for path in (f32, q):
        llm = cpu_generate.load_llama(str(path), n_ctx=128)
        llm.reset()
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.eval(ids)
        logits.append(np.asarray(llm.scores[:len(ids)]))
    assert np.corrcoef(logits[0].ravel(), logits[1].ravel())[0, 1] > 0.9


def test_k_quant_names_are_checked():
    from hrm_jax.export import gguf_kquants

    with pytest.raises(ValueError, match="q4_k_m"):
        gguf_kquants.quantize("a.gguf", "b.gguf", "q4_k_x")


def test_k_quant_fallbacks_are_found_and_reported(tmp_path, caplog):
    """A file whose matrices are not K types (here: a Q8_0 file, as llama.cpp leaves 64-wide rows) is reported in
    one warning line naming the types; an F32 vector is never counted."""
    import logging

    from hrm_jax.export import gguf_kquants, gguf_writer
    from test_export_gguf import tiny_model

    tok = session_tokenizer()
    path = gguf_writer.write_gguf(tiny_model(tok), tok, tmp_path / "m.gguf", "q8_0", prefix_lm=False)
    fallen = gguf_kquants.fallback_tensors(path)
    assert fallen and set(fallen.values()) <= {"Q8_0", "F32", "F16"} and "hrm.z_l_init" not in fallen
    assert "token_embd.weight" in fallen
    with caplog.at_level(logging.WARNING):
        assert gguf_kquants.report_fallbacks(path, "q4_k_m") == fallen
    [line] = [r.getMessage() for r in caplog.records if "not q4_k_m" in r.getMessage()]
    assert f"{len(fallen)} matrices are not q4_k_m but" in line and "multiple of 256" in line and "\n" not in line
