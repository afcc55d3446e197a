"""Quantized CPU inference through llama.cpp: speed, memory and agreement with JAX per GGUF quant type.

    pip install llama-cpp-python==0.3.36      # optional: compiles llama.cpp (10-25 min on 2 cores)
    python benchmarks/gguf_cpu.py --presets code-30m code-100m --tokenizer /path/code16k.model

For each HRM-Text preset (random weights, the authors' init) and each quant type (f32, f16, q8_0, q4_0, and the
K-quants of `hrm_jax.export.gguf_kquants`: the default `--quants`) the
model is written as GGUF and run by llama.cpp in a fresh process (2 threads), which reports:
  * decode tok/s: 128 greedy new tokens after an MBPP prompt (eos ignored, so every run decodes 128);
  * end-to-end seconds for that MBPP problem: load + prompt + 128 new tokens;
  * peak RSS of the llama.cpp process itself (VmHWM of /proc/self/status; ru_maxrss would carry the parent's
    peak across exec);
  * agreement with JAX fp32 on the prompt's positions: top-1 agreement and mean KL(JAX || llama.cpp).
Targets (issue #9): < 1 s per MBPP problem with 128 new tokens and < 2 GB RSS for the ~30M model at Q8_0.
Not a unit test: it prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from hrm_jax.export import gguf_kquants  # noqa: E402 (no JAX: a list of names)

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from hrm_jax import cpu_generate
llm = cpu_generate.load_llama(sys.argv[1], n_ctx=1024, n_threads=2, n_threads_batch=2)
ids = json.loads(sys.argv[2])
llm.reset()
llm.eval(ids)
prompt_logits = [list(map(float, row)) for row in llm.scores[:len(ids)]]
t1 = time.perf_counter()
new = []
for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
    new.append(int(token))
    if len(new) >= 128:
        break
t2 = time.perf_counter()
print(json.dumps({"load_and_prompt_s": t1 - t0, "decode_s": t2 - t1, "total_s": t2 - t0, "new": len(new),
                  "rss_mb": peak_rss_mb(), "logits": prompt_logits}))
"""
# The child's own peak: VmHWM of /proc/self/status. (ru_maxrss survives exec, so it would keep the JAX parent's
# ~800 MB when the child is started from it.)
CHILD = r"""
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
""" + CHILD


DEFAULT_QUANTS = ("f32", "f16", "q8_0", "q4_0", *gguf_kquants.K_QUANTS)  # as the docstring says


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["code-30m", "code-100m"])
    p.add_argument("--quants", nargs="+", default=list(DEFAULT_QUANTS))
    p.add_argument("--tokenizer", default="", help="a SentencePiece .model (its vocabulary sizes the model)")
    p.add_argument("--run", default="", help="also a trained run: its workdir (tokenizer and checkpoint from it)")
    args = p.parse_args(argv)

    import jax.numpy as jnp
    from flax import nnx

    from hrm_jax.export import gguf_writer
    from hrm_jax.model.hrm_text import HrmText, num_params, preset
    from input_pipeline.mbpp_data import load_mbpp
    from input_pipeline.tokenizer import SentencePieceTokenizer

    import llama_cpp  # noqa: F401  (fail early with the real error)

    models = []  # (name, model, tokenizer)
    if args.run:
        from hrm_jax import restore

        restored = restore.load_for_inference(args.run)  # the model the checkpoint holds, weights only
        models.append((f"trained {restored.config.model.hrm_text.preset}", restored.model, restored.tokenizer))
    if args.tokenizer:
        tok = SentencePieceTokenizer.load(args.tokenizer)
        for name in args.presets:
            config = preset(name).replace(vocab_size=tok.vocab_size, pad_token_id=tok.pad_id, bos_token_id=tok.bos_id,
                                          eos_token_id=tok.eos_id)
            models.append((name, HrmText(config, init="authors", rngs=nnx.Rngs(0)), tok))
    task = load_mbpp("test")[0]
    prompt = f"<PROMPT>{task['text']}<TESTS>{chr(10).join(task['test_list'])}<CODE>"
    print(f"MBPP task {task['task_id']}: 128 new tokens; llama.cpp 2 threads; load average {os.getloadavg()[0]:.1f}")
    header = f"{'model':<20} {'quant':<6} {'file MB':>8} {'decode tok/s':>12} {'problem s':>10} {'RSS MB':>8} " \
             f"{'top-1':>6} {'KL':>9}"
    print(header)
    for name, model, tok in models:
        config = model.config
        ids = tok.encode(prompt)
        reference = np.asarray(model(jnp.asarray([ids]))[0], np.float64)
        with tempfile.TemporaryDirectory() as tmp:
            for quant in args.quants:
                path = pathlib.Path(tmp) / f"{name.replace(' ', '_').replace(':', '_')}-{quant}.gguf"
                if quant in gguf_kquants.K_QUANTS:  # llama.cpp's own quantizer, from an F32 file
                    f32 = gguf_writer.write_gguf(model, tok, path.with_suffix(".f32.gguf"), "f32", prefix_lm=False)
                    gguf_kquants.quantize(f32, path, quant)  # warns when matrices fall back to a legacy type
                    f32.unlink()
                else:
                    gguf_writer.write_gguf(model, tok, path, quant, prefix_lm=False)
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(ids)], cwd=REPO,
                                     capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(out.stderr[-3000:])
                r = json.loads(out.stdout.strip().splitlines()[-1])
                cpp = np.asarray(r["logits"], np.float64)
                top1 = float(np.mean(cpp.argmax(-1) == reference.argmax(-1)))
                pr, pc = softmax(reference), softmax(cpp)
                kl = float(np.mean(np.sum(pr * (np.log(pr + 1e-30) - np.log(pc + 1e-30)), -1)))
                print(f"{name:<20} {quant:<6} {path.stat().st_size / 2**20:>8.1f} {r['new'] / r['decode_s']:>12.1f} "
                      f"{r['total_s']:>10.2f} {r['rss_mb']:>8.0f} {top1:>6.3f} {kl:>9.2e}", flush=True)
        print(f"  ({name}: {num_params(config):,} parameters)")


if __name__ == "__main__":
    main()
