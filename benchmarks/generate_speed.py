"""Benchmark: KV-cached generation vs full recomputation, causal HRM and HRM-Text side by side.

    python benchmarks/generate_speed.py [--new-tokens 128 256 512] [--prompt 16] [--hidden 64] [--repeats 1]

Random fp32 models of the same width, batch 1, greedy. Per family and generation length N, new tokens/s of:

  cached      hrm_jax.generate (jitted prefill + while_loop of single-token decode steps; the prompt's prefill is
              in the time)
  recomputed  a jitted while_loop that, per new token, runs the whole model over the [1, prompt + N] token buffer
              (causal, so the not-yet-generated tail does not change the current position) and takes the logits at
              the current position: for the HRM, M fixed segments of `HRM.__call__` (`act.act_infer`, the
              reference the tests use); for HRM-Text, `HrmText.__call__`. The buffer has the final length from
              the first step on, so this overstates recomputation's cost at step t by (prompt + N) / (prompt + t),
              about 2x on average: a recompile per length is the alternative.

Compilation is excluded (a warm-up `generate` call; ahead-of-time `lower().compile()` for recomputation); medians over `--repeats`. The greedy tokens of both
paths are compared and their agreement printed. The machine may be shared: compare columns of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from hrm_jax import generate as gen  # noqa: E402
from hrm_jax.model import act  # noqa: E402
from hrm_jax.model.hrm import HRM, HRMConfig  # noqa: E402
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig  # noqa: E402

VOCAB = 512


def build(family: str, hidden: int, total_len: int):
    """A random fp32 model and its full-sequence logits function (ids [B, T] -> logits [B, T, V])."""
    if family == "hrm":
        cfg = HRMConfig(vocab_size=VOCAB, seq_len=total_len, puzzle_emb_ndim=0, hidden_size=hidden, num_heads=2,
                        H_cycles=2, L_cycles=2, H_layers=1, L_layers=1, halt_max_steps=2, forward_dtype="float32",
                        causal=True)
        model = HRM(cfg, rngs=nnx.Rngs(0))

        def full(m, ids):
            return act.act_infer(m, {"inputs": ids}, max_steps=m.config.num_generation_segments)[0]["logits"]
    else:
        cfg = HrmTextConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=4 * hidden,
                            num_layers_per_stack=1, num_attention_heads=2, head_dim=hidden // 2, H_cycles=2,
                            L_cycles=2, L_bp_cycles=(0, 2), prefix_lm=False, max_position_embeddings=4096)
        model = HrmText(cfg, rngs=nnx.Rngs(0))

        def full(m, ids):
            return m(ids)
    return model, full


def recompute_fn(full, graphdef, prompt_len: int, n: int):
    """Greedy decoding by full recomputation per token over a fixed [B, prompt + n] buffer."""

    def run(state, prompt_BS):
        m = nnx.merge(graphdef, state)
        b = prompt_BS.shape[0]
        buf = jnp.zeros((b, prompt_len + n), jnp.int32).at[:, :prompt_len].set(prompt_BS)

        def body(carry):
            step, buf = carry
            pos = prompt_len - 1 + step
            logits = jax.lax.dynamic_index_in_dim(full(m, buf), pos, axis=1, keepdims=False)
            token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
            return step + 1, jax.lax.dynamic_update_slice(buf, token[:, None], (0, pos + 1))

        _, buf = jax.lax.while_loop(lambda c: c[0] < n, body, (jnp.zeros((), jnp.int32), buf))
        return buf[:, prompt_len:]

    return jax.jit(run)


def timed(compiled, *args) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return time.perf_counter() - t0, np.asarray(out)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new-tokens", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--families", nargs="+", default=["hrm", "hrm_text"])
    args = p.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, load {os.getloadavg()[0]:.1f}, "
          f"hidden {args.hidden}, prompt {args.prompt}, batch 1, fp32, greedy", flush=True)
    prompt = jnp.asarray(np.random.default_rng(0).integers(1, VOCAB, (1, args.prompt)), jnp.int32)
    rows = []
    print(f"{'family':9} {'sites':>5} {'N':>5} {'cached tok/s':>13} {'recomputed tok/s':>17} {'ratio':>8} "
          f"{'agree':>6}", flush=True)
    for family in args.families:
        for n in args.new_tokens:
            model, full = build(family, args.hidden, args.prompt + n)
            graphdef, state = nnx.split(model)
            sampling = gen.SamplingConfig(max_new_tokens=n)
            cached = lambda state, prompt: gen.generate(model, prompt, sampling).tokens_BN  # noqa: E731
            cached(state, prompt)  # compiles (the jit cache is keyed on graphdef and N)
            recomputed = recompute_fn(full, graphdef, args.prompt, n).lower(state, prompt).compile()
            t_c, t_r = [], []
            for _ in range(args.repeats):
                dt, tok_c = timed(cached, state, prompt)
                t_c.append(dt)
                dt, tok_r = timed(recomputed, state, prompt)
                t_r.append(dt)
            row = dict(family=family, sites=model.kv_cache_layout()[0], new_tokens=n,
                       cached_tok_s=n / statistics.median(t_c), recomputed_tok_s=n / statistics.median(t_r),
                       agreement=float(np.mean(tok_c == tok_r)))
            row["ratio"] = row["cached_tok_s"] / row["recomputed_tok_s"]
            rows.append(row)
            print(f"{family:9} {row['sites']:>5} {n:>5} {row['cached_tok_s']:>13.1f} "
                  f"{row['recomputed_tok_s']:>17.1f} {row['ratio']:>7.1f}x {row['agreement']:>6.2f}", flush=True)
    print(f"load at end {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
