"""Benchmark: HRM-Text in hrm-jax vs transformers' HrmTextForCausalLM on CPU, same weights, side by side.

    python benchmarks/hrm_text_cpu.py [--preset code-30m] [--repeats 3] [--quick] [--threads 2]

One random fp32 model per run: built in JAX, written with `hrm_jax.hf.save_pretrained` to a temp folder, loaded by
transformers (`AutoModelForCausalLM.from_pretrained(..., attn_implementation="sdpa")`). Rows (each timed
interleaved, jax then torch per repeat, after a warm-up of both; medians reported):

  forward    tokens/s, full logits, no grad (jitted `model(ids)` vs `model(input_ids, use_cache=False)`)
  train step s/step: forward + backward + AdamW (jitted value_and_grad + optax.adamw vs eager loss.backward() +
             torch.optim.AdamW), causal-LM loss on the input ids, lr 1e-4, weight decay 0.01 in both
  decode     new tokens/s of a greedy generate (prompt P, N new tokens, batch 1; the time includes the prompt's
             prefill): hrm_jax.generate (jitted prefill + while_loop, compile excluded) vs transformers
             generate(do_sample=False, max_new_tokens=N, min_new_tokens=N, use_cache=True); the greedy tokens
             of both are compared and their agreement printed.

The ratio column is jax / transformers in the row's unit (tokens/s: > 1 means JAX is faster; s/step: < 1 means
JAX is faster). The machine may be shared and noisy: compare the two columns of one run, not across runs. The
load average is printed at start and end: torch's OpenMP threads (--threads, default 2) slow down far more than
XLA's when other processes hold the cores. `--quick`: forward 1x32 and 2x16, train 2x16, decode 8+8, 2 repeats.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import flax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from flax import nnx  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from hrm_jax import generate as gen  # noqa: E402
from hrm_jax import hf, losses  # noqa: E402
from hrm_jax.model.hrm_text import PRESETS, HrmText, num_params  # noqa: E402

LR, WEIGHT_DECAY = 1e-4, 0.01


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, callable], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds per call of each fn, alternating between them every repeat (warm-up calls not timed)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            out[k].append(timed(fn))
    return out


def causal_lm_loss(logits_BSV, labels_BS):
    """transformers' ForCausalLMLoss: shift by one, ignore -100, mean over kept tokens, fp32."""
    shifted = losses.causal_lm_labels(labels_BS)
    return jnp.sum(losses.softmax_cross_entropy(logits_BSV, shifted)) / jnp.sum(shifted != losses.IGNORE_LABEL_ID)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="code-30m", choices=sorted(PRESETS))
    p.add_argument("--repeats", type=int, default=3, help="timed calls per row and side (median reported)")
    p.add_argument("--quick", action="store_true", help="small sizes and 2 repeats: a smoke run")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    fwd_shapes = [(1, 32), (2, 16)] if args.quick else [(1, 512), (4, 256)]
    train_shape = (2, 16) if args.quick else (2, 256)
    prompt_len, new_tokens = (8, 8) if args.quick else (64, 128)

    config = PRESETS[args.preset]
    print(f"preset {args.preset}: {num_params(config):,} parameters ({num_params(config, embeddings=False):,} in "
          f"blocks), hidden {config.hidden_size}, lps {config.num_layers_per_stack}, H_cycles {config.H_cycles}, "
          f"L_cycles {config.L_cycles}, vocab {config.vocab_size}, fp32")
    print(f"load average (1/5/15 min) at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"jax {jax.__version__} ({jax.default_backend()}), flax {flax.__version__}, "
          f"optax {optax.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"transformers {transformers.__version__}, python {platform.python_version()}, "
          f"cpus {os.cpu_count()}, repeats {repeats}{' (quick)' if args.quick else ''}")

    # ----- one set of weights in both --------------------------------------------------------------------------
    model = HrmText(config, rngs=nnx.Rngs(0))
    model.z_L_init[...] = jnp.asarray(np.random.default_rng(0).normal(size=config.hidden_size), jnp.float32)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(model, tmp)
        ref = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="sdpa").eval()
    n_torch = sum(p.numel() for n, p in ref.named_parameters() if not n.endswith("z_L_init"))
    assert n_torch == num_params(config), (n_torch, num_params(config))
    rng = np.random.default_rng(1)
    lo = 3  # clear of pad / bos / eos
    rows: list[tuple[str, str, float, float]] = []

    # ----- (a) forward ------------------------------------------------------------------------------------------
    graphdef, state = nnx.split(model)
    jax_fwd = jax.jit(lambda state, ids: nnx.merge(graphdef, state)(ids))
    for b, s in fwd_shapes:
        ids = rng.integers(lo, config.vocab_size, size=(b, s))
        ids_j, ids_t = jnp.asarray(ids, jnp.int32), torch.from_numpy(ids)
        jax_fwd(state, ids_j).block_until_ready()  # compile

        def run_torch():
            with torch.inference_mode():
                ref(input_ids=ids_t, use_cache=False).logits
        times = interleaved({"jax": lambda: jax_fwd(state, ids_j).block_until_ready(), "torch": run_torch}, repeats)
        if (b, s) == fwd_shapes[0]:
            with torch.inference_mode():
                err = float(np.abs(np.asarray(jax_fwd(state, ids_j)) - ref(input_ids=ids_t).logits.numpy()).max())
            print(f"forward logits max |jax - transformers| at {b}x{s}: {err:.2e}")
        rows.append((f"forward {b}x{s}", "tokens/s", b * s, times))

    # ----- (c) cached greedy decode (before training changes any weights) ---------------------------------------
    prompt = rng.integers(lo, config.vocab_size, size=(1, prompt_len))
    sampling = gen.SamplingConfig(max_new_tokens=new_tokens, temperature=0.0, pad_token_id=config.pad_token_id or 0)
    prompt_j, prompt_t = jnp.asarray(prompt, jnp.int32), torch.from_numpy(prompt)
    hf_gen_kwargs = dict(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, use_cache=True,
                         attention_mask=torch.ones_like(prompt_t), pad_token_id=config.pad_token_id)
    t0 = time.perf_counter()
    jax_tokens = np.asarray(jax.block_until_ready(gen.generate(model, prompt_j, sampling).tokens_BN))
    print(f"jax generate first call (compile + run): {time.perf_counter() - t0:.1f} s")

    def run_torch_gen():
        with torch.inference_mode():
            return ref.generate(prompt_t, **hf_gen_kwargs)
    torch_tokens = run_torch_gen()[:, prompt_len:].numpy()
    times = interleaved({"jax": lambda: jax.block_until_ready(gen.generate(model, prompt_j, sampling).tokens_BN),
                         "torch": run_torch_gen}, repeats, warmup=0)
    rows.append((f"decode greedy p{prompt_len}+{new_tokens} b1", "new tok/s", new_tokens, times))
    same = jax_tokens[0] == torch_tokens[0]
    first_diff = int(np.argmin(same)) if not same.all() else None
    print(f"greedy tokens agree: {int(same.sum())}/{new_tokens}"
          + ("" if first_diff is None else f" (first difference at new token {first_diff}: "
                                           f"jax {jax_tokens[0, first_diff]} vs transformers {torch_tokens[0, first_diff]})"))

    # ----- (b) train step ---------------------------------------------------------------------------------------
    b, s = train_shape
    ids = rng.integers(lo, config.vocab_size, size=(b, s))
    ids_j, ids_t = jnp.asarray(ids, jnp.int32), torch.from_numpy(ids)

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.tree.map(jnp.copy, params)  # the step donates its params: leave the model's own arrays alone
    tx = optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    opt_state = tx.init(params)

    @jax.jit
    def _loss(params, rest, ids):
        return causal_lm_loss(nnx.merge(graphdef, params, rest)(ids), ids)

    def train_step(params, opt_state, rest, ids):
        loss, grads = jax.value_and_grad(lambda p: causal_lm_loss(nnx.merge(graphdef, p, rest)(ids), ids))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jax_step = jax.jit(train_step, donate_argnums=(0, 1))
    jstate = {"params": params, "opt": opt_state}

    def run_jax_train():
        jstate["params"], jstate["opt"], loss = jax_step(jstate["params"], jstate["opt"], rest, ids_j)
        return float(loss)

    trained = copy.deepcopy(ref).train()
    opt = torch.optim.AdamW(trained.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

    def run_torch_train():
        opt.zero_grad(set_to_none=True)
        loss = trained(input_ids=ids_t, labels=ids_t, use_cache=False).loss
        loss.backward()
        opt.step()
        return loss.item()

    l0_jax = float(_loss(params, rest, ids_j))
    with torch.no_grad():
        l0_torch = trained(input_ids=ids_t, labels=ids_t, use_cache=False).loss.item()
    print(f"train loss before the first step: jax {l0_jax:.6f}, transformers {l0_torch:.6f}")
    t0 = time.perf_counter()
    run_jax_train()  # compile (step 1)
    print(f"jax train step first call (compile + run): {time.perf_counter() - t0:.1f} s")
    run_torch_train()  # step 1 on the torch side too
    times = interleaved({"jax": run_jax_train, "torch": run_torch_train}, repeats, warmup=0)
    # Both sides have taken the same 1 + repeats steps on the same batch: their losses should stay close.
    l_jax = float(_loss(jstate["params"], rest, ids_j))
    with torch.no_grad():
        l_torch = trained(input_ids=ids_t, labels=ids_t, use_cache=False).loss.item()
    print(f"train loss after {repeats + 1} AdamW steps on that batch: jax {l_jax:.4f}, transformers {l_torch:.4f}")
    rows.append((f"train step {b}x{s} (fwd+bwd+AdamW)", "s/step", None, times))

    # ----- table ------------------------------------------------------------------------------------------------
    print()
    print(f"{'row':<36} {'unit':<10} {'hrm-jax':>9} {'transformers':>13} {'jax/tf':>7}   "
          f"{'best: jax':>9} {'tf':>8} {'jax/tf':>7}")
    for name, unit, work, times in rows:
        def rate(t):  # tokens/s from seconds, or seconds as they are
            return t if work is None else work / t
        j, t = rate(statistics.median(times["jax"])), rate(statistics.median(times["torch"]))
        bj, bt = rate(min(times["jax"])), rate(min(times["torch"]))
        f = "{:.3f}" if work is None else "{:.1f}"
        print(f"{name:<36} {unit:<10} {f.format(j):>9} {f.format(t):>13} {j / t:>7.2f}   "
              f"{f.format(bj):>9} {f.format(bt):>8} {bj / bt:>7.2f}")
    print(f"load average (1/5/15 min) at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"(medians, then the fastest, of {repeats} interleaved repeats; tokens/s: ratio > 1 = hrm-jax faster; "
          f"s/step: ratio < 1 = hrm-jax faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
