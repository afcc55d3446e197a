"""`--config.mode=export` end to end: train configs/mbpp.py:tiny and configs/sudoku.py:tiny for 2 steps, export
(hf, gguf, torch) and read the results back; transformers' greedy generation from the exported folder equals
JAX's token for token."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from hrm_jax import generate as gen, hf, restore, train
from hrm_jax.export import gguf_validate, run as export_run, torch_hrm
from hrm_jax.interop import _layouts

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from configs import mbpp, sudoku  # noqa: E402
from fixtures_tokenizer import data_dir, session_tokenizer  # noqa: E402


def _mbpp_config(tokenizer_file, **export):
    c = mbpp.get_config("tiny")
    c.data.tokenizer = tokenizer_file
    c.data.data_dir = str(data_dir())
    c.data.seq_len = 96
    c.train.steps = 2
    c.train.eval_batches = 1
    c.optim.lr_warmup_steps = 1
    c.mode = "export"
    c.export.update(export)
    return c


@pytest.fixture(scope="module")
def mbpp_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mbpp_run")
    tokenizer_file = str(workdir / "code.model")
    session_tokenizer().save(tokenizer_file)
    train.train_and_evaluate(_mbpp_config(tokenizer_file), str(workdir))
    return workdir, tokenizer_file


def test_hf_export_loads_offline_and_generates_like_jax(mbpp_run):
    workdir, tokenizer_file = mbpp_run
    out = export_run.export_checkpoint(_mbpp_config(tokenizer_file, format="hf"), str(workdir))
    assert out == workdir / "export" / "hf"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(out))
    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    hf_model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    jax_model = hf.from_pretrained(out)
    prompt = "<PROMPT>Write a function to add two numbers.<TESTS>assert add(1, 2) == 3<CODE>def"
    ids = hf_tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    assert ids[0].tolist() == session_tokenizer().encode(prompt)
    n = 12
    with torch.no_grad():
        hf_out = hf_model.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=hf_tok.eos_token_id,
                                   pad_token_id=hf_tok.pad_token_id)[0, ids.shape[1]:].tolist()
    sampling = gen.SamplingConfig(max_new_tokens=n, stop_tokens=(hf_tok.eos_token_id,),
                                  pad_token_id=hf_tok.pad_token_id)
    g = gen.generate(jax_model, np.asarray(ids), sampling)
    jax_out = np.asarray(g.tokens_BN)[0, :int(g.num_tokens_B[0])].tolist()
    print(f"greedy: {len(jax_out)} JAX tokens, HF equal: {hf_out == jax_out}")
    assert hf_out == jax_out
    assert hf_tok.decode(hf_out, skip_special_tokens=True) == session_tokenizer().decode(jax_out)


def test_gguf_export_through_main_validates(mbpp_run):
    workdir, tokenizer_file = mbpp_run
    out = workdir / "q8.gguf"
    cmd = [sys.executable, "-m", "hrm_jax.main", "--config=configs/mbpp.py:tiny", f"--workdir={workdir}",
           f"--config.data.tokenizer={tokenizer_file}", f"--config.data.data_dir={data_dir()}",
           "--config.data.seq_len=96", "--config.train.steps=2", "--config.mode=export",
           "--config.export.format=gguf", "--config.export.quant=q8_0", f"--config.export.out={out}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = gguf_validate.validate_gguf(out)
    assert summary.tensor_types == {"Q8_0": summary.tensor_count - 1, "F32": 1}
    assert summary.metadata["hrm_text.hrm.layers_per_stack"] == 1


def test_format_that_does_not_fit_the_family_is_named(mbpp_run):
    workdir, tokenizer_file = mbpp_run
    with pytest.raises(export_run.ExportError, match="export.quant='q3_k'"):
        export_run.export_checkpoint(_mbpp_config(tokenizer_file, format="gguf", quant="q3_k"), str(workdir))
    c = sudoku.get_config("tiny")
    c.export.format = "gguf"
    with pytest.raises(export_run.ExportError, match="format='gguf' does not fit model.family='hrm'.*format=torch"):
        export_run.export_checkpoint(c, "/nonexistent")


def test_sudoku_torch_export_has_the_original_names_and_config(tmp_path):
    c = sudoku.get_config("tiny")
    c.data.generate_num_train = c.data.generate_num_test = 8
    c.data.generate_num_aug = 1
    c.data.global_batch_size = 8
    c.train.steps = 2
    c.train.eval_batches = 1
    train.train_and_evaluate(c, str(tmp_path))
    c.mode, c.export.format = "export", "torch"
    out = export_run.export_checkpoint(c, str(tmp_path))
    assert out == tmp_path / "export" / "torch"
    cfg = json.loads((out / "config.json").read_text())
    assert list(cfg) == list(torch_hrm.ORIGINAL_FIELDS)
    assert cfg["batch_size"] == 8 and cfg["hidden_size"] == 64 and cfg["puzzle_emb_ndim"] == 64
    sd = load_file(str(out / "model.safetensors"))
    model_config = restore.load_for_inference(str(tmp_path)).family.model_config
    assert cfg["vocab_size"] == model_config.vocab_size and cfg["seq_len"] == model_config.seq_len
    layouts = _layouts(model_config)
    assert set(sd) == {"model.inner." + k for k in layouts}
    assert sd["model.inner.H_level.layers.0.self_attn.qkv_proj.weight"].shape == (3 * 64, 64)
    assert sd["model.inner.puzzle_emb.weights"].shape == (model_config.num_puzzle_identifiers, 64)
    assert all(v.dtype == np.float32 for v in sd.values())
