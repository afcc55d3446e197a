"""Benchmark: cached generation unrolled vs through the compiled loops (`loop_cycles`), for the causal HRM and TRM:
compile time of the whole generation program (prefill + decode while_loop) against the cycle count, and decode
speed, side by side in one run.

    python benchmarks/generation_loops.py [--cycles 2 4] [--hidden 512] [--layers 4] [--new-tokens 32]

Random fp32 models (HRM-27M's width: hidden 512, 8 heads, 4 + 4 layers; TRM: 2 layers), batch 1, a 16-token
prompt, greedy, `generation_segments` 2. Per (family, cycles, loop): the seconds to lower and compile
`hrm_jax.generate` for the shape, new tokens/s of a second (compiled) call, and whether its tokens equal the
unrolled ones. The machine may be shared: compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from hrm_jax import generate as gen  # noqa: E402
from hrm_jax.model.hrm import HRM, HRMConfig  # noqa: E402
from hrm_jax.model.trm import TRM, TRMConfig  # noqa: E402

PROMPT = 16


def build(family: str, cycles: int, loop: bool, args) -> nnx.Module:
    seq = PROMPT + args.new_tokens
    if family == "hrm":
        cfg = HRMConfig(vocab_size=256, seq_len=seq, puzzle_emb_ndim=0, hidden_size=args.hidden, num_heads=8,
                        H_cycles=cycles, L_cycles=cycles, H_layers=args.layers, L_layers=args.layers,
                        halt_max_steps=2, forward_dtype="float32", causal=True)
        return HRM(cfg, loop_cycles=loop, rngs=nnx.Rngs(0))
    cfg = TRMConfig(vocab_size=256, seq_len=seq, puzzle_emb_ndim=0, hidden_size=args.hidden, num_heads=8,
                    H_cycles=cycles, L_cycles=2 * cycles, L_layers=2, halt_max_steps=2, forward_dtype="float32",
                    causal=True)
    return TRM(cfg, loop_cycles=loop, rngs=nnx.Rngs(0))


def measure(model, args) -> tuple[float, float, np.ndarray, int]:
    ids = jnp.asarray(np.random.default_rng(0).integers(3, 256, (1, PROMPT)), jnp.int32)
    sampling = gen.SamplingConfig(max_new_tokens=args.new_tokens)
    graphdef, state = nnx.split(model)
    call = (graphdef, state, ids, jnp.ones_like(ids), None, jax.random.key(0), sampling.arrays())
    started = time.perf_counter()
    compiled = gen._generate.lower(*call, max_new_tokens=args.new_tokens).compile()
    compile_s = time.perf_counter() - started
    compiled(*call[1:])  # warm
    started = time.perf_counter()
    out = compiled(*call[1:])
    tokens = np.asarray(jax.block_until_ready(out.tokens_BN))
    return compile_s, args.new_tokens / (time.perf_counter() - started), tokens, model.kv_cache_layout()[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, nargs="+", default=[2, 4])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--families", nargs="+", default=["hrm", "trm"])
    args = p.parse_args(argv)
    print(f"backend {jax.default_backend()}, {os.cpu_count()} cores; batch 1, prompt {PROMPT}, "
          f"{args.new_tokens} new tokens, hidden {args.hidden}, 2 generation segments")
    print("| family | H x L cycles | KV sites | loop | compile s | new tokens/s | tokens = unrolled |")
    print("|---|---|---|---|---|---|---|")
    for family in args.families:
        for cycles in args.cycles:
            reference = None
            for loop in (False, True):
                compile_s, speed, tokens, sites = measure(build(family, cycles, loop, args), args)
                reference = tokens if reference is None else reference
                l_cycles = cycles if family == "hrm" else 2 * cycles
                print(f"| {family} | {cycles} x {l_cycles} | {sites} | {'on' if loop else 'off'} | {compile_s:.1f} "
                      f"| {speed:.1f} | {bool((tokens == reference).all())} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
