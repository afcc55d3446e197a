"""Train-step throughput: compile time, step time, tokens/s, peak device memory and MFU for a config.

    python benchmarks/train_throughput.py --config=configs/sudoku.py --batch=768          # HRM-27M, Sudoku shape
    python benchmarks/train_throughput.py --config=configs/pretrain_python.py --seq_len=1024 --batch=32
    python benchmarks/train_throughput.py --config=configs/sudoku.py:tiny --steps=5         # CPU smoke
    # families side by side in one run (the transformer baseline sized both ways against the config's HRM/HRM-Text)
    python benchmarks/train_throughput.py --config=configs/sudoku.py:tiny --family=hrm,transformer,transformer:flops
    python benchmarks/train_throughput.py --config=configs/pretrain_python.py:tiny \
        --family=hrm_text,transformer,transformer:flops

Batches are random tokens of the config's shape (no data loading), so the figures are the step alone. Timing:
one call compiles (reported as compile time), `--warmup` steps run untimed, then `--steps` steps are timed with a
block on the last one.

With several `--family` entries (`name` or `transformer:params|flops`, the baseline's sizing) each is measured on
the same shape in turn and a side-by-side table follows, with step time relative to the first entry.

FLOPs per step (the MFU numerator), documented in `hrm_jax.metrics.hrm_train_flops`,
`families.HrmTextFamily.flops_per_token` and `families.TransformerFamily.flops_per_token`: every H/L call's forward,
the gradient calls' backward at 2x forward (HRM: the last L and H call; HRM-Text: the H calls and the L calls
L_bp_cycles keeps; the transformer: every layer), lm_head forward and backward, the HRM Q-target's second forward when ACT trains, attention FLOPs (4 S D per token per layer, full S)
included. MFU divides by the datasheet dense bf16 peak of the device (H100 SXM: 989 TFLOP/s); CPUs have none.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hrm_jax import families, metrics, parallel, step_memory, train  # noqa: E402
from hrm_jax.data import DataSpec  # noqa: E402


def load_config(spec: str):
    path, _, variant = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("bench_config", REPO / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant) if variant else module.get_config()


def data_spec(config, seq_len: int | None, vocab: int | None) -> DataSpec:
    if config.data.kind in ("python_corpus", "mbpp"):
        return DataSpec(vocab_size=vocab or 16384, seq_len=seq_len or config.data.seq_len, pad_token_id=0,
                        bos_token_id=1, eos_token_id=2)
    if config.data.kind == "synthetic":
        return DataSpec(vocab_size=config.data.synthetic_vocab + 1, seq_len=seq_len or config.data.synthetic_seq_len,
                        num_puzzle_identifiers=config.data.synthetic_num_identifiers)
    maze = "maze" in (config.data.path + config.data.generate)
    return DataSpec(vocab_size=vocab or (6 if maze else 11), seq_len=seq_len or (900 if maze else 81),
                    num_puzzle_identifiers=1)


def random_batch(trainer, rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    out = {}
    for key, shape in trainer.example_batch.items():
        if key in ("inputs", "targets", "labels"):
            out[key] = rng.integers(1, vocab, shape.shape).astype(np.int32)
        elif key == "segment_ids":
            out[key] = np.ones(shape.shape, np.int32)
        elif key == "positions":
            out[key] = np.broadcast_to(np.arange(shape.shape[1], dtype=np.int32), shape.shape).copy()
        elif key == "loss_mask":
            out[key] = np.ones(shape.shape, np.int32)
        else:
            out[key] = np.zeros(shape.shape, np.int32)
    if "targets" in out:
        out["targets"] = out["inputs"]
    return out


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="configs/X.py[:variant]")
    p.add_argument("--batch", type=int, default=None, help="global batch (default: the config's)")
    p.add_argument("--seq_len", type=int, default=None)
    p.add_argument("--vocab", type=int, default=None)
    p.add_argument("--dtype", default=None, help="compute dtype override (bfloat16, float32)")
    p.add_argument("--family", default=None,
                   help="model.family override; a comma list measures each side by side (hrm, hrm_text, trm, "
                        "transformer, transformer:params, transformer:flops)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mesh", default="-1,1,1")
    p.add_argument("--json", default="", help="also write the figures to this file")
    return p.parse_args(argv)


def measure(args, family_spec: str | None) -> dict:
    """Compile and time the train step of `args.config` with `family_spec` (None: the config's family)."""
    config = load_config(args.config)
    if args.batch:
        config.data.global_batch_size = args.batch
    if args.dtype:
        config.model.forward_dtype = args.dtype
    if family_spec:
        name, _, size_by = family_spec.partition(":")
        config.model.family = name
        if size_by:
            config.model.transformer.size_by = size_by
    config.train.steps = max(config.train.steps, args.steps + args.warmup + 1)
    spec = data_spec(config, args.seq_len, args.vocab)
    family = families.build_family(config, spec.as_dict())
    mesh = parallel.make_mesh(tuple(int(x) for x in args.mesh.split(",")))
    trainer = train.Trainer(config, family, spec.seq_len, mesh)
    state = trainer.init_state()
    batch = train.put_batch(trainer, random_batch(trainer, np.random.default_rng(0), spec.vocab_size))

    with jax.set_mesh(mesh):
        start = time.perf_counter()
        compiled = trainer.train_step.lower(state, batch).compile()
        compile_s = time.perf_counter() - start
        for _ in range(args.warmup):
            state, m = compiled(state, batch)
            jax.block_until_ready(m)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            state, m = compiled(state, batch)
            jax.block_until_ready(m["loss"])
            times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    tokens = config.data.global_batch_size * spec.seq_len
    flops = family.flops_per_token() * tokens
    xla_per_device = step_memory.compiled_flops(compiled)  # XLA's cost analysis of the compiled step
    xla_flops = xla_per_device * jax.device_count() if xla_per_device else None
    peak = metrics.peak_flops_per_device()
    stats = jax.devices()[0].memory_stats() or {}
    result = {
        "config": args.config, "family": family_spec or family.name, "params": family.num_params(),
        "device": jax.devices()[0].device_kind,
        "devices": jax.device_count(), "global_batch": config.data.global_batch_size, "seq_len": spec.seq_len,
        "dtype": config.model.forward_dtype, "compile_s": round(compile_s, 2), "step_s_median": step_s,
        "tokens_per_s": tokens / step_s, "tflops_per_step": flops / 1e12,
        "mfu": (flops / step_s / (peak * jax.device_count())) if peak else None,
        "xla_tflops_per_step": xla_flops / 1e12 if xla_flops else None,
        "mfu_xla": (xla_flops / step_s / (peak * jax.device_count())) if peak and xla_flops else None,
        "peak_device_memory_gib": stats.get("peak_bytes_in_use", 0) / 2**30 or None,
        "loss_finite": bool(jnp.isfinite(m["loss"])),
    }
    if getattr(family, "description", ""):
        result["sizing"] = family.description
    return result


def _print_result(result: dict) -> None:
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def side_by_side(results: list[dict]) -> str:
    """One row per family: params, step time (and relative to the first row), tokens/s, compile time."""
    first = results[0]["step_s_median"]
    rows = [f"{'family':<20} {'params':>12} {'step_ms':>10} {'x first':>8} {'tokens/s':>12} {'TFLOP/step':>11} "
            f"{'compile_s':>9}"]
    for r in results:
        rows.append(f"{r['family']:<20} {r['params']:>12,} {r['step_s_median'] * 1e3:>10.2f} "
                    f"{r['step_s_median'] / first:>8.2f} {r['tokens_per_s']:>12.4g} {r['tflops_per_step']:>11.4g} "
                    f"{r['compile_s']:>9.2f}")
    return "\n".join(rows)


def main(argv=None) -> dict | list[dict]:
    """The figures of one family (a dict), or of each of a comma list (a list of dicts, printed side by side)."""
    args = _parse_args(argv)
    specs = args.family.split(",") if args.family else [None]
    results = []
    for spec in specs:
        result = measure(args, spec)
        _print_result(result)
        print()
        results.append(result)
    if len(results) > 1:
        print(f"{args.config}, batch {results[0]['global_batch']} x seq {results[0]['seq_len']}, "
              f"{results[0]['dtype']}, {results[0]['devices']} x {results[0]['device']}:")
        print(side_by_side(results))
    out = results[0] if len(results) == 1 else results
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
