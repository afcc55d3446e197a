"""Train-step throughput: compile time, step time, tokens/s, peak device memory and MFU for a config.

    python benchmarks/train_throughput.py --config=configs/sudoku.py --batch=768          # HRM-27M, Sudoku shape
    python benchmarks/train_throughput.py --config=configs/pretrain_python.py --seq_len=1024 --batch=32
    python benchmarks/train_throughput.py --config=configs/sudoku.py:tiny --steps=5         # CPU smoke

Batches are random tokens of the config's shape (no data loading), so the figures are the step alone. Timing:
one call compiles (reported as compile time), `--warmup` steps run untimed, then `--steps` steps are timed with a
block on the last one.

FLOPs per step (the MFU numerator), documented in `hrm_jax.metrics.hrm_train_flops` and
`families.HrmTextFamily.flops_per_token`: every H/L call's forward, the gradient calls' backward at 2x forward
(HRM: the last L and H call; HRM-Text: the H calls and the L calls L_bp_cycles keeps), lm_head forward and
backward, the HRM Q-target's second forward when ACT trains, attention FLOPs (4 S D per token per layer, full S)
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

from hrm_jax import families, metrics, parallel, train  # noqa: E402
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="configs/X.py[:variant]")
    p.add_argument("--batch", type=int, default=None, help="global batch (default: the config's)")
    p.add_argument("--seq_len", type=int, default=None)
    p.add_argument("--vocab", type=int, default=None)
    p.add_argument("--dtype", default=None, help="compute dtype override (bfloat16, float32)")
    p.add_argument("--family", default=None, help="model.family override (hrm, hrm_text, trm)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mesh", default="-1,1,1")
    p.add_argument("--json", default="", help="also write the figures to this file")
    args = p.parse_args(argv)

    config = load_config(args.config)
    if args.batch:
        config.data.global_batch_size = args.batch
    if args.dtype:
        config.model.forward_dtype = args.dtype
    if args.family:
        config.model.family = args.family
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
    peak = metrics.peak_flops_per_device()
    stats = jax.devices()[0].memory_stats() or {}
    result = {
        "config": args.config, "family": family.name, "params": family.num_params(), "device": jax.devices()[0].device_kind,
        "devices": jax.device_count(), "global_batch": config.data.global_batch_size, "seq_len": spec.seq_len,
        "dtype": config.model.forward_dtype, "compile_s": round(compile_s, 2), "step_s_median": step_s,
        "tokens_per_s": tokens / step_s, "tflops_per_step": flops / 1e12,
        "mfu": (flops / step_s / (peak * jax.device_count())) if peak else None,
        "peak_device_memory_gib": stats.get("peak_bytes_in_use", 0) / 2**30 or None,
        "loss_finite": bool(jnp.isfinite(m["loss"])),
    }
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
