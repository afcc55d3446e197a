"""Train-step memory and time of HRM-Text before and after the memory fix, side by side.

    python benchmarks/train_memory.py                                  # code-30m at 32 x 512 (configs/mbpp.py)
    python benchmarks/train_memory.py --batch=8 --steps=2               # small enough to time both on a laptop
    python benchmarks/train_memory.py --config=configs/mbpp.py:tiny --batch=8 --seq_len=128   # seconds (CI)

Variants (each compiled in its own process, since XLA_FLAGS are read when JAX starts):
  before  the old formulation: full [B, S, V] fp32 logits and softmax, every block's activations kept for the
          backward pass, XLA CPU's default concurrency-optimized scheduler
  after   chunked cross-entropy (`losses.chunked_softmax_cross_entropy`), per-block remat
          (`model.hrm_text.remat`), and XLA CPU's memory-minimizing scheduler (`step_memory.cpu_memory_flags`),
          as `hrm_jax.main` runs it
Memory is XLA's analysis of the compiled step (`compiled.memory_analysis()`, what the step allocates); time is
the median of `--steps` timed steps after `--warmup` untimed ones on random tokens, run only when the step fits
in the memory available now (MemAvailable), else reported as not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GIB = 2 ** 30


def _available_bytes() -> int:
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(args) -> dict:
    """One variant, in this process (XLA_FLAGS already set by the parent)."""
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from benchmarks.train_throughput import data_spec, load_config, random_batch  # noqa: PLC0415
    from hrm_jax import families, parallel, step_memory, train  # noqa: PLC0415

    config = load_config(args.config)
    config.data.global_batch_size = args.batch
    config.model.hrm_text.remat = args.variant == "after"
    config.train.steps = max(config.train.steps, args.steps + args.warmup + 1)
    spec = data_spec(config, args.seq_len, None)
    family = families.build_family(config, spec.as_dict())
    family = dataclasses.replace(family, chunked_loss=args.variant == "after")
    trainer = train.Trainer(config, family, spec.seq_len, parallel.make_mesh((-1, 1, 1)))
    start = time.perf_counter()
    with jax.set_mesh(trainer.mesh):
        compiled = trainer.train_step.lower(trainer.abstract_state, trainer.example_batch).compile()
    out = {"variant": args.variant, "compile_s": time.perf_counter() - start, "params": family.num_params(),
           "batch": args.batch, "seq_len": spec.seq_len}
    mem = step_memory.StepMemory.of(compiled)
    out.update(step_gib=mem.total / GIB, temp_gib=mem.temp / GIB, state_gib=mem.arguments / GIB)
    available = _available_bytes()
    out["available_gib"] = available / GIB
    if args.steps and mem.total < 0.9 * available:
        state = trainer.init_state()
        batch = train.put_batch(trainer, random_batch(trainer, np.random.default_rng(0), spec.vocab_size))
        with jax.set_mesh(trainer.mesh):
            for _ in range(args.warmup):
                state, m = compiled(state, batch)
            jax.block_until_ready(state)
            times = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                state, m = compiled(state, batch)
                jax.block_until_ready(m["loss"])
                times.append(time.perf_counter() - t0)
        out.update(step_s=float(np.median(times)), loss=float(m["loss"]),
                   tokens_per_s=args.batch * spec.seq_len / float(np.median(times)))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    return out


def run_variant(args, variant: str) -> dict:
    from hrm_jax.step_memory import CPU_SCHEDULER_FLAG, cpu_memory_flags  # noqa: PLC0415 (no JAX start)

    flags = os.environ.get("XLA_FLAGS", "")
    flags = " ".join(f for f in flags.split() if not f.startswith(CPU_SCHEDULER_FLAG))
    env = dict(os.environ, XLA_FLAGS=cpu_memory_flags(flags) if variant == "after" else flags,
               JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    cmd = [sys.executable, __file__, "--_child", f"--variant={variant}", f"--config={args.config}",
           f"--batch={args.batch}", f"--steps={args.steps}", f"--warmup={args.warmup}"]
    if args.seq_len:
        cmd.append(f"--seq_len={args.seq_len}")
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        errors = [line for line in proc.stderr.splitlines() if "Error" in line] or proc.stderr.splitlines() or ["failed"]
        return {"variant": variant, "error": errors[-1].strip()}
    return json.loads(lines[-1])


def table(results: list[dict]) -> str:
    rows = [("step memory (XLA analysis)", "step_gib", "{:.2f} GiB"), ("  of which temporaries", "temp_gib",
            "{:.2f} GiB"), ("  state + batch", "state_gib", "{:.2f} GiB"), ("compile", "compile_s", "{:.1f} s"),
            ("step time (median)", "step_s", "{:.2f} s"), ("tokens/s", "tokens_per_s", "{:.0f}"),
            ("loss after the steps", "loss", "{:.4f}"), ("peak RSS of the process", "peak_rss_gib", "{:.2f} GiB")]
    head = f"{'':<28}" + "".join(f"{r['variant']:>16}" for r in results)
    lines = [head]
    for label, key, fmt in rows:
        cells = []
        for r in results:
            if key in r:
                cells.append(fmt.format(r[key]))
            elif "error" in r:
                cells.append("error")
            else:
                cells.append("not run" if key in ("step_s", "tokens_per_s", "loss") else "-")
        lines.append(f"{label:<28}" + "".join(f"{c:>16}" for c in cells))
    notes = [f"{r['variant']}: {r['error']}" for r in results if "error" in r]
    notes += [f"{r['variant']}: not timed, needs {r['step_gib']:.1f} GiB of {r['available_gib']:.1f} GiB available"
              for r in results if "step_gib" in r and "step_s" not in r]
    return "\n".join(lines + notes)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/mbpp.py", help="configs/X.py[:variant] (an HRM-Text config)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq_len", type=int, default=None, help="default: the config's data.seq_len")
    p.add_argument("--steps", type=int, default=1, help="timed steps per variant (0: memory only)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--variants", default="before,after")
    p.add_argument("--json", default="")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(measure(args)))
        return []
    print(f"{args.config} at batch {args.batch} x {args.seq_len or 'config'} seq; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores", flush=True)
    results = [run_variant(args, v) for v in args.variants.split(",")]
    print(table(results))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
